/**
 * The PV network protocol (xen/include/public/io/netif.h): ring structures with their C
 * layouts (x86-64; checked against the header by shared/reference/xen-abi.md §6.1), flags,
 * extra-info types, statuses and limits, and slot codecs for src/xen/ring.ts. Names are
 * Xen's own. No behaviour here beyond encoding and decoding.
 */
import { PAGE_SIZE } from './xen.js';
import { ringEntrySize, ringSize, type SlotCodec } from './ring.js';

// ---- flags -----------------------------------------------------------------------------------

/** netif_tx_request.flags (NETTXF_*). */
export const NETTXF_csum_blank = 1 << 0;
export const NETTXF_data_validated = 1 << 1;
export const NETTXF_more_data = 1 << 2;
export const NETTXF_extra_info = 1 << 3;

/** netif_rx_response.flags (NETRXF_*): note the first two bits are swapped against TX. */
export const NETRXF_data_validated = 1 << 0;
export const NETRXF_csum_blank = 1 << 1;
export const NETRXF_more_data = 1 << 2;
export const NETRXF_extra_info = 1 << 3;
/** Deprecated: GSO prefix descriptor (no backend of interest sends it). */
export const NETRXF_gso_prefix = 1 << 4;

// ---- extra info ------------------------------------------------------------------------------

/** netif_extra_info.type (XEN_NETIF_EXTRA_TYPE_*). NONE is never valid in a ring. */
export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
export const XEN_NETIF_EXTRA_TYPE_MAX = 5;

/** netif_extra_info.flags: another extra-info slot follows this one. */
export const XEN_NETIF_EXTRA_FLAG_MORE = 1 << 0;

/** netif_extra_info.u.gso.type (XEN_NETIF_GSO_TYPE_*). */
export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

// ---- statuses and limits ---------------------------------------------------------------------

/** netif_tx_response.status and netif_rx_response.status (when negative). */
export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
/** A placeholder response for a TX slot that held an extra-info segment. */
export const NETIF_RSP_NULL = 1;

/** Largest packet a TX request chain may describe (the first request's size is a u16). */
export const XEN_NETIF_MAX_TX_SIZE = 0xffff;
/** Slots per packet every backend must accept (XEN_NETIF_NR_SLOTS_MIN). */
export const XEN_NETIF_NR_SLOTS_MIN = 18;
/**
 * Linux netback's XEN_NETBK_LEGACY_SLOTS_MAX (drivers/net/xen-netback/common.h, defined as
 * XEN_NETIF_NR_SLOTS_MIN): more slots than this are dropped with an error; more than the
 * `fatal_skb_slots` module parameter (default 20) is treated as a malicious frontend.
 */
export const XEN_NETBK_LEGACY_SLOTS_MAX = XEN_NETIF_NR_SLOTS_MIN;

// ---- structures ------------------------------------------------------------------------------

/** struct netif_tx_request, 12 bytes. `size` of the first request of a packet is the whole packet's length. */
export interface NetifTxRequest {
  gref: number;
  offset: number;
  flags: number;
  id: number;
  size: number;
}
export const NETIF_TX_REQUEST = { size: 12, gref: 0, offset: 4, flags: 6, id: 8, sizeField: 10 } as const;

/** struct netif_tx_response, 4 bytes. */
export interface NetifTxResponse {
  id: number;
  status: number;
}
export const NETIF_TX_RESPONSE = { size: 4, id: 0, status: 2 } as const;

/** struct netif_rx_request, 8 bytes. */
export interface NetifRxRequest {
  id: number;
  gref: number;
}
export const NETIF_RX_REQUEST = { size: 8, id: 0, pad: 2, gref: 4 } as const;

/** struct netif_rx_response, 8 bytes; status ≥ 0 is the fragment's byte count. */
export interface NetifRxResponse {
  id: number;
  offset: number;
  flags: number;
  status: number;
}
export const NETIF_RX_RESPONSE = { size: 8, id: 0, offset: 2, flags: 4, status: 6 } as const;

/**
 * struct netif_extra_info, 8 bytes: `type` u8 @0, `flags` u8 @1, then a 6-byte union @2 —
 * gso {size u16 @2, type u8 @4, pad u8 @5, features u16 @6}, mcast {addr[6] @2},
 * hash {type u8 @2, algorithm u8 @3, value[4] @4}. It occupies a whole TX request or RX
 * response slot.
 */
export const NETIF_EXTRA_INFO = {
  size: 8,
  type: 0,
  flags: 1,
  u: 2,
  gso: { size: 2, type: 4, pad: 5, features: 6 },
  mcast: { addr: 2 },
  hash: { type: 2, algorithm: 3, value: 4 },
} as const;

export type NetifExtraInfo =
  | { type: typeof XEN_NETIF_EXTRA_TYPE_GSO; flags: number; gso: { size: number; type: number; pad: number; features: number } }
  | { type: typeof XEN_NETIF_EXTRA_TYPE_MCAST_ADD | typeof XEN_NETIF_EXTRA_TYPE_MCAST_DEL; flags: number; addr: Uint8Array }
  | { type: typeof XEN_NETIF_EXTRA_TYPE_HASH; flags: number; hash: { type: number; algorithm: number; value: Uint8Array } }
  /** NONE or an unknown type, with the raw 6 union bytes (a backend rejects it). */
  | { type: number; flags: number; raw: Uint8Array };

// ---- codecs ----------------------------------------------------------------------------------

// Little-endian fields as x86 lays them out (xen/abi is a leaf: it has its own four helpers).
const getU16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const getU32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const setU16 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
};
const setU32 = (b: Uint8Array, o: number, v: number): void => {
  setU16(b, o, v & 0xffff);
  setU16(b, o + 2, (v >>> 16) & 0xffff);
};
const i16 = (v: number): number => (v << 16) >> 16;

export const netifTxRequestCodec: SlotCodec<NetifTxRequest> = {
  size: NETIF_TX_REQUEST.size,
  encode(v, b, o) {
    setU32(b, o + NETIF_TX_REQUEST.gref, v.gref);
    setU16(b, o + NETIF_TX_REQUEST.offset, v.offset);
    setU16(b, o + NETIF_TX_REQUEST.flags, v.flags);
    setU16(b, o + NETIF_TX_REQUEST.id, v.id);
    setU16(b, o + NETIF_TX_REQUEST.sizeField, v.size);
  },
  decode(b, o) {
    return {
      gref: getU32(b, o + NETIF_TX_REQUEST.gref),
      offset: getU16(b, o + NETIF_TX_REQUEST.offset),
      flags: getU16(b, o + NETIF_TX_REQUEST.flags),
      id: getU16(b, o + NETIF_TX_REQUEST.id),
      size: getU16(b, o + NETIF_TX_REQUEST.sizeField),
    };
  },
};

export const netifTxResponseCodec: SlotCodec<NetifTxResponse> = {
  size: NETIF_TX_RESPONSE.size,
  encode(v, b, o) {
    setU16(b, o + NETIF_TX_RESPONSE.id, v.id);
    setU16(b, o + NETIF_TX_RESPONSE.status, v.status & 0xffff);
  },
  decode(b, o) {
    return { id: getU16(b, o + NETIF_TX_RESPONSE.id), status: i16(getU16(b, o + NETIF_TX_RESPONSE.status)) };
  },
};

export const netifRxRequestCodec: SlotCodec<NetifRxRequest> = {
  size: NETIF_RX_REQUEST.size,
  encode(v, b, o) {
    setU16(b, o + NETIF_RX_REQUEST.id, v.id);
    setU16(b, o + NETIF_RX_REQUEST.pad, 0);
    setU32(b, o + NETIF_RX_REQUEST.gref, v.gref);
  },
  decode(b, o) {
    return { id: getU16(b, o + NETIF_RX_REQUEST.id), gref: getU32(b, o + NETIF_RX_REQUEST.gref) };
  },
};

export const netifRxResponseCodec: SlotCodec<NetifRxResponse> = {
  size: NETIF_RX_RESPONSE.size,
  encode(v, b, o) {
    setU16(b, o + NETIF_RX_RESPONSE.id, v.id);
    setU16(b, o + NETIF_RX_RESPONSE.offset, v.offset);
    setU16(b, o + NETIF_RX_RESPONSE.flags, v.flags);
    setU16(b, o + NETIF_RX_RESPONSE.status, v.status & 0xffff);
  },
  decode(b, o) {
    return {
      id: getU16(b, o + NETIF_RX_RESPONSE.id),
      offset: getU16(b, o + NETIF_RX_RESPONSE.offset),
      flags: getU16(b, o + NETIF_RX_RESPONSE.flags),
      status: i16(getU16(b, o + NETIF_RX_RESPONSE.status)),
    };
  },
};

export const netifExtraInfoCodec: SlotCodec<NetifExtraInfo> = {
  size: NETIF_EXTRA_INFO.size,
  encode(v, b, o) {
    const E = NETIF_EXTRA_INFO;
    b[o + E.type] = v.type & 0xff;
    b[o + E.flags] = v.flags & 0xff;
    b.fill(0, o + E.u, o + E.size);
    if ('gso' in v) {
      setU16(b, o + E.gso.size, v.gso.size);
      b[o + E.gso.type] = v.gso.type & 0xff;
      b[o + E.gso.pad] = v.gso.pad & 0xff;
      setU16(b, o + E.gso.features, v.gso.features);
    } else if ('addr' in v) {
      b.set(v.addr.subarray(0, 6), o + E.mcast.addr);
    } else if ('hash' in v) {
      b[o + E.hash.type] = v.hash.type & 0xff;
      b[o + E.hash.algorithm] = v.hash.algorithm & 0xff;
      b.set(v.hash.value.subarray(0, 4), o + E.hash.value);
    } else {
      b.set(v.raw.subarray(0, 6), o + E.u);
    }
  },
  decode(b, o) {
    const E = NETIF_EXTRA_INFO;
    const type = b[o + E.type]!;
    const flags = b[o + E.flags]!;
    switch (type) {
      case XEN_NETIF_EXTRA_TYPE_GSO:
        return {
          type,
          flags,
          gso: { size: getU16(b, o + E.gso.size), type: b[o + E.gso.type]!, pad: b[o + E.gso.pad]!, features: getU16(b, o + E.gso.features) },
        };
      case XEN_NETIF_EXTRA_TYPE_MCAST_ADD:
      case XEN_NETIF_EXTRA_TYPE_MCAST_DEL:
        return { type, flags, addr: b.slice(o + E.mcast.addr, o + E.mcast.addr + 6) };
      case XEN_NETIF_EXTRA_TYPE_HASH:
        return {
          type,
          flags,
          hash: { type: b[o + E.hash.type]!, algorithm: b[o + E.hash.algorithm]!, value: b.slice(o + E.hash.value, o + E.hash.value + 4) },
        };
      default:
        return { type, flags, raw: b.slice(o + E.u, o + E.size) };
    }
  },
};

// ---- ring sizes ------------------------------------------------------------------------------

/** sizeof(union netif_tx_sring_entry): 12 (the request). */
export const NETIF_TX_RING_ENTRY_SIZE = ringEntrySize(NETIF_TX_REQUEST.size, NETIF_TX_RESPONSE.size);
/** sizeof(union netif_rx_sring_entry): 8. */
export const NETIF_RX_RING_ENTRY_SIZE = ringEntrySize(NETIF_RX_REQUEST.size, NETIF_RX_RESPONSE.size);
/** NET_TX_RING_SIZE / XEN_NETIF_TX_RING_SIZE for one 4 KiB page: 256. */
export const NET_TX_RING_SIZE = ringSize(PAGE_SIZE, NETIF_TX_RING_ENTRY_SIZE);
/** NET_RX_RING_SIZE / XEN_NETIF_RX_RING_SIZE for one 4 KiB page: 256. */
export const NET_RX_RING_SIZE = ringSize(PAGE_SIZE, NETIF_RX_RING_ENTRY_SIZE);
