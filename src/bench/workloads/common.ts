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
 */
export function fillPattern(buf: Uint8Array, streamOffset: number, salt: number): void {
  for (let i = 0; i < buf.length; i++) {
    const o = streamOffset + i;
    const w = (Math.imul(Math.floor(o / 4), 2654435761) ^ salt) >>> 0;
    buf[i] = (w >>> ((o & 3) * 8)) & 255;
  }
}

/** Offset (within `buf`) of the first byte that breaks the pattern, or -1. */
export function checkPattern(buf: Uint8Array, streamOffset: number, salt: number): number {
  for (let i = 0; i < buf.length; i++) {
    const o = streamOffset + i;
    const w = (Math.imul(Math.floor(o / 4), 2654435761) ^ salt) >>> 0;
    if (buf[i] !== ((w >>> ((o & 3) * 8)) & 255)) return i;
  }
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
    if (h.totalCount === 0) return { count: 0, mean: 0, min: 0, p50: 0, p99: 0, p999: 0, max: 0 };
    return { count: h.totalCount, mean: h.mean, min: h.minNonZeroValue, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue };
  }
}

/** 10^6 bits per second (netperf's default unit), from bytes over ns. */
export function megabitsPerSecond(bytes: number, ns: number): number {
  return ns > 0 ? (bytes * 8 * 1e3) / ns : 0;
}
