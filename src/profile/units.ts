/**
 * Units a cost-profile entry may be written in, by dimension, and their conversion to the
 * model's internal units: nanoseconds for time, nanoseconds per byte for per-byte costs
 * (a bandwidth is written as a rate and converted), plain numbers for counts, bytes for sizes.
 * Cycle units need the profile's CPU clock.
 */
export type Dimension = 'time' | 'perByte' | 'count' | 'bytes' | 'ratio';

interface UnitDef {
  dim: Dimension;
  /** Multiply a value by this to get internal units (for cycles: divided by GHz too). */
  factor: number;
  /** Rates are inverted after scaling: ns/B = 1e9 / (B/s). */
  rate?: true;
  cycles?: true;
}

export const UNITS: Record<string, UnitDef> = {
  ns: { dim: 'time', factor: 1 },
  us: { dim: 'time', factor: 1e3 },
  µs: { dim: 'time', factor: 1e3 },
  ms: { dim: 'time', factor: 1e6 },
  s: { dim: 'time', factor: 1e9 },
  cycles: { dim: 'time', factor: 1, cycles: true },
  'ns/B': { dim: 'perByte', factor: 1 },
  'cycles/B': { dim: 'perByte', factor: 1, cycles: true },
  'B/s': { dim: 'perByte', factor: 1, rate: true },
  'MB/s': { dim: 'perByte', factor: 1e6, rate: true },
  'GB/s': { dim: 'perByte', factor: 1e9, rate: true },
  'bit/s': { dim: 'perByte', factor: 1 / 8, rate: true },
  'Mbit/s': { dim: 'perByte', factor: 1e6 / 8, rate: true },
  'Gbit/s': { dim: 'perByte', factor: 1e9 / 8, rate: true },
  count: { dim: 'count', factor: 1 },
  B: { dim: 'bytes', factor: 1 },
  KiB: { dim: 'bytes', factor: 1024 },
  MiB: { dim: 'bytes', factor: 1024 * 1024 },
  ratio: { dim: 'ratio', factor: 1 },
  '%': { dim: 'ratio', factor: 0.01 },
};

export function unitsOf(dim: Dimension): string[] {
  return Object.entries(UNITS)
    .filter(([, u]) => u.dim === dim)
    .map(([name]) => name);
}

/** Converts `value` in `unit` to internal units; cycles use `clockGHz`. */
export function toInternal(value: number, unit: string, clockGHz: number): number {
  const u = UNITS[unit];
  if (u === undefined) throw new Error(`unknown unit ${unit}`);
  let v = value * u.factor;
  if (u.cycles === true) v /= clockGHz;
  if (u.rate === true) v = 1e9 / v;
  return v;
}
