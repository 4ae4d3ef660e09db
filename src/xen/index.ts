export { CATEGORIES, CpuAccounting, type Category, type CpuReport, type CpuSnapshot, type DomainUsage } from './accounting.js';
export { Domain, type DomainConfig, type DomainKind, type ResolvedDomainConfig } from './domain.js';
export { ConfigError, Hypervisor, type HostConfig } from './hypervisor.js';
export { Pcpu } from './pcpu.js';
export { CreditScheduler, PRI_BOOST, PRI_IDLE, PRI_OVER, PRI_UNDER } from './sched-credit.js';
export { TP_SCHED_ACCT, TP_SCHED_BLOCK, TP_SCHED_SWITCH, TP_SCHED_WAKE } from './trace-points.js';
export { Vcpu, type Runstate } from './vcpu.js';
