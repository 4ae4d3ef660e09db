import type { Dimension } from './units.js';

/**
 * Every cost and timing parameter the model may read, in one place: its dimension (which
 * fixes the units a profile may use) and what it means. A profile must give each of these a
 * value, a unit and a source; a name not listed here is rejected as a typo. Later
 * capabilities add their entries here.
 */
export const ENTRIES = {
  // ---- Xen credit scheduler (xen/common/sched_credit.c, credit1) ----
  'xen.sched.tslice': { dim: 'time', doc: 'Credit scheduler time slice (sched_credit_tslice_ms)' },
  'xen.sched.tick': { dim: 'time', doc: 'Per-pCPU accounting tick: credits are burned and BOOST is dropped' },
  'xen.sched.ratelimit': { dim: 'time', doc: 'Minimum run time before a running vCPU can be preempted (sched_ratelimit_us); 0 disables' },
  'xen.sched.creditsPerMs': { dim: 'count', doc: 'Credits a running vCPU burns per millisecond (CSCHED_CREDITS_PER_MSEC)' },
  'xen.sched.vcpuSwitch': { dim: 'time', doc: 'Xen switching a pCPU from one vCPU to another (state save/restore, VMCS and EPT switch)' },
  'xen.pcpu.idleWake': { dim: 'time', doc: 'An idle pCPU leaving its idle state to run a tickled vCPU (C-state exit latency)' },
} as const satisfies Record<string, { dim: Dimension; doc: string }>;

export type EntryName = keyof typeof ENTRIES;
type EntriesOf<D extends Dimension> = { [K in EntryName]: (typeof ENTRIES)[K]['dim'] extends D ? K : never }[EntryName];
export type TimeEntry = EntriesOf<'time'>;
export type PerByteEntry = EntriesOf<'perByte'>;
export type CountEntry = EntriesOf<'count'>;
export type BytesEntry = EntriesOf<'bytes'>;
export type RatioEntry = EntriesOf<'ratio'>;
