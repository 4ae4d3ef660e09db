export { CATEGORIES, CpuAccounting, type Category, type CpuReport, type CpuSnapshot, type DomainUsage } from './accounting.js';
export { type XenCosts } from './costs.js';
export { DomainCounters, EXIT_REASONS, diffCounters, snapshotCounters, type CounterSnapshot, type ExitReason } from './counters.js';
export { Domain, type DomainConfig, type DomainKind, type ResolvedDomainConfig } from './domain.js';
export {
  EventChannels,
  type Evtchn,
  type EvtchnAllocUnbound,
  type EvtchnBindInterdomain,
  type EvtchnBindIpi,
  type EvtchnBindVcpu,
  type EvtchnBindVirq,
  type EvtchnPort,
  type EvtchnState,
  type EvtchnStatus,
} from './event-channel.js';
export {
  devBusAddr,
  type GnttabCopy,
  type GnttabCopyPtr,
  type GnttabMapGrantRef,
  type GnttabQuerySize,
  type GnttabSetupTable,
  type GnttabUnmapGrantRef,
} from './gnttab-op.js';
export { DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES, GrantTable } from './grant-table.js';
export { hypercallName, type CallbackRegister, type HypercallArgs, type XenHvmParam } from './hypercall.js';
export { ConfigError, Hypervisor, type DomainListener, type HostConfig } from './hypervisor.js';
export { type DmOp, type XenMemAcquireResource } from './ioreq.js';
export { GuestFault, GuestMemory, HIGH_RAM_START_GFN, MMIO_HOLE_START_GFN } from './memory.js';
export { ForeignMapping, type XenAddToPhysmap } from './memory-op.js';
export { Pcpu } from './pcpu.js';
export { BackRing, bytesPage, concatPages, foreignPage, FrontRing, guestFramePage, RingError, SharedRing, type RingPage } from './ring.js';
export { CreditScheduler, PRI_BOOST, PRI_IDLE, PRI_OVER, PRI_UNDER } from './sched-credit.js';
export { SharedInfo } from './shared-info.js';
export {
  TP_COPY,
  TP_HYPERCALL,
  TP_IOREQ,
  TP_MAP,
  TP_NOTIFY,
  TP_SCHED_ACCT,
  TP_SCHED_BLOCK,
  TP_SCHED_SWITCH,
  TP_SCHED_WAKE,
  TP_UNMAP,
  TP_UPCALL,
  TP_VMEXIT,
} from './trace-points.js';
export { Vcpu, type Runstate } from './vcpu.js';
export { type GuestIrqHandler } from './vintr.js';
export { HvmIrqs, hvmIsaIrqToGsi, hvmPciIntxGsi, hvmPciIntxLink } from './vioapic.js';
export { Toolstack, ToolstackError, XENSTORE_SPECIAL_GFN, type GuestRecord } from './toolstack.js';
export { XenbusClient, type StoreLocation, type WatchCallback } from './guest/xenbus.js';
export { XenGuest } from './guest/xen-guest.js';
export { Xenstored } from './xenstore/xenstored.js';
export { bootGuestKernel, GuestBootError, type GuestKernel } from './guest/boot.js';
export { Iommu, isIommuFault, type IommuCosts, type IommuFault, type IommuMapping, type IommuStats } from './iommu.js';
export { PassthroughIrqs, type PassthroughStats, type PtMsiBinding } from './passthrough.js';
