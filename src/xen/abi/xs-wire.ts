/**
 * XenStore wire protocol constants, mirrored from xen/include/public/io/xs_wire.h (Xen 4.17,
 * with the later additions noted) and tools/xenstored. Names are Xen's; no behaviour here.
 */

/** `enum xsd_sockmsg_type` (xs_wire.h). */
export const XS_CONTROL = 0;
/** Old name of XS_CONTROL, kept by xs_wire.h. */
export const XS_DEBUG = 0;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
/** Type 20 was XS_RESTRICT, removed; xs_wire.h keeps the slot as XS_RESET_WATCHES - 1. */
export const XS_RESTRICT = 20;
export const XS_RESET_WATCHES = 21;
export const XS_DIRECTORY_PART = 22;
/** Post-4.17 (not known to a 4.17 xenstored, which answers ENOSYS). */
export const XS_GET_FEATURE = 23;
export const XS_SET_FEATURE = 24;
export const XS_GET_QUOTA = 25;
export const XS_SET_QUOTA = 26;
/** Number of message types a 4.17 xenstored knows (XS_TYPE_COUNT in 4.17). */
export const XS_TYPE_COUNT = 23;
/** "Guaranteed to remain an invalid type" (xs_wire.h). */
export const XS_INVALID = 0xffff;

/** Names of the message types, for logs (xenstored's sockmsg_string). */
export const XS_TYPE_NAMES: Readonly<Record<number, string>> = {
  [XS_CONTROL]: 'CONTROL',
  [XS_DIRECTORY]: 'DIRECTORY',
  [XS_READ]: 'READ',
  [XS_GET_PERMS]: 'GET_PERMS',
  [XS_WATCH]: 'WATCH',
  [XS_UNWATCH]: 'UNWATCH',
  [XS_TRANSACTION_START]: 'TRANSACTION_START',
  [XS_TRANSACTION_END]: 'TRANSACTION_END',
  [XS_INTRODUCE]: 'INTRODUCE',
  [XS_RELEASE]: 'RELEASE',
  [XS_GET_DOMAIN_PATH]: 'GET_DOMAIN_PATH',
  [XS_WRITE]: 'WRITE',
  [XS_MKDIR]: 'MKDIR',
  [XS_RM]: 'RM',
  [XS_SET_PERMS]: 'SET_PERMS',
  [XS_WATCH_EVENT]: 'WATCH_EVENT',
  [XS_ERROR]: 'ERROR',
  [XS_IS_DOMAIN_INTRODUCED]: 'IS_DOMAIN_INTRODUCED',
  [XS_RESUME]: 'RESUME',
  [XS_SET_TARGET]: 'SET_TARGET',
  [XS_RESET_WATCHES]: 'RESET_WATCHES',
  [XS_DIRECTORY_PART]: 'DIRECTORY_PART',
  [XS_GET_FEATURE]: 'GET_FEATURE',
  [XS_SET_FEATURE]: 'SET_FEATURE',
  [XS_GET_QUOTA]: 'GET_QUOTA',
  [XS_SET_QUOTA]: 'SET_QUOTA',
};

/**
 * `xsd_errors[]` (xs_wire.h), in its order: errors travel as these names. EINVAL is first
 * because xenstored falls back to entry 0 for an errno it cannot translate.
 */
export const XSD_ERRORS = [
  { name: 'EINVAL', errno: 22 },
  { name: 'EACCES', errno: 13 },
  { name: 'EEXIST', errno: 17 },
  { name: 'EISDIR', errno: 21 },
  { name: 'ENOENT', errno: 2 },
  { name: 'ENOMEM', errno: 12 },
  { name: 'ENOSPC', errno: 28 },
  { name: 'EIO', errno: 5 },
  { name: 'ENOTEMPTY', errno: 39 },
  { name: 'ENOSYS', errno: 38 },
  { name: 'EROFS', errno: 30 },
  { name: 'EBUSY', errno: 16 },
  { name: 'EAGAIN', errno: 11 },
  { name: 'EISCONN', errno: 106 },
  { name: 'E2BIG', errno: 7 },
  { name: 'EPERM', errno: 1 },
] as const;

/** An error a XenStore request can fail with, by its wire name. */
export type XsErrorName = (typeof XSD_ERRORS)[number]['name'];

export const XS_ERROR_NAMES: readonly XsErrorName[] = XSD_ERRORS.map((e) => e.name);

export function isXsErrorName(s: string): s is XsErrorName {
  return (XS_ERROR_NAMES as readonly string[]).includes(s);
}

/** `struct xsd_sockmsg`: type, req_id, tx_id, len, each a little-endian u32. */
export const XSD_SOCKMSG_SIZE = 16;
export const XSD_SOCKMSG_TYPE_OFFSET = 0;
export const XSD_SOCKMSG_REQ_ID_OFFSET = 4;
export const XSD_SOCKMSG_TX_ID_OFFSET = 8;
export const XSD_SOCKMSG_LEN_OFFSET = 12;

/** Largest payload of one message, either direction (xs_wire.h). */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** Path length limits (xs_wire.h): absolute, and relative to a domain's home. */
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** `enum xs_perm_type` (xenstore_lib.h); OWNER and IGNORE are xenstored-internal. */
export const XS_PERM_NONE = 0;
export const XS_PERM_READ = 1;
export const XS_PERM_WRITE = 2;
export const XS_PERM_ENOENT_OK = 4;
export const XS_PERM_OWNER = 8;
export const XS_PERM_IGNORE = 16;

/** Permission letters of the string form `<letter><domid>` (xenstore_perm_to_string). */
export const XS_PERM_LETTERS = { n: XS_PERM_NONE, r: XS_PERM_READ, w: XS_PERM_WRITE, b: XS_PERM_READ | XS_PERM_WRITE } as const;
export type XsPermLetter = keyof typeof XS_PERM_LETTERS;

/** Special watch paths (docs/misc/xenstore.txt, "Special watches"). */
export const XS_INTRODUCE_DOMAIN_PATH = '@introduceDomain';
export const XS_RELEASE_DOMAIN_PATH = '@releaseDomain';

/** Reserved domain ids (xen/include/public/xen.h). */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;

/** Guest transport: the xenstore ring page (`struct xenstore_domain_interface`, xs_wire.h). */
export const XENSTORE_RING_SIZE = 1024;
export const XENSTORE_RING_REQ_OFFSET = 0;
export const XENSTORE_RING_RSP_OFFSET = 1024;
export const XENSTORE_RING_REQ_CONS_OFFSET = 2048;
export const XENSTORE_RING_REQ_PROD_OFFSET = 2052;
export const XENSTORE_RING_RSP_CONS_OFFSET = 2056;
export const XENSTORE_RING_RSP_PROD_OFFSET = 2060;
export const XENSTORE_RING_SERVER_FEATURES_OFFSET = 2064;
export const XENSTORE_RING_CONNECTION_OFFSET = 2068;
export const XENSTORE_RING_ERROR_OFFSET = 2072;
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;
