import type { EvtchnFifo } from './event-fifo.js';
import { PAGE_SIZE, VCPU_INFO_SIZE, XEN_LEGACY_MAX_VCPUS } from './abi/index.js';
import type { DomainCpuTime } from './accounting.js';
import { DomainCounters } from './counters.js';
import { EventChannelTable } from './event-channel.js';
import { GrantTable, Maptrack, MAPTRACK_PER_FRAME } from './grant-table.js';
import { GuestMemory } from './memory.js';
import { CreditDomain } from './sched-credit.js';
import { SharedInfo } from './shared-info.js';
import type { Vcpu } from './vcpu.js';
import type { GuestIrqHandler } from './vintr.js';

/** Domain 0 (privileged; a PV kernel on x86 Xen 4.x), an HVM guest, or a PV guest. */
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
  /** Grant-table frames the domain may grow to (xl.cfg max_grant_frames; Xen default 64). */
  maxGrantFrames?: number;
  /** Maptrack frames, 256 handles each (xl.cfg max_maptrack_frames; Xen default 1024). */
  maxMaptrackFrames?: number;
  /**
   * Highest event-channel port the domain may use (xl.cfg max_event_channels, Xen's
   * max_evtchn_port): 1023 by default for guests as libxl sets it; Dom0 gets the 2-level
   * ABI's last port, 4095.
   */
  maxEventChannels?: number;
  /**
   * The tenant the domain belongs to (who rents it): a label the toolstack keeps, which Dom0's
   * policies (HV²M's default: channels only within a tenant) read. Default: the domain's name.
   */
  tenant?: string;
}

/** A validated configuration: defaults filled in, pinning resolved to one pCPU list per vCPU. */
export interface ResolvedDomainConfig {
  name: string;
  kind: DomainKind;
  vcpus: number;
  weight: number;
  cap: number;
  memoryMiB: number;
  maxGrantFrames: number;
  maxMaptrackFrames: number;
  maxEventChannels: number;
  affinity: readonly (readonly number[])[];
  tenant: string;
}

/**
 * A Xen domain: its vCPUs, memory (p2m), grant table and maptrack, event channels and
 * shared-info page, HVM parameters, and the interrupt entry points its kernel installed.
 * The hypervisor creates and destroys it.
 */
export class Domain {
  readonly vcpus: Vcpu[] = [];
  readonly csched: CreditDomain;
  /** Destroyed (domain_kill): no longer found by domid; a zombie while others map its pages. */
  dying = false;
  /** Why Xen crashed it (domain_crash), if it did. */
  crashReason: string | null = null;
  /** Its memory (replaced once, when a migrated guest's RAM is adopted: `adoptMemory`). */
  memory: GuestMemory;
  readonly grants: GrantTable;
  /** Where each grant-table frame is in the domain's physmap (XENMEM_add_to_physmap), by frame index. */
  readonly grantFrameGfn: (number | undefined)[] = [];
  readonly maptrack: Maptrack;
  readonly evtchn: EventChannelTable;
  /** The FIFO event-channel ABI's state once the guest has called EVTCHNOP_init_control (else 2-level). */
  evtchnFifo: EvtchnFifo | null = null;
  readonly sharedInfo: SharedInfo;
  /** Where the shared-info page is in the domain's physmap, if the guest placed it. */
  sharedInfoGfn: number | null = null;
  readonly counters = new DomainCounters();
  readonly hvmParams = new Map<number, bigint>();
  /** HVM_PARAM_CALLBACK_IRQ of type vector: the vector of the event-channel upcall. */
  callbackVector: number | null = null;
  /** The guest's interrupt handlers by vector (its IDT), as its kernel set them up (HVM). */
  readonly idt = new Map<number, GuestIrqHandler>();
  /** The PV event callback (CALLBACKOP_register, CALLBACKTYPE_event). */
  pvEventCallback: GuestIrqHandler | null = null;
  /** References other domains hold on its pages (grant mappings, foreign mappings). */
  pageRefs = 0;
  /** Grant pins held by hypercalls of this domain still in progress (released if it is destroyed). */
  readonly inflightPins = new Set<() => void>();

  constructor(
    readonly domid: number,
    readonly config: Readonly<ResolvedDomainConfig>,
    readonly cpuTime: DomainCpuTime,
  ) {
    this.csched = new CreditDomain(config.weight, config.cap);
    this.memory = new GuestMemory(domid, config.memoryMiB);
    this.grants = new GrantTable(domid, config.maxGrantFrames);
    this.maptrack = new Maptrack(config.maxMaptrackFrames * MAPTRACK_PER_FRAME);
    this.evtchn = new EventChannelTable(config.vcpus, config.maxEventChannels + 1);
    const extraVcpus = Math.max(0, config.vcpus - XEN_LEGACY_MAX_VCPUS);
    const perPage = PAGE_SIZE / VCPU_INFO_SIZE;
    const extra = Array.from({ length: Math.ceil(extraVcpus / perPage) }, () => new Uint8Array(PAGE_SIZE));
    this.sharedInfo = new SharedInfo(new Uint8Array(PAGE_SIZE), extra);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * Restore's last step for a live-migrated guest: the domain takes over `ram`, the guest's
   * memory whose contents the migration stream copied into this domain's own (checked equal by
   * the caller), as its memory (GuestMemory.resumeAs). Only before the domain has run.
   */
  adoptMemory(ram: GuestMemory): void {
    ram.resumeAs(this.domid, this.memory);
    this.memory = ram;
  }

  get tenant(): string {
    return this.config.tenant;
  }

  get kind(): DomainKind {
    return this.config.kind;
  }

  /** Domain 0 is the privileged (control, hardware and device-model) domain. */
  get privileged(): boolean {
    return this.config.kind === 'dom0';
  }

  /** HVM guests exit to Xen through VMX; Dom0 and PV guests trap (x86 Xen 4.x Dom0 is PV). */
  get isHvm(): boolean {
    return this.config.kind === 'hvm';
  }
}
