import {
  XENSTORE_PAYLOAD_MAX,
  XS_CONTROL,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_ERROR,
  XS_GET_DOMAIN_PATH,
  XS_GET_PERMS,
  XS_INTRODUCE,
  XS_IS_DOMAIN_INTRODUCED,
  XS_MKDIR,
  XS_READ,
  XS_RELEASE,
  XS_RESET_WATCHES,
  XS_RESUME,
  XS_RM,
  XS_SET_PERMS,
  XS_SET_TARGET,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_TYPE_NAMES,
  XS_UNWATCH,
  XS_WATCH,
  XS_WATCH_EVENT,
  XS_WRITE,
  type XsErrorName,
} from '../abi/xs-wire.js';
import type { XsConnection } from './connection.js';
import { formatPerm } from './permissions.js';
import { fail, ok, type XsResult } from './result.js';
import type { XenStore } from './store.js';
import type { XsWatchEvent } from './watch.js';
import { bytesToLatin1, latin1ToBytes, nulTerminated, oneArg, payloadStrings, type XsMessage } from './wire.js';

const OK_PAYLOAD = latin1ToBytes('OK\0');
const EMPTY = new Uint8Array(0);

type Outcome = XsResult<Uint8Array>;

interface Handler {
  /** Privileged domain only: others get EACCES (core.c XS_FLAG_PRIV). */
  readonly priv?: true;
  /** The header's tx_id is ignored (core.c XS_FLAG_NOTID). */
  readonly notid?: true;
  run(conn: XsConnection, p: Uint8Array, txId: number): Outcome;
}

/** A domain id in a payload: decimal 0..65535, nothing else (xen-abi.md §1.2). */
function domidArg(s: string | undefined): number | undefined {
  if (s === undefined || !/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffff ? n : undefined;
}

function unsignedArg(s: string | undefined): number | undefined {
  if (s === undefined || !/^[0-9]{1,15}$/.test(s)) return undefined;
  return Number(s);
}

const okReply = (r: XsResult<void>): Outcome => (r.ok ? ok(OK_PAYLOAD) : r);
const map = <T>(r: XsResult<T>, f: (v: T) => Uint8Array): Outcome => (r.ok ? ok(f(r.value)) : r);
const withDomid = (s: string | undefined, f: (domid: number) => Outcome): Outcome => {
  const d = domidArg(s);
  return d === undefined ? fail('EINVAL') : f(d);
};
/** One-path requests: a payload that is not exactly `path\0` is an invalid path (EINVAL). */
const withPath = (p: Uint8Array, f: (path: string) => Outcome): Outcome => {
  const path = oneArg(p);
  return path === undefined ? fail('EINVAL') : f(path);
};

/** Request decoding and reply encoding per message type (xen-abi.md §1.2). */
const HANDLERS: Readonly<Record<number, Handler>> = {
  // CONTROL is optional and 4.17's commands are about xenstored itself: not modelled.
  [XS_CONTROL]: { priv: true, run: () => fail('ENOSYS') },
  [XS_DIRECTORY]: { run: (c, p, tx) => withPath(p, (path) => map(c.directory(path, tx), nulTerminated)) },
  [XS_READ]: { run: (c, p, tx) => withPath(p, (path) => c.read(path, tx)) },
  [XS_GET_PERMS]: { run: (c, p, tx) => withPath(p, (path) => map(c.getPerms(path, tx), (perms) => nulTerminated(perms.map(formatPerm)))) },
  [XS_WATCH]: {
    notid: true,
    run: (c, p) => {
      const s = payloadStrings(p);
      return s.length === 2 ? okReply(c.watch(s[0]!, s[1]!)) : fail('EINVAL');
    },
  },
  [XS_UNWATCH]: {
    notid: true,
    run: (c, p) => {
      const s = payloadStrings(p);
      return s.length === 2 ? okReply(c.unwatch(s[0]!, s[1]!)) : fail('EINVAL');
    },
  },
  [XS_TRANSACTION_START]: {
    // The payload is ignored; a valid tx_id in the header means nesting, which is EBUSY.
    run: (c, _p, tx) => (tx !== 0 ? fail('EBUSY') : map(c.transactionStart(), (id) => nulTerminated([String(id)]))),
  },
  [XS_TRANSACTION_END]: {
    run: (c, p, tx) => {
      const arg = oneArg(p);
      if (arg !== 'T' && arg !== 'F') return fail('EINVAL');
      return okReply(c.transactionEnd(tx, arg === 'T'));
    },
  },
  [XS_INTRODUCE]: {
    priv: true,
    run: (c, p) => {
      const s = payloadStrings(p);
      if (s.length < 3) return fail('EINVAL');
      const gfn = unsignedArg(s[1]);
      const port = unsignedArg(s[2]);
      if (gfn === undefined || port === undefined) return fail('EINVAL');
      return withDomid(s[0], (d) => okReply(c.introduce(d, gfn, port)));
    },
  },
  [XS_RELEASE]: { priv: true, run: (c, p) => withDomid(oneArg(p), (d) => okReply(c.release(d))) },
  [XS_GET_DOMAIN_PATH]: { run: (c, p) => withDomid(oneArg(p), (d) => map(c.getDomainPath(d), (path) => nulTerminated([path]))) },
  [XS_WRITE]: {
    run: (c, p, tx) => {
      // `path\0` then the value: every byte after the first NUL, NULs included.
      const nul = p.indexOf(0);
      if (nul < 0) return fail('EINVAL');
      return okReply(c.write(bytesToLatin1(p.subarray(0, nul)), p.slice(nul + 1), tx));
    },
  },
  [XS_MKDIR]: { run: (c, p, tx) => withPath(p, (path) => okReply(c.mkdir(path, tx))) },
  [XS_RM]: { run: (c, p, tx) => withPath(p, (path) => okReply(c.rm(path, tx))) },
  [XS_SET_PERMS]: {
    run: (c, p, tx) => {
      const s = payloadStrings(p);
      return s.length < 2 ? fail('EINVAL') : okReply(c.setPerms(s[0]!, s.slice(1), tx));
    },
  },
  [XS_IS_DOMAIN_INTRODUCED]: {
    priv: true,
    run: (c, p) => withDomid(oneArg(p), (d) => map(c.isDomainIntroduced(d), (yes) => nulTerminated([yes ? 'T' : 'F']))),
  },
  [XS_RESUME]: { priv: true, run: (c, p) => withDomid(oneArg(p), (d) => okReply(c.resume(d))) },
  [XS_SET_TARGET]: {
    priv: true,
    run: (c, p) => {
      const s = payloadStrings(p);
      if (s.length < 2) return fail('EINVAL');
      const target = domidArg(s[1]);
      return target === undefined ? fail('EINVAL') : withDomid(s[0], (d) => okReply(c.setTarget(d, target)));
    },
  },
  [XS_RESET_WATCHES]: { run: (c) => okReply(c.resetWatches()) },
  [XS_DIRECTORY_PART]: {
    run: (c, p, tx) => {
      // xenstore_count_strings: exactly two NUL-terminated strings, path and byte offset.
      const s = payloadStrings(p);
      if (s.length !== 2) return fail('EINVAL');
      const offset = unsignedArg(s[1]);
      if (offset === undefined) return fail('EINVAL');
      return map(c.directoryPart(s[0]!, offset, tx), (part) =>
        latin1ToBytes(`${part.generation}\0${part.names.map((n) => `${n}\0`).join('')}${part.complete ? '\0' : ''}`),
      );
    },
  },
};

export function eventMessage(ev: XsWatchEvent): XsMessage {
  return { type: XS_WATCH_EVENT, reqId: 0, txId: 0, payload: nulTerminated([ev.path, ev.token]) };
}

export function errorMessage(req: Pick<XsMessage, 'reqId' | 'txId'>, error: XsErrorName): XsMessage {
  return { type: XS_ERROR, reqId: req.reqId, txId: req.txId, payload: nulTerminated([error]) };
}

/** Short description of a request for logs: its type and first argument. */
export function describeRequest(m: XsMessage): string {
  const name = XS_TYPE_NAMES[m.type] ?? `type ${m.type}`;
  const first = payloadStrings(m.payload)[0];
  const arg = first === undefined ? '' : ` ${JSON.stringify(first.length > 80 ? `${first.slice(0, 80)}…` : first)}`;
  return `${name}${arg}${m.txId !== 0 ? ` (tx ${m.txId})` : ''}`;
}

/**
 * The protocol engine for one client: turns its request messages into reply messages and its
 * watch events into WATCH_EVENT messages, independent of the transport (a socket for the
 * daemon, a shared ring for a guest) and of time.
 *
 * Order on the wire, as xenstored's: events a request causes for its own connection come
 * before its reply; WATCH's first event comes after its OK. Events caused by other
 * connections wait in the connection's queue until the transport takes them (`takeEvents`),
 * which it is told about through `onEventsPending`.
 */
export class XsSession {
  readonly conn: XsConnection;
  /** Called when events are queued while no request of this session is being handled. */
  onEventsPending: (() => void) | undefined;
  private busy = false;
  private _outstanding = 0;

  constructor(
    private readonly store: XenStore,
    domid: number,
  ) {
    this.conn = store.connect(domid);
    this.conn.onEvent = () => {
      if (!this.busy) this.onEventsPending?.();
    };
  }

  /**
   * Replies not yet delivered (see replyDelivered). An unprivileged domain with the
   * `outstanding` quota of them should not be read from: xenstored stops reading its ring.
   */
  get outstanding(): number {
    return this._outstanding;
  }

  /** Whether the transport should hand this session another request now. */
  get acceptsRequests(): boolean {
    return this.conn.privileged || this._outstanding < this.store.quotas.outstanding;
  }

  /** The transport delivered one reply to the client. */
  replyDelivered(): void {
    if (this._outstanding > 0) this._outstanding--;
  }

  /**
   * Handles one request; returns what to send back, in order (events, the reply, events).
   * Once the connection is closed (its domain released) there is no one to answer: nothing.
   */
  handle(req: XsMessage): XsMessage[] {
    if (this.conn.closed) return [];
    this.busy = true;
    let reply: XsMessage;
    try {
      reply = this.reply(req, this.acceptsRequests ? this.run(req) : fail('ENOSPC'));
    } finally {
      this.busy = false;
    }
    this._outstanding++;
    const events = this.takeEvents();
    return req.type === XS_WATCH && reply.type === XS_WATCH ? [reply, ...events] : [...events, reply];
  }

  /** Takes (up to `max` of) the queued watch events as WATCH_EVENT messages. */
  takeEvents(max?: number): XsMessage[] {
    return this.conn.takeEvents(max).map(eventMessage);
  }

  /** Bytes of WATCH_EVENT messages waiting to be taken. */
  get pendingEventBytes(): number {
    return this.conn.events.queuedBytes;
  }

  close(): void {
    this.conn.close();
  }

  private run(req: XsMessage): Outcome {
    const h = HANDLERS[req.type];
    // Unknown types, the server-only WATCH_EVENT and ERROR, and the removed type 20 (core.c
    // process_message: no handler).
    if (h === undefined) return fail('ENOSYS');
    if (h.priv === true && !this.conn.privileged) return fail('EACCES');
    const txId = h.notid === true ? 0 : req.txId;
    if (txId !== 0 && !this.conn.transactions.has(txId)) return fail('ENOENT');
    return h.run(this.conn, req.payload, txId);
  }

  private reply(req: XsMessage, r: Outcome): XsMessage {
    if (!r.ok) return errorMessage(req, r.error);
    // core.c send_reply: a reply that would not fit is E2BIG instead.
    if (r.value.length > XENSTORE_PAYLOAD_MAX) return errorMessage(req, 'E2BIG');
    return { type: req.type, reqId: req.reqId, txId: req.txId, payload: r.value.length === 0 ? EMPTY : r.value };
  }
}
