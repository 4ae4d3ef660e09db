import type { Env } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { CpuAccounting, type CpuReport, type CpuSnapshot } from './accounting.js';
import { Domain, type DomainConfig } from './domain.js';
import { Pcpu } from './pcpu.js';
import { CreditScheduler } from './sched-credit.js';
import { Vcpu, type VcpuHost } from './vcpu.js';

export interface HostConfig {
  /** Physical CPUs. */
  pcpus: number;
  /** Credit scheduler BOOST on wake-up (default true, as Xen). */
  boost?: boolean;
}

/** A configuration error: names the field and what was expected. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * The hypervisor of one host: its pCPUs, the credit scheduler, the domains and their vCPUs,
 * and the CPU accounting. Domain 0 is created first (domid 0); guests get the next domids.
 */
export class Hypervisor implements VcpuHost {
  readonly pcpus: readonly Pcpu[];
  readonly sched: CreditScheduler;
  readonly acct: CpuAccounting;
  readonly domains = new Map<number, Domain>();
  private nextDomid = 1;

  constructor(
    readonly env: Env,
    readonly profile: Profile,
    config: HostConfig,
  ) {
    if (!Number.isInteger(config.pcpus) || config.pcpus < 1 || config.pcpus > 256) {
      throw new ConfigError(`host.pcpus: ${config.pcpus} is not a whole number of physical CPUs from 1 to 256`);
    }
    this.acct = new CpuAccounting(config.pcpus, env.now);
    const costs = { vcpuSwitch: profile.ns('xen.sched.vcpuSwitch'), idleWake: profile.ns('xen.pcpu.idleWake') };
    this.pcpus = Array.from({ length: config.pcpus }, (_, i) => new Pcpu(env, i, this.acct, costs));
    this.sched = new CreditScheduler(env, profile, this.pcpus, { boost: config.boost ?? true });
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
    if (!Number.isInteger(config.vcpus) || config.vcpus < 1 || config.vcpus > 128) throw new ConfigError(`${where}: vcpus ${config.vcpus} must be a whole number from 1 to 128`);
    const weight = config.weight ?? 256;
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535) throw new ConfigError(`${where}: weight ${weight} must be a whole number from 1 to 65535`);
    const cap = config.cap ?? 0;
    if (!Number.isInteger(cap) || cap < 0 || cap > 100 * config.vcpus) throw new ConfigError(`${where}: cap ${cap} must be 0 (none) or a percentage up to 100 × vcpus`);
    const memoryMiB = config.memoryMiB ?? 512;
    if (!Number.isInteger(memoryMiB) || memoryMiB < 1) throw new ConfigError(`${where}: memoryMiB ${memoryMiB} must be a positive whole number`);
    const affinities = this.affinities(config, where);

    const domid = config.kind === 'dom0' ? 0 : this.nextDomid++;
    const cpuTime = this.acct.addDomain(domid, config.name);
    const d = new Domain(domid, { name: config.name, kind: config.kind, vcpus: config.vcpus, weight, cap, memoryMiB, affinity: affinities }, cpuTime);
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
    return d;
  }

  /**
   * Destroys a domain: its vCPUs are paused (descheduled at the end of the instant) and
   * their pending work dropped; its CPU time stays in the accounting.
   */
  destroyDomain(d: Domain): void {
    if (d.dying) return;
    d.dying = true;
    for (const v of d.vcpus) {
      if (v.csched.active) v.csched.active = false;
      this.sched.pause(v);
    }
    const sdom = d.csched;
    sdom.activeVcpus.length = 0;
    this.domains.delete(d.domid);
    this.acct.retireDomain(d.domid);
  }

  /** VcpuHost: a blocked vCPU got work. */
  wake(v: Vcpu): void {
    if (v.domain.dying) return;
    this.sched.wake(v);
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
        if (!Number.isInteger(c) || c < 0 || c >= this.pcpus.length) throw new ConfigError(`${where}: ${what} names pCPU ${c}; this host has pCPUs 0-${this.pcpus.length - 1}`);
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
