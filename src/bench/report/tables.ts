/**
 * Terminal tables of a bench run, one per metric, paths as columns (as a paper lays them
 * out), tests and sizes as rows.
 */
import type { CaseResult, TestName } from '../experiment.js';
import type { ResultsDocument } from '../results.js';

interface Row {
  label: string;
  test: TestName;
  size: number;
}

function rowsOf(results: readonly CaseResult[], tests: readonly TestName[]): Row[] {
  const seen = new Set<string>();
  const out: Row[] = [];
  for (const r of results) {
    if (!tests.includes(r.test)) continue;
    const k = `${r.test}/${r.size}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ label: r.test.endsWith('stream') ? `${r.test} ${r.size} B` : r.test, test: r.test, size: r.size });
  }
  return out;
}

type Named = CaseResult & { workload?: string };
/** A result's column: its workload's name (hv2m run), else its path. */
const column = (r: Named): string => r.workload ?? r.path;

function table(title: string, paths: readonly string[], rows: readonly Row[], cell: (r: CaseResult) => string, results: readonly Named[]): string {
  if (rows.length === 0) return '';
  const find = (p: string, row: Row): CaseResult | undefined => results.find((r) => column(r) === p && r.test === row.test && r.size === row.size);
  const cells = rows.map((row) =>
    paths.map((p) => {
      const r = find(p, row);
      return r === undefined ? '' : cell(r);
    }),
  );
  const w0 = Math.max(title.length, ...rows.map((r) => r.label.length));
  const w = paths.map((p, i) => Math.max(p.length, ...cells.map((c) => c[i]!.length)));
  const line = (first: string, rest: readonly string[]): string => [first.padEnd(w0), ...rest.map((s, i) => s.padStart(w[i]!))].join('  ');
  return [line(title, paths), ...rows.map((row, i) => line(row.label, cells[i]!))].join('\n');
}

const f = (x: number | null | undefined, d: number): string => (x === null || x === undefined ? '-' : x.toFixed(d));

/** Domains of a case's CPU report summed by role: the guests, Dom0, Xen's own. */
export function cpuByRole(r: CaseResult): { guests: number; dom0: number; xen: number } {
  let guests = 0;
  let dom0 = 0;
  for (const [name, pct] of Object.entries(r.cpu)) {
    if (name === 'xen') continue;
    if (name === 'Domain-0' || name.endsWith(':Domain-0')) dom0 += pct;
    else guests += pct;
  }
  return { guests, dom0, xen: r.cpu.xen ?? 0 };
}

export function formatTables(doc: ResultsDocument): string {
  const res = doc.results;
  const paths = [...new Set(res.map(column))];
  const rr = rowsOf(res, ['ping', 'tcp_rr', 'udp_rr']);
  const streams = rowsOf(res, ['tcp_stream', 'udp_stream']);
  const all = rowsOf(res, ['ping', 'tcp_rr', 'udp_rr', 'tcp_stream', 'udp_stream']);
  const parts = [
    table('response time, mean µs', paths, rr, (r) => f(r.latencyUs?.mean, 1), res),
    table('response time, p99 µs', paths, rr, (r) => f(r.latencyUs?.p99, 1), res),
    table('transactions/s', paths, rowsOf(res, ['tcp_rr', 'udp_rr']), (r) => f(r.transactionsPerSec, 0), res),
    table('throughput, Mbit/s', paths, streams, (r) => f(r.throughputMbps, 0), res),
    table(
      'CPU %: guests / Dom0 / Xen',
      paths,
      all,
      (r) => {
        const c = cpuByRole(r);
        return `${f(c.guests, 0)}/${f(c.dom0, 0)}/${f(c.xen, 0)}`;
      },
      res,
    ),
    res.some((r) => r.devices !== undefined) ? table('NIC busy % (apart from every CPU)', paths, all, (r) => f(r.devices?.nic, 1), res) : '',
    table(
      'per frame: exits / grant copies / notifications',
      paths,
      all,
      (r) => `${f(r.perFrame.vmexits, 1)}/${f(r.perFrame.grantCopies, 1)}/${f(r.perFrame.notifications, 2)}`,
      res,
    ),
  ].filter((s) => s !== '');
  return parts.join('\n\n');
}
