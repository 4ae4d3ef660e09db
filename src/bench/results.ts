/**
 * The results of a bench run as files: results.json (schema: schemas/results.schema.json)
 * and results.csv, the same records flattened one per line.
 */
import type { CaseResult } from './experiment.js';

export interface ResultsDocument {
  version: string;
  profile: { name: string; description: string; xen: string | null };
  seed: number;
  guestType: 'hvm' | 'pv';
  durationMs: number;
  warmupMs: number;
  host: unknown;
  /** hv2m run: the scenario file. */
  scenario?: string;
  results: (CaseResult & { workload?: string })[];
}

const PER_FRAME = ['vmexits', 'hypercalls', 'grantCopies', 'copiedBytes', 'notifications', 'interrupts', 'dom0Packets'] as const;
const LATENCY = ['mean', 'p50', 'p90', 'p99', 'max'] as const;

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
function csvField(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One header line and one line per result; CPU columns are the union of every case's domains, xen last, then each domain's grant-copy share. */
export function toCsv(doc: ResultsDocument): string {
  const domains = [...new Set(doc.results.flatMap((r) => Object.keys(r.cpu).filter((k) => k !== 'xen')))].sort();
  const copyDomains = [...new Set(doc.results.flatMap((r) => Object.keys(r.copyCpu ?? {})))].sort();
  const named = doc.results.some((r) => r.workload !== undefined);
  const head = [
    ...(named ? ['workload'] : []),
    'path',
    'test',
    'size',
    'throughputMbps',
    'transactionsPerSec',
    ...LATENCY.map((k) => `latencyUs.${k}`),
    ...domains.map((d) => `cpu.${d}`),
    'cpu.xen',
    ...copyDomains.map((d) => `copyCpu.${d}`),
    ...PER_FRAME.map((k) => `perFrame.${k}`),
    'frames',
    'windowNs',
    'simSpeed',
    'verified',
  ];
  const lines = [head.map(csvField).join(',')];
  for (const r of doc.results) {
    const row = [
      ...(named ? [r.workload ?? null] : []),
      r.path,
      r.test,
      r.size,
      r.throughputMbps,
      r.transactionsPerSec,
      ...LATENCY.map((k) => (r.latencyUs === null ? null : r.latencyUs[k])),
      ...domains.map((d) => r.cpu[d] ?? null),
      r.cpu.xen ?? null,
      ...copyDomains.map((d) => r.copyCpu?.[d] ?? null),
      ...PER_FRAME.map((k) => r.perFrame[k]),
      r.frames,
      r.windowNs,
      r.simSpeed,
      r.verified,
    ];
    lines.push(row.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** results.json's text: the document, with the machine-dependent simSpeed kept (it is the only such field). */
export function toJson(doc: ResultsDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
