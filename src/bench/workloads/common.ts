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
 * The content pattern: byte `o` of a stream (salted per stream or message) is byte `o & 3` of
 * the 32-bit word `(o >> 2) * 2654435761 ^ salt`. Each 4-byte word differs from every other
 * within 16 GiB, so a lost, duplicated, reordered or corrupted byte is caught where it lands.
 * Filling and checking go a word at a time where the buffer allows (word k+1's product is
 * word k's plus the multiplier, mod 2^32): at 10 Gbit/s they are the workload's main cost.
 */
const MUL = 2654435761;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function patternByte(o: number, salt: number): number {
  const w = (Math.imul(Math.floor(o / 4), MUL) ^ salt) >>> 0;
  return (w >>> ((o & 3) * 8)) & 255;
}

/** The aligned middle of `buf` as 32-bit words, when the platform and the stream allow: [first byte, word count]. */
function wordSpan(buf: Uint8Array, streamOffset: number): [number, number] {
  if (!LITTLE_ENDIAN) return [buf.length, 0];
  const head = (4 - (streamOffset & 3)) & 3;
  if (head >= buf.length || ((buf.byteOffset + head) & 3) !== 0) return [buf.length, 0];
  return [head, (buf.length - head) >>> 2];
}

export function fillPattern(buf: Uint8Array, streamOffset: number, salt: number): void {
  const [first, words] = wordSpan(buf, streamOffset);
  for (let i = 0; i < first; i++) buf[i] = patternByte(streamOffset + i, salt);
  if (words > 0) {
    const w32 = new Uint32Array(buf.buffer, buf.byteOffset + first, words);
    let m = Math.imul(Math.floor((streamOffset + first) / 4), MUL);
    for (let j = 0; j < words; j++) {
      w32[j] = m ^ salt;
      m = (m + MUL) | 0;
    }
  }
  for (let i = first + words * 4; i < buf.length; i++) buf[i] = patternByte(streamOffset + i, salt);
}

/** Offset (within `buf`) of the first byte that breaks the pattern, or -1. */
export function checkPattern(buf: Uint8Array, streamOffset: number, salt: number): number {
  const [first, words] = wordSpan(buf, streamOffset);
  for (let i = 0; i < first; i++) if (buf[i] !== patternByte(streamOffset + i, salt)) return i;
  if (words > 0) {
    const w32 = new Uint32Array(buf.buffer, buf.byteOffset + first, words);
    let m = Math.imul(Math.floor((streamOffset + first) / 4), MUL);
    for (let j = 0; j < words; j++) {
      if (w32[j] !== (m ^ salt) >>> 0) {
        for (let i = first + j * 4; ; i++) if (buf[i] !== patternByte(streamOffset + i, salt)) return i;
      }
      m = (m + MUL) | 0;
    }
  }
  for (let i = first + words * 4; i < buf.length; i++) if (buf[i] !== patternByte(streamOffset + i, salt)) return i;
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

/** Latencies in ns, in an HdrHistogram (3 significant digits, up to 1000 s). */
export class LatencyRecorder {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 1e12, numberOfSignificantValueDigits: 3 });

  record(ns: number): void {
    this.h.recordValue(Math.max(1, Math.round(ns)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    const h = this.h;
    if (h.totalCount === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return { count: h.totalCount, mean: h.mean, min: h.minNonZeroValue, p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue };
  }
}

/** 10^6 bits per second (netperf's default unit), from bytes over ns. */
export function megabitsPerSecond(bytes: number, ns: number): number {
  return ns > 0 ? (bytes * 8 * 1e3) / ns : 0;
}
