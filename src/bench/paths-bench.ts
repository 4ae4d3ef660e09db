/**
 * `npm run bench:paths`: every I/O path the host builder knows, plus the references, on the
 * bench host (benchHosts in experiment.ts): tcp_rr (1-byte request and response) latency and
 * rate, tcp_stream throughput at 64 KiB messages, CPU utilization per domain and Xen during
 * the stream (and of it, Xen's grant copies on behalf of each domain), per-frame counters of both, and the simulator's own speed (simulated seconds
 * per wall second). Environment: HV2M_BENCH_MS (measured window, simulated ms; default 200),
 * HV2M_BENCH_PATHS (comma-separated subset).
 */
import { MS } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { defaultPaths } from '../vnet/index.js';
import { REFERENCE_PATHS, runCase, type CaseResult } from './experiment.js';

const profile = Profile.load('default');
const windowMs = Number(process.env.HV2M_BENCH_MS ?? 200);
const all = [...defaultPaths().names, ...REFERENCE_PATHS];
const paths = process.env.HV2M_BENCH_PATHS !== undefined ? process.env.HV2M_BENCH_PATHS.split(',') : all;
for (const p of paths) if (!all.includes(p)) throw new Error(`HV2M_BENCH_PATHS: "${p}" is not a path (${all.join(', ')})`);

const wall = { wallMs: (): number => performance.now() };
const rr = new Map<string, CaseResult>();
const stream = new Map<string, CaseResult>();
for (const path of paths) {
  const common = { path, guestType: 'hvm' as const, seed: 1, warmupNs: 20 * MS, durationNs: windowMs * MS };
  rr.set(path, runCase(profile, { ...common, test: 'tcp_rr', size: 1 }, wall));
  stream.set(path, runCase(profile, { ...common, test: 'tcp_stream', size: 65536 }, wall));
}

const col = 14;
const row = (label: string, f: (p: string) => string): string => label.padEnd(34) + paths.map((p) => f(p).padStart(col)).join('');
const n = (x: number | null | undefined, d = 1): string => (x === null || x === undefined ? '-' : x.toFixed(d));
const lines: string[] = [];
lines.push(
  `bench:paths — default profile, bench host (4 pCPUs, Dom0 2 vCPUs, two 1-vCPU HVM guests), ${windowMs} ms simulated per case after 20 ms warm-up`,
);
lines.push(row('', (p) => p));
lines.push(row('tcp_rr mean (us)', (p) => n(rr.get(p)!.latencyUs?.mean)));
lines.push(row('tcp_rr p99 (us)', (p) => n(rr.get(p)!.latencyUs?.p99)));
lines.push(row('tcp_rr transactions/s', (p) => n(rr.get(p)!.transactionsPerSec, 0)));
lines.push(row('tcp_stream 64 KiB (Mbit/s)', (p) => n(stream.get(p)!.throughputMbps, 0)));
const domains = [...new Set(paths.flatMap((p) => Object.keys(stream.get(p)!.cpu)))];
for (const d of domains) lines.push(row(`  stream CPU % ${d}`, (p) => n(stream.get(p)!.cpu[d])));
const copiers = [...new Set(paths.flatMap((p) => Object.keys(stream.get(p)!.copyCpu)))];
for (const d of copiers) lines.push(row(`  of it grant copies for ${d}`, (p) => n(stream.get(p)!.copyCpu[d])));
const devices = [...new Set(paths.flatMap((p) => Object.keys(stream.get(p)!.devices ?? {})))];
for (const d of devices) lines.push(row(`  stream ${d} busy % (not a CPU)`, (p) => n(stream.get(p)!.devices?.[d])));
for (const [label, m] of [
  ['rr', rr],
  ['stream', stream],
] as const) {
  lines.push(row(`per frame (${label}):  frames`, (p) => String(m.get(p)!.frames)));
  for (const k of ['vmexits', 'hypercalls', 'grantCopies', 'copiedBytes', 'notifications', 'interrupts', 'dom0Packets'] as const) {
    lines.push(row(`  ${k}`, (p) => n(m.get(p)!.perFrame[k], 2)));
  }
}
lines.push(row('sim speed rr (sim s / wall s)', (p) => n(rr.get(p)!.simSpeed, 2)));
lines.push(row('sim speed stream (sim s / wall s)', (p) => n(stream.get(p)!.simSpeed, 2)));
console.log(lines.join('\n'));
