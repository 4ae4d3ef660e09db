import { PRIO_IRQ, type Env, type SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { EVTCHN_2L_NR_CHANNELS, VIRQ_DOM_EXC } from './abi/index.js';
import { CpuAccounting, type CpuReport, type CpuSnapshot } from './accounting.js';
import { xenCosts, type XenCosts } from './costs.js';
import { Domain, type DomainConfig } from './domain.js';
import { snapshotCounters, type CounterSnapshot } from './counters.js';
import { EventChannels } from './event-channel.js';
import { GrantTableOps } from './gnttab-op.js';
import { DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES } from './grant-table.js';
import { Hypercalls, type HypercallArgs } from './hypercall.js';
import { IoreqServers } from './ioreq.js';
import { MemoryOps, type ForeignMapping } from './memory-op.js';
import { Pcpu } from './pcpu.js';
import { releaseOf, type XenRelease } from './release.js';
import { linuxOf, type LinuxRelease } from './guest/linux-release.js';
import { CreditScheduler } from './sched-credit.js';
import { PollOps } from './sched-poll.js';
import { Vcpu, type VcpuHost } from './vcpu.js';
import { HvmIrqs } from './vioapic.js';
import { InterruptDelivery } from './vintr.js';
import { Iommu, iommuCosts } from './iommu.js';
import { PassthroughIrqs } from './passthrough.js';

export interface HostConfig {
  /** Physical CPUs. */
  pcpus: number;
  /** Credit scheduler BOOST on wake-up (default true, as Xen). */
  boost?: boolean;
  /**
   * The host's name when several hosts share one simulation: it prefixes vCPU names (so trace
   * payloads naming a vCPU name its host) and the random streams the host's parts draw from.
   */
  tag?: string;
}

/** A configuration error: names the field and what was expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A domain-lifecycle listener (XenStore's @introduceDomain / @releaseDomain are wired to these). */
export type DomainListener = (d: Domain) => void;

/**
 * The hypervisor of one host: its pCPUs, the credit scheduler, the domains and their vCPUs,
 * the CPU accounting, and Xen's services to guests — memory, grant tables, event channels,
 * interrupt delivery, hypercalls and ioreq forwarding. Domain 0 is created first (domid 0);
 * guests get the next domids, never reused.
 *
 * Guest code reaches Xen only through `hypercall`, `mmio` and `pio` on one of its vCPUs (and
 * its own memory, `domain.memory`); the other members are Xen's internals and the
 * toolstack's (host builders), not a guest's.
 */
export class Hypervisor implements VcpuHost {
  readonly pcpus: readonly Pcpu[];
  readonly sched: CreditScheduler;
  readonly acct: CpuAccounting;
  readonly costs: XenCosts;
  /** Live domains by domid (a destroyed domain leaves at once, even while a zombie). */
  readonly domains = new Map<number, Domain>();
  /** Destroyed domains whose pages others still map (the `(null)` entries of xl list). */
  readonly zombies = new Set<Domain>();
  /** Destroyed domains, for the counters of a window they were part of. */
  private readonly retired: Domain[] = [];
  /** The Xen release the profile names, as rules (src/xen/release.ts). */
  readonly release: XenRelease;
  /** The Linux release of the host's kernels (src/xen/guest/linux-release.ts): what guest code sees as its own. */
  readonly linux: LinuxRelease;
  readonly gnttab: GrantTableOps;
  readonly evtchn: EventChannels;
  readonly intr: InterruptDelivery;
  /** SCHEDOP_poll: vCPUs blocked in Xen until a port is pending. */
  readonly poll: PollOps;
  readonly memory: MemoryOps;
  readonly ioreq: IoreqServers;
  /** HVM guests' interrupt lines, virtual IOAPICs and MSI injection. */
  readonly irq: HvmIrqs;
  /** The host's IOMMU (VT-d DMA remapping for passed-through devices). */
  readonly iommu: Iommu;
  /** Physical interrupts of passed-through devices, injected into their guests. */
  readonly pt: PassthroughIrqs;
  private readonly hypercalls: Hypercalls;
  private readonly introduced: DomainListener[] = [];
  private readonly released: DomainListener[] = [];
  private nextDomid = 1;
  /** The host's tag ('' for a lone host). */
  readonly tag: string;

  constructor(
    readonly env: Env,
    readonly profile: Profile,
    config: HostConfig,
  ) {
    if (!Number.isInteger(config.pcpus) || config.pcpus < 1 || config.pcpus > 256) {
      throw new ConfigError(`host.pcpus: ${config.pcpus} is not a whole number of physical CPUs from 1 to 256`);
    }
    if (config.tag !== undefined && !/^[A-Za-z0-9_.-]{1,32}$/.test(config.tag)) {
      throw new ConfigError(`host.tag ${JSON.stringify(config.tag)}: expected 1-32 letters, digits, '_', '.', '-'`);
    }
    this.tag = config.tag ?? '';
    this.acct = new CpuAccounting(config.pcpus, env.now);
    this.costs = xenCosts(profile);
    this.release = releaseOf(profile);
    this.linux = linuxOf(profile);
    const costs = {
      vcpuSwitch: profile.ns('xen.sched.vcpuSwitch'),
      idleWake: profile.ns('xen.pcpu.idleWake'),
      ipiLatency: this.costs.ipiLatency,
      schedule: profile.ns('xen.sched.schedule'),
      idleSwitch: profile.ns('xen.sched.idleSwitch'),
      hltExit: this.costs.exit.hlt,
      pvBlock: this.costs.pvTrap + this.costs.simpleOp,
      invept: this.costs.tlbFlush,
    };
    this.pcpus = Array.from({ length: config.pcpus }, (_, i) => new Pcpu(env, i, this.acct, costs, (v) => this.intr.onGuestEntry(v)));
    this.sched = new CreditScheduler(env, profile, this.pcpus, { boost: config.boost ?? true });
    this.gnttab = new GrantTableOps(this);
    this.evtchn = new EventChannels(this);
    this.intr = new InterruptDelivery(this);
    this.poll = new PollOps(this);
    this.memory = new MemoryOps(this);
    this.ioreq = new IoreqServers(this);
    this.irq = new HvmIrqs(this);
    this.iommu = new Iommu(iommuCosts(profile));
    this.pt = new PassthroughIrqs(this);
    this.hypercalls = new Hypercalls(this);
  }

  /** A live domain by domid (rcu_lock_domain_by_id); destroyed domains are not found. */
  /** A random stream of this host: named `name` under the host's tag. */
  rng(name: string): ReturnType<Env['rng']['fork']> {
    return this.env.rng.fork(this.tag === '' ? name : `${this.tag}/${name}`);
  }

  domain(domid: number): Domain | undefined {
    return this.domains.get(domid);
  }

  /**
   * rcu_lock_domain_by_id for a guest's operation naming `domid`: a live domain, or a dying one
   * others still hold pages of (a zombie) — Xen frees the struct domain only with its last
   * reference, so until then ops naming it fail on its closed ports and relinquished grants
   * (-EINVAL, GNTST_general_error) rather than with -ESRCH / GNTST_bad_domain.
   */
  lookupDomain(domid: number): Domain | undefined {
    const d = this.domains.get(domid);
    if (d !== undefined) return d;
    for (const z of this.zombies) if (z.domid === domid) return z;
    return undefined;
  }

  /** Domain 0, if created. */
  get dom0(): Domain | undefined {
    return this.domains.get(0);
  }

  /** Calls `l` after each domain is created (every domain, Dom0 included); returns the unsubscribe. */
  onDomainIntroduced(l: DomainListener): () => void {
    return subscribe(this.introduced, l);
  }

  /** Calls `l` after each domain is destroyed (its resources released); returns the unsubscribe. */
  onDomainReleased(l: DomainListener): () => void {
    return subscribe(this.released, l);
  }

  // ---- what a guest can do ------------------------------------------------------------------

  /** A hypercall from vCPU `v` (see Hypercalls); returns its return value. */
  hypercall(v: Vcpu, args: HypercallArgs): Generator<SimEvent<unknown>, number, unknown> {
    return this.hypercalls.call(v, args);
  }

  /** An HVM guest's access to MMIO address `gpa` (`dir` IOREQ_READ/IOREQ_WRITE); returns the value read. */
  mmio(v: Vcpu, dir: number, gpa: number, size: number, data = 0n): Generator<SimEvent<unknown>, bigint, unknown> {
    return this.ioreq.mmio(v, dir, gpa, size, data);
  }

  /** An HVM guest's IN/OUT on I/O port `port`; returns the value read. */
  pio(v: Vcpu, dir: number, port: number, size: number, data = 0n): Generator<SimEvent<unknown>, bigint, unknown> {
    return this.ioreq.pio(v, dir, port, size, data);
  }

  /**
   * A privileged domain maps frames of another domain's RAM (xenforeignmemory_map; for a PV
   * Dom0, mmu_update naming the foreign domain). Charged on `v` as a hypercall.
   */
  *foreignMap(v: Vcpu, domid: number, gfns: readonly number[]): Generator<SimEvent<unknown>, { rc: number; mapping?: ForeignMapping }, unknown> {
    const d = v.domain;
    d.counters.hypercall('mmu_update.foreign_map');
    if (d.isHvm) d.counters.exits.vmcall++;
    else d.counters.pvTraps++;
    const c = this.costs;
    yield v.exec((d.isHvm ? c.exit.vmcall + c.vmentry : c.pvTrap) + c.simpleOp * Math.max(1, gfns.length), 'xen', PRIO_IRQ);
    return this.memory.foreignMap(d, domid, gfns);
  }

  /** Creates a domain from its configuration; throws ConfigError naming the bad field. */
  createDomain(config: DomainConfig): Domain {
    const where = `domain "${config.name}"`;
    if (typeof config.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(config.name)) {
      throw new ConfigError(`domain name ${JSON.stringify(config.name)}: expected 1-64 letters, digits, '_', '.', '-'`);
    }
    for (const d of this.domains.values()) if (d.name === config.name) throw new ConfigError(`${where}: name already used by domain ${d.domid}`);
    if (config.kind === 'dom0' ? this.domains.has(0) : !this.domains.has(0)) {
      throw new ConfigError(config.kind === 'dom0' ? `${where}: Domain-0 exists already` : `${where}: create Domain-0 first`);
    }
    if (!Number.isInteger(config.vcpus) || config.vcpus < 1 || config.vcpus > 128)
      throw new ConfigError(`${where}: vcpus ${config.vcpus} must be a whole number from 1 to 128`);
    const weight = config.weight ?? 256;
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535)
      throw new ConfigError(`${where}: weight ${weight} must be a whole number from 1 to 65535`);
    const cap = config.cap ?? 0;
    if (!Number.isInteger(cap) || cap < 0 || cap > 100 * config.vcpus)
      throw new ConfigError(`${where}: cap ${cap} must be 0 (none) or a percentage up to 100 × vcpus`);
    const memoryMiB = config.memoryMiB ?? 512;
    if (!Number.isInteger(memoryMiB) || memoryMiB < 1 || memoryMiB > 256 * 1024)
      throw new ConfigError(`${where}: memoryMiB ${memoryMiB} must be a whole number from 1 to 262144`);
    const maxGrantFrames = config.maxGrantFrames ?? DEFAULT_MAX_GRANT_FRAMES;
    if (!Number.isInteger(maxGrantFrames) || maxGrantFrames < 1 || maxGrantFrames > 4096)
      throw new ConfigError(`${where}: maxGrantFrames ${maxGrantFrames} must be a whole number from 1 to 4096`);
    const maxMaptrackFrames = config.maxMaptrackFrames ?? DEFAULT_MAX_MAPTRACK_FRAMES;
    if (!Number.isInteger(maxMaptrackFrames) || maxMaptrackFrames < 0 || maxMaptrackFrames > 65536)
      throw new ConfigError(`${where}: maxMaptrackFrames ${maxMaptrackFrames} must be a whole number from 0 to 65536`);
    // libxl sets max_evtchn_port to xl.cfg's event_channels, 1023 by default; Dom0 is built
    // with no limit beyond the 2-level ABI's last port.
    const maxEventChannels = config.maxEventChannels ?? (config.kind === 'dom0' ? EVTCHN_2L_NR_CHANNELS - 1 : 1023);
    if (!Number.isInteger(maxEventChannels) || maxEventChannels < 1 || maxEventChannels > EVTCHN_2L_NR_CHANNELS - 1) {
      throw new ConfigError(`${where}: maxEventChannels ${maxEventChannels} must be a whole number from 1 to ${EVTCHN_2L_NR_CHANNELS - 1}`);
    }
    const affinities = this.affinities(config, where);

    const domid = config.kind === 'dom0' ? 0 : this.nextDomid++;
    const tenant = config.tenant ?? config.name;
    if (typeof tenant !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant))
      throw new ConfigError(`${where}.tenant ${JSON.stringify(tenant)}: expected 1-64 letters, digits, '_', '.', '-'`);
    const cpuTime = this.acct.addDomain(domid, config.name);
    const d = new Domain(
      domid,
      {
        name: config.name,
        kind: config.kind,
        vcpus: config.vcpus,
        weight,
        cap,
        memoryMiB,
        maxGrantFrames,
        maxMaptrackFrames,
        maxEventChannels,
        affinity: affinities,
        tenant,
      },
      cpuTime,
    );
    const load = new Map<number, number>();
    for (const dom of this.domains.values()) for (const v of dom.vcpus) load.set(v.processor.id, (load.get(v.processor.id) ?? 0) + 1);
    for (let i = 0; i < config.vcpus; i++) {
      const aff = affinities[i]!;
      // Least-loaded pCPU of its affinity, lowest id first (deterministic).
      let best = aff[0]!;
      for (const c of aff) if ((load.get(c) ?? 0) < (load.get(best) ?? 0)) best = c;
      load.set(best, (load.get(best) ?? 0) + 1);
      d.vcpus.push(new Vcpu(this, d, i, aff, this.pcpus.length, this.pcpus[best]!));
    }
    this.domains.set(domid, d);
    for (const l of [...this.introduced]) l(d);
    return d;
  }

  /**
   * Destroys a domain (domain_kill): its vCPUs are paused (descheduled at the end of the
   * instant) and their pending work dropped; the grants it mapped are unmapped and their pins
   * dropped (gnttab_release_mappings), pins of its unfinished copies released; its ioreq
   * servers go; every port is closed, so interdomain peers return to unbound (awaiting the
   * dead domid: they can only close); Dom0 gets VIRQ_DOM_EXC. It is no longer found by domid,
   * so new grant, event-channel and mapping operations naming it fail (GNTST_bad_domain,
   * -ESRCH). Pages of it that others have mapped stay valid for them until they unmap: the
   * domain is a zombie until then. Its CPU time stays in the accounting.
   */
  destroyDomain(d: Domain): void {
    if (d.dying) return;
    d.dying = true;
    for (const v of d.vcpus) this.sched.removeVcpu(v);
    for (const p of this.pcpus) p.inveptPending.delete(d);
    this.domains.delete(d.domid);
    this.retired.push(d);
    this.acct.retireDomain(d.domid);
    for (const release of [...d.inflightPins]) release();
    d.inflightPins.clear();
    this.gnttab.releaseMappings(d);
    this.ioreq.destroyAll(d);
    this.irq.release(d);
    this.evtchn.closeAll(d);
    if (d.pageRefs > 0) this.zombies.add(d);
    const dom0 = this.dom0;
    if (dom0 !== undefined) this.evtchn.raiseVirq(dom0, VIRQ_DOM_EXC);
    for (const l of [...this.released]) l(d);
  }

  /**
   * Every domain's counters now, by domid, destroyed domains included (their counts stay, as
   * their CPU time does), so a window's difference is exact even when guests come and go.
   */
  countersSnapshot(): Map<number, { name: string; counters: CounterSnapshot }> {
    const out = new Map<number, { name: string; counters: CounterSnapshot }>();
    for (const d of this.retired) out.set(d.domid, { name: d.name, counters: snapshotCounters(d.counters) });
    for (const d of this.domains.values()) out.set(d.domid, { name: d.name, counters: snapshotCounters(d.counters) });
    return out;
  }

  /** domain_crash: Xen kills a domain that broke a rule it cannot report as an error. */
  crashDomain(d: Domain, reason: string): void {
    d.crashReason = reason;
    this.destroyDomain(d);
  }

  /** A mapping of one of `d`'s pages went away; a zombie with none left is finally freed. */
  dropPageRef(d: Domain): void {
    d.pageRefs--;
    if (d.pageRefs < 0) throw new Error(`d${d.domid}: page references went negative (model bug)`);
    if (d.pageRefs === 0) this.zombies.delete(d);
  }

  /** Toolstack: set an HVM parameter of a guest (HVM_PARAM_STORE_PFN…), as libxl does at build. */
  setHvmParam(d: Domain, index: number, value: bigint): void {
    d.hvmParams.set(index, value);
  }

  /** VcpuHost: a blocked vCPU got work (from Xen code on pCPU `from`, if given). */
  wake(v: Vcpu, from: Pcpu | null = null): void {
    if (v.domain.dying) return;
    this.sched.wake(v, from);
  }

  snapshot(): CpuSnapshot {
    for (const p of this.pcpus) p.settle();
    return this.acct.snapshot(this.env.now);
  }

  /** CPU utilization since `from` (default: since the host started). */
  cpuReport(from?: CpuSnapshot): CpuReport {
    return this.acct.report(this.snapshot(), from);
  }

  private affinities(config: DomainConfig, where: string): number[][] {
    const all = this.pcpus.map((p) => p.id);
    const p = config.pinning;
    if (p === undefined) return Array.from({ length: config.vcpus }, () => all);
    const check = (list: readonly number[], what: string): number[] => {
      if (list.length === 0) throw new ConfigError(`${where}: ${what} is empty`);
      for (const c of list) {
        if (!Number.isInteger(c) || c < 0 || c >= this.pcpus.length)
          throw new ConfigError(`${where}: ${what} names pCPU ${c}; this host has pCPUs 0-${this.pcpus.length - 1}`);
      }
      return [...new Set(list)].sort((a, b) => a - b);
    };
    if (p.length > 0 && Array.isArray(p[0])) {
      const lists = p as readonly (readonly number[])[];
      if (lists.length !== config.vcpus) throw new ConfigError(`${where}: pinning has ${lists.length} lists for ${config.vcpus} vcpus`);
      return lists.map((l, i) => check(l, `pinning of vcpu ${i}`));
    }
    const one = check(p as readonly number[], 'pinning');
    return Array.from({ length: config.vcpus }, () => one);
  }
}

function subscribe<T>(list: T[], l: T): () => void {
  list.push(l);
  return () => {
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
  };
}
