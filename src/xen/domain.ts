import type { DomainCpuTime } from './accounting.js';
import { CreditDomain } from './sched-credit.js';
import type { Vcpu } from './vcpu.js';

export type DomainKind = 'dom0' | 'hvm' | 'pv';

/** A domain as an administrator describes it (the essentials of an xl.cfg). */
export interface DomainConfig {
  name: string;
  kind: DomainKind;
  vcpus: number;
  /** Credit-scheduler weight, 1..65535 (Xen default 256). */
  weight?: number;
  /** Credit-scheduler cap in percent of one pCPU; 0 = none (Xen default). */
  cap?: number;
  /**
   * Hard affinity: one list of pCPU ids for every vCPU, or one list per vCPU
   * (xl.cfg `cpus=`); absent = all pCPUs.
   */
  pinning?: readonly number[] | readonly (readonly number[])[];
  /** Memory in MiB. */
  memoryMiB?: number;
}

/** A validated configuration: defaults filled in, pinning resolved to one pCPU list per vCPU. */
export interface ResolvedDomainConfig {
  name: string;
  kind: DomainKind;
  vcpus: number;
  weight: number;
  cap: number;
  memoryMiB: number;
  affinity: readonly (readonly number[])[];
}

/** A Xen domain. The hypervisor creates and destroys it; later capabilities add its memory,
 *  grant table and event channels. */
export class Domain {
  readonly vcpus: Vcpu[] = [];
  readonly csched: CreditDomain;
  dying = false;

  constructor(
    readonly domid: number,
    readonly config: Readonly<ResolvedDomainConfig>,
    readonly cpuTime: DomainCpuTime,
  ) {
    this.csched = new CreditDomain(config.weight, config.cap);
  }

  get name(): string {
    return this.config.name;
  }

  get kind(): DomainKind {
    return this.config.kind;
  }
}
