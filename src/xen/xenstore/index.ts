// The XenStore: store semantics, the in-process client API, the wire protocol and the daemon.
export { XsConnection } from './connection.js';
export { XenStoreDaemon, type DaemonOptions } from './daemon.js';
export { NO_GENERATION, type XsNode } from './node.js';
export type { DirectoryPart } from './operations.js';
export { canonicalize, homePath } from './path.js';
export { formatPerm, formatPerms, parsePerm, permFor, type XsPerm } from './permissions.js';
export { DEFAULT_QUOTAS, type XsQuotas } from './quota.js';
export { fail, ok, type XsResult } from './result.js';
export { XsSession, describeRequest, errorMessage, eventMessage } from './server.js';
export { PRIV_DOMID, XenStore, isDomid, isRealDomid, type IntroduceOptions, type XenStoreOptions } from './store.js';
export type { XsWatchEvent } from './watch.js';
export { XsReassembler, encodeMessage, parseHeader, type OversizeError, type XsMessage } from './wire.js';
