import type { Time } from '../sim/index.js';
import type { ExecContext } from '../sim/index.js';

/**
 * Where a pCPU's time went, in the categories of the issue and of `xentop`: a domain's guest
 * user and guest kernel code (kernel includes softirq and interrupt handlers), Xen working on
 * a domain's behalf (hypercalls, exits), Dom0 kernel threads (netback), the qemu device
 * model; and, not attributable to a domain, Xen's own work (vCPU switches) and idle.
 */
export const CATEGORIES = ['user', 'kernel', 'xen', 'kthread', 'qemu'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Column of each execution context in a domain's accounting row. */
export const CATEGORY_OF: Record<ExecContext, number> = {
  user: 0,
  kernel: 1,
  softirq: 1,
  irq: 1,
  xen: 2,
  kthread: 3,
  qemu: 4,
};
const NCAT = CATEGORIES.length;

/** Accumulated CPU time of one domain, per pCPU and category (integer ns, exact). */
export class DomainCpuTime {
  /** [pcpu * NCAT + category] */
  readonly ns: Float64Array;
  constructor(
    readonly domid: number,
    readonly name: string,
    pcpus: number,
  ) {
    this.ns = new Float64Array(pcpus * NCAT);
  }
}

export interface DomainUsage {
  domid: number;
  name: string;
  /** CPU time in the window, ns, by category, summed over pCPUs. */
  byCategory: Record<Category, number>;
  total: number;
  /** As xentop's CPU(%): 100 = one pCPU fully busy. */
  percent: number;
}

export interface CpuReport {
  from: Time;
  to: Time;
  pcpus: number;
  domains: DomainUsage[];
  /** Xen's own work not on behalf of any domain (vCPU switches), ns and %. */
  xenOwn: number;
  xenOwnPercent: number;
  /** Everything Xen did: its own work plus work on behalf of domains, ns and %. */
  xenTotal: number;
  xenTotalPercent: number;
  idle: number;
  idlePercent: number;
  /**
   * Devices that work on their own, apart from every CPU (an SR-IOV NIC's descriptor engines
   * and switch): busy ns in the window and % of the window (100 = busy throughout). Not part
   * of `capacity`: a device's time is no pCPU's.
   */
  devices: { name: string; busy: number; percent: number }[];
  /** (to − from) × pCPUs: what every part sums to, exactly. */
  capacity: number;
}

/** A copy of all counters at one instant; reports are differences of snapshots. */
export interface CpuSnapshot {
  time: Time;
  domains: Map<number, { name: string; ns: Float64Array }>;
  idle: Float64Array;
  xenOwn: Float64Array;
  devices: Map<string, number>;
}

/**
 * Every simulated nanosecond of every pCPU, attributed: to a (domain, category), to Xen's own
 * work, or to idle. pCPUs settle their time here whenever something changes, so at any
 * instant the parts of each pCPU sum to the time elapsed.
 */
export class CpuAccounting {
  readonly idle: Float64Array;
  readonly xenOwn: Float64Array;
  /** Busy time of devices that are not CPUs, ns by device name. */
  private readonly devices = new Map<string, number>();
  private readonly domains = new Map<number, DomainCpuTime>();
  /** Destroyed domains keep their history, so sums stay exact. */
  private readonly retired: DomainCpuTime[] = [];

  constructor(
    readonly pcpus: number,
    readonly start: Time,
  ) {
    this.idle = new Float64Array(pcpus);
    this.xenOwn = new Float64Array(pcpus);
  }

  addDomain(domid: number, name: string): DomainCpuTime {
    const d = new DomainCpuTime(domid, name, this.pcpus);
    this.domains.set(domid, d);
    return d;
  }

  retireDomain(domid: number): void {
    const d = this.domains.get(domid);
    if (d === undefined) return;
    this.domains.delete(domid);
    this.retired.push(d);
  }

  charge(pcpu: number, d: DomainCpuTime, ctx: ExecContext, ns: number): void {
    const i = pcpu * NCAT + CATEGORY_OF[ctx];
    d.ns[i] = d.ns[i]! + ns;
  }

  /** A device (not a CPU) was busy for `ns` (its own engines' work). */
  chargeDevice(name: string, ns: number): void {
    this.devices.set(name, (this.devices.get(name) ?? 0) + ns);
  }

  snapshot(time: Time): CpuSnapshot {
    const domains = new Map<number, { name: string; ns: Float64Array }>();
    for (const d of [...this.retired, ...this.domains.values()]) domains.set(d.domid, { name: d.name, ns: d.ns.slice() });
    return { time, domains, idle: this.idle.slice(), xenOwn: this.xenOwn.slice(), devices: new Map(this.devices) };
  }

  /** Utilization between two snapshots (`from` defaults to the start of time). */
  report(to: CpuSnapshot, from?: CpuSnapshot): CpuReport {
    const t0 = from?.time ?? this.start;
    const window = to.time - t0;
    const capacity = window * this.pcpus;
    const pct = (ns: number): number => (window > 0 ? (100 * ns) / window : 0);
    const sum = (a: Float64Array, b: Float64Array | undefined): number => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i]! - (b?.[i] ?? 0);
      return s;
    };
    const domains: DomainUsage[] = [];
    let xenOnBehalf = 0;
    for (const [domid, d] of to.domains) {
      const before = from?.domains.get(domid)?.ns;
      const byCategory = { user: 0, kernel: 0, xen: 0, kthread: 0, qemu: 0 } as Record<Category, number>;
      for (let p = 0; p < this.pcpus; p++) {
        for (let c = 0; c < NCAT; c++) byCategory[CATEGORIES[c]!] += d.ns[p * NCAT + c]! - (before?.[p * NCAT + c] ?? 0);
      }
      const total = CATEGORIES.reduce((s, c) => s + byCategory[c], 0);
      xenOnBehalf += byCategory.xen;
      domains.push({ domid, name: d.name, byCategory, total, percent: pct(total) });
    }
    domains.sort((a, b) => a.domid - b.domid);
    const xenOwn = sum(to.xenOwn, from?.xenOwn);
    const idle = sum(to.idle, from?.idle);
    const devices = [...to.devices].map(([name, ns]) => {
      const busy = ns - (from?.devices.get(name) ?? 0);
      return { name, busy, percent: pct(busy) };
    });
    return {
      from: t0,
      to: to.time,
      pcpus: this.pcpus,
      domains,
      xenOwn,
      xenOwnPercent: pct(xenOwn),
      xenTotal: xenOwn + xenOnBehalf,
      xenTotalPercent: pct(xenOwn + xenOnBehalf),
      idle,
      idlePercent: pct(idle),
      devices,
      capacity,
    };
  }
}
