import {
  NETTXF_extra_info,
  NETTXF_more_data,
  PAGE_SIZE,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_TYPE_NONE,
  XEN_NETIF_GSO_TYPE_TCPV4,
  netifExtraInfoCodec,
  type NetifExtraInfo,
  type NetifTxRequest,
  type NetifTxResponse,
} from '../../xen/abi/index.js';
import type { BackRing } from '../../xen/index.js';

/** fatal_skb_slots' default (FATAL_SKB_SLOTS_DEFAULT): a packet of this many further slots is a malicious frontend. */
export const FATAL_SKB_SLOTS_DEFAULT = 20;
const ETH_HLEN = 14;

/** A request to answer, and the extra-info slots after it (each answered NETIF_RSP_NULL). */
export interface TxReqRef {
  id: number;
  extras: number;
}

/**
 * One packet's requests as netback takes them off the TX ring: fine (build it), dropped (answer
 * every request NETIF_RSP_ERROR, xenvif_tx_err), or fatal (xenvif_fatal_tx_err's message).
 * `slots` is how many ring slots the packet used; `end` the req_cons after it.
 */
export type TxTake =
  | { kind: 'fatal'; message: string }
  | { kind: 'drop'; reqs: TxReqRef[]; end: number; slots: number }
  | {
      kind: 'ok';
      txreq: NetifTxRequest;
      first: NetifTxRequest;
      frags: NetifTxRequest[];
      reqs: TxReqRef[];
      end: number;
      slots: number;
      gsoSize: number;
    };

/**
 * Linux 3.18 xenvif_tx_build_gops for one packet, up to the skb: the first request, its extras
 * (xenvif_get_extras: none left → "Missing extra info", type NONE or unknown → "Invalid extra
 * type", both fatal), the further slots (xenvif_count_requests: past the unconsumed requests
 * "Asked for %d slots but exceeds this limit" and FATAL_SKB_SLOTS_DEFAULT of them "Malicious
 * frontend", both fatal; XEN_NETBK_LEGACY_SLOTS_MAX of them, or slots adding up to more than
 * the first request's size — a frame over what its u16 can say — dropped; a slot past its
 * page "Cross page boundary", fatal), then the first slot's own checks (under ETH_HLEN
 * dropped, "Bad packet size"; past its page fatal) and the GSO extra (xenvif_set_skb_gso: a
 * zero size or an unknown type is fatal). Every request is copied out of the ring once
 * (RING_COPY_REQUEST) and checked on the copy. `n` is the unconsumed request count.
 */
export function takeTxRequests(tx: BackRing<NetifTxRequest, NetifTxResponse>, n: number): TxTake {
  let cons = tx.reqCons;
  const txreq = tx.copyRequest(cons);
  cons = (cons + 1) >>> 0;
  let workToDo = n - 1;
  let gso: NetifExtraInfo | null = null;
  let extras = 0;
  if ((txreq.flags & NETTXF_extra_info) !== 0) {
    let extra: NetifExtraInfo;
    do {
      if (workToDo < 1) return { kind: 'fatal', message: 'Missing extra info' };
      extra = tx.copyRequestAs(cons, netifExtraInfoCodec);
      cons = (cons + 1) >>> 0;
      workToDo--;
      extras++;
      if (extra.type === XEN_NETIF_EXTRA_TYPE_NONE || extra.type >= XEN_NETIF_EXTRA_TYPE_MAX)
        return { kind: 'fatal', message: `Invalid extra type: ${extra.type}` };
      if (extra.type === XEN_NETIF_EXTRA_TYPE_GSO) gso = extra;
    } while ((extra.flags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0);
  }
  const first = { ...txreq };
  const frags: NetifTxRequest[] = [];
  let dropErr = false;
  let slots = 0;
  if ((first.flags & NETTXF_more_data) !== 0) {
    let txp: NetifTxRequest;
    do {
      if (slots >= workToDo) return { kind: 'fatal', message: `Asked for ${slots} slots but exceeds this limit` };
      if (slots >= FATAL_SKB_SLOTS_DEFAULT)
        return { kind: 'fatal', message: `Malicious frontend using ${slots} slots, threshold ${FATAL_SKB_SLOTS_DEFAULT}` };
      if (!dropErr && slots >= XEN_NETBK_LEGACY_SLOTS_MAX) dropErr = true; // "Too many slots", dropped
      txp = tx.copyRequest((cons + slots) >>> 0);
      if (!dropErr && txp.size > first.size) dropErr = true; // "Invalid tx request, slot size > remaining size"
      first.size = (first.size - txp.size) & 0xffff;
      slots++;
      if (txp.offset + txp.size > PAGE_SIZE)
        return { kind: 'fatal', message: `Cross page boundary, txp->offset: ${txp.offset.toString(16)}, size: ${txp.size}` };
      frags.push(txp);
    } while ((txp.flags & NETTXF_more_data) !== 0);
  }
  const reqs = [{ id: txreq.id, extras }, ...frags.map((f) => ({ id: f.id, extras: 0 }))];
  const end = (cons + slots) >>> 0;
  const used = 1 + extras + slots;
  if (dropErr || txreq.size < ETH_HLEN) return { kind: 'drop', reqs, end, slots: used };
  if (first.offset + first.size > PAGE_SIZE)
    return { kind: 'fatal', message: `txreq.offset: ${first.offset.toString(16)}, size: ${first.size}, end: ${first.offset + first.size}` };
  let gsoSize = 0;
  if (gso !== null && 'gso' in gso) {
    if (gso.gso.size === 0) return { kind: 'fatal', message: 'GSO size must not be zero.' };
    if (gso.gso.type !== XEN_NETIF_GSO_TYPE_TCPV4) return { kind: 'fatal', message: `Bad GSO type ${gso.gso.type}.` };
    gsoSize = gso.gso.size;
  }
  return { kind: 'ok', txreq, first, frags, reqs, end, slots: used, gsoSize };
}
