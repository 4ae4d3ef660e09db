import { Buffer } from 'node:buffer';
import * as hdr from 'hdr-histogram-js';
import type { Ipv4Addr } from '../../net/wire/addr.js';
import type { Stack } from '../../net/stack.js';
import { isSocketError, type SocketError } from '../../net/socket/errors.js';

/** Where a workload runs: two stacks and the server's address, whatever connects them. */
export interface Endpoints {
  client: Stack;
  server: Stack;
  serverAddr: Ipv4Addr;
  /** Port of the server side; default 12865 + workload offset (netperf's control port). */
  port?: number;
}

/** A run-length for a workload: measured `duration` ns after `warmup` ns that are not counted. */
export interface Timing {
  warmup: number;
  duration: number;
}

/** The data did not arrive as sent: the run is invalid and must fail loudly. */
export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/** A socket call failed where the workload cannot go on. */
export class WorkloadError extends Error {
  constructor(what: string, e: SocketError) {
    super(`${what}: ${e.toString()}`);
    this.name = 'WorkloadError';
  }
}

export function must<T>(what: string, v: T | SocketError): T {
  if (isSocketError(v)) throw new WorkloadError(what, v);
  return v;
}

/**
 * The content pattern, defined byte by byte so that any slice of a stream can be filled or
 * checked on its own: every 64-byte block of a stream (salted per stream or message) begins
 * with a 4-byte stamp, the little-endian word `block * 2654435761 ^ salt`, unique per block
 * within 256 GiB; the other bytes are `TABLE[o mod 65521]`, a seeded pseudo-random table with
 * a prime period. So a corrupted byte, a foreign message (other salt), and a lost, duplicated
 * or reordered run of any length are caught where they land: a shift by anything but a
 * multiple of the period breaks the table bytes, a shift by a multiple of it the stamps.
 * Filling copies table slices and writes the stamps; checking fills the expected bytes and
 * compares natively — at 10 Gbit/s the pattern is otherwise the workload's main cost.
 */
const MUL = 2654435761;
const BLOCK = 64;
const STAMP = 4;
const PERIOD = 65521;
const TABLE = ((): Uint8Array => {
  const t = new Uint8Array(2 * PERIOD);
  let x = 0x2545f491; // xorshift32 (Marsaglia 2003), fixed seed: the table is part of the pattern's definition
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    t[i] = x & 255;
  }
  t.copyWithin(PERIOD, 0, PERIOD);
  return t;
})();

/** Byte `o` of the stream salted `salt`. */
export function patternByte(o: number, salt: number): number {
  const r = o % BLOCK;
  if (r >= STAMP) return TABLE[o % PERIOD]!;
  const w = (Math.imul(Math.floor(o / BLOCK), MUL) ^ salt) >>> 0;
  return (w >>> (r * 8)) & 255;
}

/** Writes the stamps that fall in a slice at stream offset `off`. */
function writeStamps(buf: Uint8Array, off: number, salt: number): void {
  const len = buf.length;
  const block = Math.floor(off / BLOCK);
  let m = Math.imul(block, MUL);
  let start = block * BLOCK - off;
  if (start < 0) {
    // The slice begins inside a block: only that block's stamp bytes at or after its start.
    const w = m ^ salt;
    for (let j = -start; j < STAMP && start + j < len; j++) buf[start + j] = (w >>> (j * 8)) & 255;
    start += BLOCK;
    m = (m + MUL) | 0;
  }
  for (; start + STAMP <= len; start += BLOCK, m = (m + MUL) | 0) {
    const w = m ^ salt;
    buf[start] = w & 255;
    buf[start + 1] = (w >>> 8) & 255;
    buf[start + 2] = (w >>> 16) & 255;
    buf[start + 3] = (w >>> 24) & 255;
  }
  if (start < len) {
    const w = m ^ salt;
    for (let j = 0; start + j < len; j++) buf[start + j] = (w >>> (j * 8)) & 255;
  }
}

export function fillPattern(buf: Uint8Array, streamOffset: number, salt: number): void {
  for (let pos = 0; pos < buf.length; ) {
    const t = (streamOffset + pos) % PERIOD;
    const n = Math.min(buf.length - pos, PERIOD);
    buf.set(TABLE.subarray(t, t + n), pos);
    pos += n;
  }
  writeStamps(buf, streamOffset, salt);
}

let expected = new Uint8Array(65536);

/** Offset (within `buf`) of the first byte that breaks the pattern, or -1. */
export function checkPattern(buf: Uint8Array, streamOffset: number, salt: number): number {
  if (expected.length < buf.length) expected = new Uint8Array(buf.length);
  const want = expected.subarray(0, buf.length);
  fillPattern(want, streamOffset, salt);
  if (Buffer.compare(buf, want) === 0) return -1;
  for (let i = 0; i < buf.length; i++) if (buf[i] !== want[i]) return i;
  return -1;
}

export function verifyPattern(what: string, buf: Uint8Array, streamOffset: number, salt: number): void {
  const bad = checkPattern(buf, streamOffset, salt);
  if (bad >= 0) throw new IntegrityError(`${what}: byte ${streamOffset + bad} of the stream is ${buf[bad]}, not what was sent`);
}

export interface LatencySummary {
  count: number;
  /** Nanoseconds. */
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * Latencies in ns, in an HdrHistogram (3 significant digits, up to 1000 s) for the
 * percentiles; count, sum, min and max are kept exactly beside it, so the mean is exact and
 * no percentile (a bucket's highest equivalent value) is reported above the largest sample
 * or below the smallest.
 */
export class LatencyRecorder {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e12, numberOfSignificantValueDigits: 3 });
  private sum = 0;
  private lo = Infinity;
  private hi = 0;

  record(ns: number): void {
    const v = Math.max(1, Math.round(ns));
    this.h.recordValue(v);
    this.sum += v;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    const h = this.h;
    if (h.totalCount === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    const at = (q: number): number => Math.min(this.hi, Math.max(this.lo, h.getValueAtPercentile(q)));
    return { count: h.totalCount, mean: this.sum / h.totalCount, min: this.lo, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: this.hi };
  }
}

/** 10^6 bits per second (netperf's default unit), from bytes over ns. */
export function megabitsPerSecond(bytes: number, ns: number): number {
  return ns > 0 ? (bytes * 8 * 1e3) / ns : 0;
}
