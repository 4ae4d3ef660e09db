import { CATEGORIES, type CpuReport } from '../xen/index.js';

const pad = (s: string, n: number): string => s.padStart(n);
const p1 = (x: number): string => x.toFixed(1);

/**
 * Renders a CPU report as `xentop` lays out its domain lines (NAME, CPU(sec), CPU(%) where
 * 100% is one pCPU), with the time split by category, then Xen's own share, Xen's total
 * (own + on behalf of domains), idle, and the capacity every part sums to.
 */
export function formatCpuReport(r: CpuReport, vcpus: ReadonlyMap<number, number> = new Map()): string {
  const window = r.to - r.from;
  const pctOf = (ns: number): number => (window > 0 ? (100 * ns) / window : 0);
  const head = `${pad('NAME', 12)} ${pad('CPU(sec)', 9)} ${pad('CPU(%)', 7)} ${CATEGORIES.map((c) => pad(c, 8)).join('')} ${pad('VCPUS', 6)}`;
  const lines = [head];
  for (const d of r.domains) {
    lines.push(
      `${pad(d.name, 12)} ${pad((d.total / 1e9).toFixed(3), 9)} ${pad(p1(d.percent), 7)} ${CATEGORIES.map((c) => pad(p1(pctOf(d.byCategory[c])), 8)).join('')} ${pad(String(vcpus.get(d.domid) ?? ''), 6)}`,
    );
  }
  const row = (name: string, ns: number): string => `${pad(name, 12)} ${pad((ns / 1e9).toFixed(3), 9)} ${pad(p1(pctOf(ns)), 7)}`;
  lines.push(row('Xen (own)', r.xenOwn), row('Xen (total)', r.xenTotal), row('idle', r.idle));
  lines.push(
    `${pad('capacity', 12)} ${pad((r.capacity / 1e9).toFixed(3), 9)} ${pad(p1(pctOf(r.capacity)), 7)}  = ${r.pcpus} pCPU × ${(window / 1e9).toFixed(3)} s; domains + Xen (own) + idle sum to it exactly`,
  );
  // Devices with their own engines (an SR-IOV NIC): their busy time, apart from every pCPU.
  for (const d of r.devices)
    lines.push(`${row(d.name, d.busy)}  a device's own work (descriptors, switching), apart from every pCPU: not in capacity`);
  return lines.join('\n');
}
