/**
 * Virtual time. All model time is an integer number of nanoseconds held in a JS number,
 * exact up to 2^53 ns (about 104 days of simulated time).
 */
export type Time = number;

export const NS = 1;
export const US = 1_000;
export const MS = 1_000_000;
export const S = 1_000_000_000;

/** Largest time the kernel accepts; beyond it integer nanoseconds stop being exact. */
export const MAX_TIME: Time = Number.MAX_SAFE_INTEGER;

export function isTime(t: number): boolean {
  return Number.isSafeInteger(t) && t >= 0;
}

/** Human-readable rendering of a time or duration, for logs and reports only. */
export function formatTime(t: Time): string {
  if (t >= S) return `${(t / S).toFixed(3)} s`;
  if (t >= MS) return `${(t / MS).toFixed(3)} ms`;
  if (t >= US) return `${(t / US).toFixed(3)} µs`;
  return `${t} ns`;
}
