import { seqGeq, seqGt, seqLeq, seqLt } from '../wire/tcp.js';
import type { TcpControlBlock } from './tcp-control-block.js';

/** A half-open range of sequence numbers [start, end). */
export interface SeqRange {
  start: number;
  end: number;
}

/** A range retransmitted in loss recovery, and snd_max when it was (Linux's ack_seq for tcp_mark_lost_retrans). */
export interface Retransmission extends SeqRange {
  sndMaxThen: number;
}

/** Blocks a receiver remembers (Linux TCP_NUM_SACKS); how many it sends depends on option space. */
const TCP_NUM_SACKS = 4;
/** The SACK option: kind, length, 8 bytes per block (RFC 2018 3), padded by two NOPs. */
export const SACK_OPTION_BASE = 4;
export const SACK_BLOCK_LEN = 8;

// ---- Receiver: the blocks of the out-of-order queue (RFC 2018 4; Linux tcp_sack_new_ofo_skb) ----

/**
 * An out-of-order segment [seq, end) arrived: its block goes first (RFC 2018 4: the block
 * holding the most recent segment is the first), coalesced with every block it touches.
 */
export function sackNoteOfo(tcb: TcpControlBlock, seq: number, end: number): void {
  if (!tcb.sackOk) return;
  let s = seq;
  let e = end;
  const keep: SeqRange[] = [];
  for (const b of tcb.rcvSacks) {
    if (seqLeq(b.start, e) && seqLeq(s, b.end)) {
      if (seqLt(b.start, s)) s = b.start;
      if (seqGt(b.end, e)) e = b.end;
    } else keep.push(b);
  }
  keep.unshift({ start: s, end: e });
  if (keep.length > TCP_NUM_SACKS) keep.length = TCP_NUM_SACKS;
  tcb.rcvSacks = keep;
}

/** rcv_nxt moved: blocks it has passed are no longer reported (tcp_sack_remove). */
export function sackRcvAdvanced(tcb: TcpControlBlock): void {
  if (tcb.rcvSacks.length > 0) tcb.rcvSacks = tcb.rcvSacks.filter((b) => seqGt(b.end, tcb.rcvNxt));
}

/**
 * The blocks to put in an outgoing segment, flattened, or undefined: as many as fit in the
 * 40 bytes of options beside timestamps (3 with them, 4 without: RFC 2018 3).
 */
export function sackBlocksToSend(tcb: TcpControlBlock): number[] | undefined {
  if (!tcb.sackOk || tcb.rcvSacks.length === 0) return undefined;
  const n = Math.min(tcb.rcvSacks.length, tcb.tsOk ? 3 : 4);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(tcb.rcvSacks[i]!.start, tcb.rcvSacks[i]!.end);
  return out;
}

/** Option bytes the SACK blocks of the next segment take (tcp_current_mss subtracts them). */
export function sackOptionLen(tcb: TcpControlBlock): number {
  if (!tcb.sackOk || tcb.rcvSacks.length === 0) return 0;
  return SACK_OPTION_BASE + SACK_BLOCK_LEN * Math.min(tcb.rcvSacks.length, tcb.tsOk ? 3 : 4);
}

// ---- Sender: the scoreboard (RFC 6675 2-4; Linux tcp_sacktag_write_queue) ----

/** Inserts [s, e) into a sorted list of disjoint ranges, merging what it touches. */
function addRange(list: SeqRange[], s: number, e: number): void {
  let i = 0;
  while (i < list.length && seqLt(list[i]!.end, s)) i++;
  let j = i;
  while (j < list.length && seqLeq(list[j]!.start, e)) {
    if (seqLt(list[j]!.start, s)) s = list[j]!.start;
    if (seqGt(list[j]!.end, e)) e = list[j]!.end;
    j++;
  }
  list.splice(i, j - i, { start: s, end: e });
}

/** Removes [s, e) from every range of `list` (which keeps its order). */
function cutRange<T extends SeqRange>(list: T[], s: number, e: number): T[] {
  const out: T[] = [];
  for (const r of list) {
    if (seqLeq(r.end, s) || seqGeq(r.start, e)) {
      out.push(r);
      continue;
    }
    if (seqLt(r.start, s)) out.push({ ...r, end: s });
    if (seqGt(r.end, e)) out.push({ ...r, start: e });
  }
  return out;
}

/**
 * The SACK blocks of an arriving ACK. Blocks at or below snd_una (D-SACK, RFC 2883, which
 * this stack neither sends nor uses) and blocks beyond snd_max are ignored, as Linux's
 * tcp_is_sackblock_valid does.
 */
export function sackReceive(tcb: TcpControlBlock, blocks: readonly number[]): void {
  for (let i = 0; i + 1 < blocks.length; i += 2) {
    let s = blocks[i]!;
    const e = blocks[i + 1]!;
    if (!seqLt(s, e) || seqGt(e, tcb.sndMax) || seqLeq(e, tcb.sndUna)) continue;
    if (seqLt(s, tcb.sndUna)) s = tcb.sndUna;
    addRange(tcb.sacked, s, e);
    tcb.rexmits = cutRange(tcb.rexmits, s, e);
  }
  markLostRetransmits(tcb);
}

/** snd_una advanced: what it covers leaves the scoreboard (tcp_clean_rtx_queue). */
export function sackAdvance(tcb: TcpControlBlock): void {
  const una = tcb.sndUna;
  if (tcb.sacked.length > 0) {
    tcb.sacked = tcb.sacked.filter((r) => seqGt(r.end, una));
    if (tcb.sacked.length > 0 && seqLt(tcb.sacked[0]!.start, una)) tcb.sacked[0] = { start: una, end: tcb.sacked[0]!.end };
  }
  if (tcb.rexmits.length > 0) tcb.rexmits = cutRange(tcb.rexmits, (una - 0x7fffffff) >>> 0, una);
  if (seqLt(tcb.lostHigh, una)) tcb.lostHigh = una;
}

/** RFC 2018 8 / RFC 6675 5.1: after a retransmission timeout the scoreboard is discarded. */
export function sackReset(tcb: TcpControlBlock): void {
  tcb.sacked = [];
  tcb.rexmits = [];
  tcb.lostHigh = tcb.sndUna;
}

function highestSacked(tcb: TcpControlBlock): number {
  return tcb.sacked.length > 0 ? tcb.sacked[tcb.sacked.length - 1]!.end : tcb.sndUna;
}

/**
 * RFC 6675 4 IsLost, as a boundary: every byte not SACKed below the returned sequence is
 * lost, because more than (DupThresh - 1) SMSS bytes, or DupThresh discontiguous blocks,
 * are SACKed above it. Once lost stays lost (Linux's TCPCB_LOST mark), until snd_una or a
 * timeout clears it.
 */
export function lostEnd(tcb: TcpControlBlock): number {
  const dupThresh = tcb.layer.stack.costs.reordering;
  const bytes = (dupThresh - 1) * tcb.mss;
  let cum = 0;
  for (let i = tcb.sacked.length - 1; i >= 0; i--) {
    const r = tcb.sacked[i]!;
    cum += (r.end - r.start) | 0;
    if (cum > bytes || tcb.sacked.length - i >= dupThresh) {
      if (seqGt(r.start, tcb.lostHigh)) tcb.lostHigh = r.start;
      break;
    }
  }
  return tcb.lostHigh;
}

/** Marks at least the first unacknowledged segment lost (entering recovery on DupThresh duplicate ACKs). */
export function markHeadLost(tcb: TcpControlBlock): void {
  const head = (tcb.sndUna + Math.min(tcb.mss, Math.max(1, (tcb.sndMax - tcb.sndUna) | 0))) >>> 0;
  if (seqGt(head, tcb.lostHigh)) tcb.lostHigh = head;
}

function bytesIn(list: readonly SeqRange[], below?: number): number {
  let n = 0;
  for (const r of list) {
    if (below !== undefined && seqGeq(r.start, below)) break;
    const end = below !== undefined && seqGt(r.end, below) ? below : r.end;
    n += (end - r.start) | 0;
  }
  return n;
}

/**
 * RFC 6675 4 SetPipe, in bytes, as Linux's tcp_packets_in_flight counts it: outstanding
 * data, less what is SACKed or lost, plus the retransmissions still in flight.
 */
export function pipe(tcb: TcpControlBlock): number {
  const out = (tcb.sndMax - tcb.sndUna) | 0;
  const le = lostEnd(tcb);
  const lost = ((le - tcb.sndUna) | 0) - bytesIn(tcb.sacked, le);
  return out - bytesIn(tcb.sacked) - lost + bytesIn(tcb.rexmits);
}

/**
 * RFC 6675 4 NextSeg rule 1 (Linux tcp_xmit_retransmit_queue): the first lost, unSACKed
 * range not already retransmitted since it was marked lost, at most `smss` long; or null.
 */
export function nextLostSegment(tcb: TcpControlBlock, smss: number): SeqRange | null {
  const le = lostEnd(tcb);
  const a = tcb.sacked;
  const b = tcb.rexmits;
  // Both lists are sorted by start: walk them together past everything covering s.
  let s = tcb.sndUna;
  let i = 0;
  let j = 0;
  let next: SeqRange | undefined;
  for (;;) {
    const ra = a[i];
    const rb = b[j];
    const r = ra === undefined ? rb : rb === undefined || seqLeq(ra.start, rb.start) ? ra : rb;
    if (r === undefined) break;
    if (seqGt(r.start, s)) {
      next = r;
      break;
    }
    if (seqGt(r.end, s)) s = r.end;
    if (r === ra) i++;
    else j++;
  }
  if (!seqLt(s, le)) return null;
  let e = (s + smss) >>> 0;
  if (seqGt(e, le)) e = le;
  if (next !== undefined && seqLt(next.start, e)) e = next.start;
  return { start: s, end: e };
}

/** A retransmission of [start, end) left now. */
export function noteSackRetransmit(tcb: TcpControlBlock, start: number, end: number): void {
  const list = tcb.rexmits;
  let i = list.length;
  while (i > 0 && seqGt(list[i - 1]!.start, start)) i--;
  list.splice(i, 0, { start, end, sndMaxThen: tcb.sndMax });
}

/**
 * Linux 3.18 tcp_mark_lost_retrans (without FACK): a retransmission is lost too once data
 * sent more than `tcp_reordering` segments after it has been SACKed; it is then due again.
 */
function markLostRetransmits(tcb: TcpControlBlock): void {
  if (tcb.rexmits.length === 0) return;
  const upto = highestSacked(tcb);
  const reord = tcb.layer.stack.costs.reordering * tcb.mss;
  const keep = tcb.rexmits.filter((r) => !seqGeq(upto, (r.sndMaxThen + reord) >>> 0));
  tcb.stats.lostRetransmits += tcb.rexmits.length - keep.length;
  tcb.rexmits = keep;
}
