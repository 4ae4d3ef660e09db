import { PAGE_SIZE } from '../../xen/abi/index.js';
import type { RingPage } from '../../xen/index.js';

/**
 * The shmem baseline's FIFO (XenLoop-style, Wang et al. HPDC 2008 §3: a circular buffer of
 * data pages plus a descriptor page, one per direction). Layout *(ours, after XenLoop's FIFO
 * descriptor)*:
 *
 * descriptor page (granted by the receiver, mapped writable by the sender):
 *   0  u32 prod        bytes the sender produced (free-running; written by the sender)
 *   4  u32 cons        bytes the receiver consumed (free-running; written by the receiver)
 *   8  u32 prod_event  the receiver wants an event when prod passes this (set when it goes idle)
 *   12 u32 cons_event  the sender wants an event when cons passes this (set when the FIFO is full)
 *   16 u32 pages       data pages (a power of two)
 *   20 u32 gref[pages] the data pages' grant refs
 *
 * data pages: records, each an 8-byte header {u32 len, u8 flags, u8 0, u16 gso_size} and
 * `len` frame bytes, padded to 8 bytes; a record's bytes wrap around the end of the buffer,
 * its header never does (the size is a multiple of 8). The event rule is ring.h's: notify
 * when `new - event < new - old` (mod 2^32).
 */
export const FIFO_PROD = 0;
export const FIFO_CONS = 4;
export const FIFO_PROD_EVENT = 8;
export const FIFO_CONS_EVENT = 12;
export const FIFO_PAGES = 16;
export const FIFO_GREFS = 20;
/** Most data pages a FIFO may have (1 MiB; the grefs fit the descriptor page easily). */
export const FIFO_MAX_PAGES = 256;
export const REC_HEADER = 8;
/** Record flags: the netif checksum pair, and a TCPv4 GSO frame (gso_size set). */
export const REC_CSUM_BLANK = 1;
export const REC_DATA_VALIDATED = 2;
export const REC_GSO_TCPV4 = 4;
const REC_FLAGS = REC_CSUM_BLANK | REC_DATA_VALIDATED | REC_GSO_TCPV4;
/** Shortest frame a record may carry (an Ethernet header). */
export const REC_MIN_LEN = 14;

/** A FIFO as one end reaches it: its descriptor page and its data pages as one range. */
export interface FifoView {
  readonly desc: RingPage;
  readonly data: RingPage;
  /** Bytes of data (pages × 4096), a power of two — the end's own idea, never re-read from the peer. */
  readonly size: number;
}

export interface RecordHeader {
  len: number;
  flags: number;
  gsoSize: number;
}

/** Bytes a record of a `len`-byte frame takes in the FIFO. */
export function recordBytes(len: number): number {
  return REC_HEADER + ((len + 7) & ~7);
}

/** ring.h's event rule over free-running u32 indices. */
export function eventDue(now: number, old: number, event: number): boolean {
  return (now - event) >>> 0 < (now - old) >>> 0;
}

/** Bytes in use given the two indices (may exceed `size` if the peer wrote nonsense). */
export function used(prod: number, cons: number): number {
  return (prod - cons) >>> 0;
}

function span(f: FifoView, at: number, n: number, fn: (off: number, done: number, len: number) => void): void {
  const off = at & (f.size - 1);
  const first = Math.min(n, f.size - off);
  fn(off, 0, first);
  if (first < n) fn(0, first, n - first);
}

/** Writes a record at index `at`: its header, then the frame's bytes (a guest memcpy into the FIFO pages). */
export function writeRecord(f: FifoView, at: number, h: RecordHeader, bytes: Uint8Array): void {
  const hdr = new Uint8Array(REC_HEADER);
  const dv = new DataView(hdr.buffer);
  dv.setUint32(0, h.len, true);
  dv.setUint8(4, h.flags);
  dv.setUint16(6, h.gsoSize, true);
  f.data.write(at & (f.size - 1), hdr);
  span(f, at + REC_HEADER, bytes.length, (off, done, len) => f.data.write(off, bytes.subarray(done, done + len)));
}

/** The header of the record at `at`, copied once out of the shared pages (no double fetch). */
export function readHeader(f: FifoView, at: number): RecordHeader {
  const hdr = new Uint8Array(REC_HEADER);
  f.data.readInto(at & (f.size - 1), hdr);
  const dv = new DataView(hdr.buffer);
  return { len: dv.getUint32(0, true), flags: dv.getUint8(4), gsoSize: dv.getUint16(6, true) };
}

/** Copies the record's frame bytes at `at` into `dst` (the receiver's memcpy out of the FIFO). */
export function readBytes(f: FifoView, at: number, dst: Uint8Array): void {
  span(f, at + REC_HEADER, dst.length, (off, done, len) => f.data.readInto(off, dst.subarray(done, done + len)));
}

/** Why a record header cannot be right with `avail` bytes produced, or null if it can. */
export function checkRecord(h: RecordHeader, avail: number, size: number): string | null {
  if (h.len < REC_MIN_LEN || recordBytes(h.len) > size) return `a record of ${h.len} bytes in a FIFO of ${size}`;
  if (recordBytes(h.len) > avail) return `a record of ${h.len} bytes with only ${avail} bytes produced`;
  if ((h.flags & ~REC_FLAGS) !== 0) return `unknown record flags 0x${h.flags.toString(16)}`;
  if ((h.flags & REC_GSO_TCPV4) !== 0 && h.gsoSize === 0) return 'a GSO record without its segment size';
  return null;
}

/** Data pages of a FIFO of `bytes` bytes. */
export function fifoPages(bytes: number): number {
  return bytes / PAGE_SIZE;
}
