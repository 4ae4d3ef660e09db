/**
 * The paper's evaluation as a list of independent cases: every path × test, streams at each
 * message size. Each case gets its own seed, derived from the run's seed and the case's
 * identity (path, test, size), so a case's result does not depend on which other cases run,
 * in what order, or on how many workers.
 */
import { MS, Rng } from '../sim/index.js';
import { REFERENCE_PATHS, TESTS, type CaseSpec, type TestName } from './experiment.js';

export const DEFAULT_TESTS: readonly TestName[] = TESTS;
/** The largest UDP payload in one IPv4 datagram. */
export const MAX_UDP_PAYLOAD = 65507;
export const DEFAULT_SIZES: readonly number[] = [64, 256, 1024, 4096, 16384, 65536];

export interface SuiteOptions {
  paths: readonly string[];
  tests: readonly TestName[];
  /** Stream message sizes, bytes. */
  sizes: readonly number[];
  /** RR request and response size, bytes. */
  rrSize: number;
  guestType: 'hvm' | 'pv';
  seed: number;
  /** Measured window per case, simulated ms. */
  durationMs: number;
  /** Unmeasured time before the window, simulated ms. */
  warmupMs: number;
  /** Echo requests per ping case. */
  pingCount: number;
}

/** A user's mistake in the options: names the option and what was expected. */
export class SuiteError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'SuiteError';
  }
}

/** The paths a run may name: those the host builder knows, then the references. */
export function knownPaths(registered: readonly string[]): string[] {
  return [...registered, ...REFERENCE_PATHS];
}

export function isStream(t: TestName): boolean {
  return t === 'tcp_stream' || t === 'udp_stream';
}

/** Parses a comma-separated list (`--paths pv,hv2m`), each item checked by `item`. */
export function parseList<T>(option: string, text: string, item: (s: string) => T): T[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((s) => s === '')) throw new SuiteError(option, `"${text}" has an empty item (expected a comma-separated list)`);
  const out = parts.map(item);
  if (new Set(parts).size !== parts.length) throw new SuiteError(option, `"${text}" names an item twice`);
  return out;
}

export function parsePath(known: readonly string[]): (s: string) => string {
  return (s) => {
    if (!known.includes(s)) throw new SuiteError('--paths', `"${s}" is not a path this build knows (${known.join(', ')})`);
    return s;
  };
}

export function parseTest(s: string): TestName {
  if (!(TESTS as readonly string[]).includes(s)) throw new SuiteError('--tests', `"${s}" is not a test (${TESTS.join(', ')})`);
  return s as TestName;
}

export function parseIntOption(option: string, s: string, min: number, max: number): number {
  if (!/^\d+$/.test(s)) throw new SuiteError(option, `"${s}" is not a whole number`);
  const n = Number(s);
  if (n < min || n > max) throw new SuiteError(option, `${n} is outside ${min}–${max}`);
  return n;
}

/** A 32-bit seed for one case from the run's seed and the case's identity. */
export function caseSeed(seed: number, path: string, test: TestName, size: number): number {
  return new Rng(seed).fork(`case:${path}/${test}/${size}`).int(0x1_0000_0000);
}

/** The cases of a run, in report order (paths, then tests, then sizes). */
export function planCases(o: SuiteOptions): CaseSpec[] {
  if (o.paths.length === 0) throw new SuiteError('--paths', 'no path to run');
  if (o.tests.length === 0) throw new SuiteError('--tests', 'no test to run');
  if (o.tests.some(isStream) && o.sizes.length === 0) throw new SuiteError('--sizes', 'stream tests need at least one message size');
  if (!(o.durationMs > 0)) throw new SuiteError('--duration-ms', `${o.durationMs} must be positive`);
  const out: CaseSpec[] = [];
  for (const path of o.paths) {
    for (const test of o.tests) {
      // A UDP datagram over IPv4 carries at most 65,507 bytes (65,535 − 20 − 8): a larger
      // udp_stream size runs at that (netperf's send would fail with EMSGSIZE).
      const sizes = isStream(test)
        ? [...new Set(o.sizes.map((s) => (test === 'udp_stream' ? Math.min(s, MAX_UDP_PAYLOAD) : s)))]
        : [test === 'ping' ? 56 : o.rrSize];
      for (const size of sizes) {
        out.push({
          path,
          test,
          size,
          guestType: o.guestType,
          seed: caseSeed(o.seed, path, test, size),
          warmupNs: o.warmupMs * MS,
          durationNs: o.durationMs * MS,
          pingCount: o.pingCount,
        });
      }
    }
  }
  return out;
}
