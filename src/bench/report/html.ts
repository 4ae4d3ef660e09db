/**
 * index.html of a bench run: one self-contained page (no network needed to open it) with the
 * setup, the tables, charts rendered to inline SVG from Vega-Lite specs in Node, and the cost
 * profile with the source of every figure. Every number drawn comes from results.json.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { ENTRIES, type EntryName, type Profile } from '../../profile/index.js';
import type { CaseResult } from '../experiment.js';
import type { ResultsDocument } from '../results.js';
import { formatTables } from './tables.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const caseLabel = (r: CaseResult): string => (r.test.endsWith('stream') ? `${r.test} ${r.size} B` : r.test);

/** The cases the CPU and per-frame charts show: each RR test, and each stream test at its largest size. */
function representative(results: readonly CaseResult[]): CaseResult[] {
  const out: CaseResult[] = [];
  for (const test of ['ping', 'tcp_rr', 'udp_rr', 'tcp_stream', 'udp_stream'] as const) {
    const of = results.filter((r) => r.test === test);
    if (of.length === 0) continue;
    const size = Math.max(...of.map((r) => r.size));
    out.push(...of.filter((r) => r.size === size));
  }
  return out;
}

/** The Vega-Lite specs of the report's charts (exported for tests: each must compile). */
export function chartSpecs(doc: ResultsDocument): { title: string; spec: TopLevelSpec }[] {
  const res = doc.results;
  const paths = [...new Set(res.map((r) => r.path))];
  const out: { title: string; spec: TopLevelSpec }[] = [];
  const latency = res
    .filter((r) => r.latencyUs !== null)
    .map((r) => ({ path: r.path, test: r.test, mean: r.latencyUs!.mean, p99: r.latencyUs!.p99 }));
  if (latency.length > 0) {
    out.push({
      title: 'Response time per path (bars: mean; ticks: p99), µs',
      spec: {
        data: { values: latency },
        width: 120,
        height: 220,
        facet: { column: { field: 'test', type: 'nominal', title: null } },
        spec: {
          layer: [
            {
              mark: 'bar',
              encoding: {
                x: { field: 'path', type: 'nominal', sort: paths, title: null },
                y: { field: 'mean', type: 'quantitative', title: 'µs' },
                color: { field: 'path', type: 'nominal', sort: paths },
              },
            },
            {
              mark: { type: 'tick', color: 'black', thickness: 2 },
              encoding: { x: { field: 'path', type: 'nominal', sort: paths }, y: { field: 'p99', type: 'quantitative' } },
            },
          ],
        },
      },
    });
  }
  const tput = res.filter((r) => r.throughputMbps !== null).map((r) => ({ path: r.path, test: r.test, size: r.size, mbps: r.throughputMbps! }));
  if (tput.length > 0) {
    out.push({
      title: 'Throughput against message size (log axis), Mbit/s',
      spec: {
        data: { values: tput },
        width: 320,
        height: 220,
        facet: { column: { field: 'test', type: 'nominal', title: null } },
        spec: {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'size', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'message size, bytes' },
            y: { field: 'mbps', type: 'quantitative', title: 'Mbit/s' },
            color: { field: 'path', type: 'nominal', sort: paths },
          },
        },
      },
    });
  }
  const rep = representative(res);
  const cpu = rep.flatMap((r) =>
    Object.entries(r.cpu).map(([who, pct]) => ({ path: r.path, case: caseLabel(r), who: who === 'xen' ? 'Xen (own)' : who, pct })),
  );
  if (cpu.length > 0) {
    out.push({
      title: 'CPU utilization per path, stacked by domain and Xen (100% = one pCPU)',
      spec: {
        data: { values: cpu },
        width: 120,
        height: 220,
        facet: { column: { field: 'case', type: 'nominal', title: null } },
        spec: {
          mark: 'bar',
          encoding: {
            x: { field: 'path', type: 'nominal', sort: paths, title: null },
            y: { field: 'pct', type: 'quantitative', stack: 'zero', title: 'CPU %' },
            color: { field: 'who', type: 'nominal', title: 'domain' },
          },
        },
      },
    });
  }
  const per = rep.flatMap((r) =>
    (['vmexits', 'hypercalls', 'grantCopies', 'notifications', 'interrupts'] as const).map((k) => ({
      path: r.path,
      case: caseLabel(r),
      counter: k,
      value: r.perFrame[k],
    })),
  );
  if (per.length > 0) {
    out.push({
      title: 'Per-frame costs per path (exits, hypercalls, grant copies, notifications, interrupts per frame sent)',
      spec: {
        data: { values: per },
        width: 160,
        height: 220,
        facet: { column: { field: 'case', type: 'nominal', title: null } },
        spec: {
          mark: 'bar',
          encoding: {
            x: { field: 'counter', type: 'nominal', title: null },
            xOffset: { field: 'path', type: 'nominal', sort: paths },
            y: { field: 'value', type: 'quantitative', title: 'per frame' },
            color: { field: 'path', type: 'nominal', sort: paths },
          },
        },
      },
    });
  }
  return out;
}

/** One line for a host description (or a scenario's hosts). */
function setupLine(host: unknown): string {
  const hosts = (Array.isArray(host) ? host : [host]) as {
    name?: string;
    pcpus?: number;
    dom0?: { vcpus?: number; memoryMiB?: number };
    guests?: { name: string; type?: string; vcpus?: number; memoryMiB?: number }[];
  }[];
  return hosts
    .map((h) => {
      const gs = (h.guests ?? [])
        .map((g) => `${g.name} (${(g.type ?? 'hvm').toUpperCase()}, ${g.vcpus ?? 1} vCPU, ${g.memoryMiB ?? 512} MiB)`)
        .join(', ');
      return `host ${h.name ?? ''}: ${h.pcpus ?? '?'} pCPUs; Dom0 ${h.dom0?.vcpus ?? 1} vCPUs, ${h.dom0?.memoryMiB ?? 1024} MiB; guests ${gs || 'none'}`;
    })
    .join('; ');
}

export async function renderHtml(doc: ResultsDocument, profile: Profile): Promise<string> {
  const charts: string[] = [];
  for (const c of chartSpecs(doc)) charts.push(`<figure><figcaption>${esc(c.title)}</figcaption>${await svg(c.spec)}</figure>`);
  const profileRows = (Object.keys(ENTRIES) as EntryName[])
    .map((name) => {
      const e = profile.entry(name);
      return `<tr><td><code>${esc(name)}</code></td><td class="n">${esc(String(e.value))}</td><td>${esc(e.unit)}</td><td>${esc(e.source)}</td></tr>`;
    })
    .join('\n');
  const unverified = doc.results.filter((r) => !r.verified).length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hv2m bench — ${esc(doc.profile.name)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow-x:auto}
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ddd;padding:0.2em 0.5em;vertical-align:top}td.n{text-align:right}
figure{margin:2em 0}figcaption{font-weight:600;margin-bottom:0.5em}
</style></head><body>
<h1>hv2m bench</h1>
<p>hv2m ${esc(doc.version)} · profile <b>${esc(doc.profile.name)}</b> (${esc(doc.profile.description)}${doc.profile.xen !== null ? `; Xen ${esc(doc.profile.xen)}` : ''}) · ${doc.guestType.toUpperCase()} guests · seed ${doc.seed} · ${doc.durationMs} ms simulated per case after ${doc.warmupMs} ms warm-up · ${doc.results.length} cases, ${unverified === 0 ? 'every one verified byte-exact' : `${unverified} NOT verified`}.
Every number on this page is in <code>results.json</code> beside it.</p>
<p><b>Setup:</b> ${esc(setupLine(doc.host))}</p>
${charts.join('\n')}
<h2>Results</h2>
<pre>${esc(formatTables(doc))}</pre>
<details><summary>The host description each case was built from</summary><pre>${esc(JSON.stringify(doc.host, null, 2))}</pre></details>
<h2>Cost profile ${esc(profile.name)}</h2>
<p>${esc(profile.description)}; CPU ${esc(profile.cpuModel)} at ${profile.clockGHz} GHz.</p>
<details><summary>Every entry with its value, unit and source</summary>
<table><tr><th>entry</th><th>value</th><th>unit</th><th>source</th></tr>
${profileRows}
</table></details>
</body></html>
`;
}
