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
  // ---- hypervisor: exits, hypercalls, grant tables, event channels, interrupts, ioreq ----
  'xen.hvm.exit.vmcall': { dim: 'time', doc: 'HVM VM exit by VMCALL plus Xen\'s exit path to the hypercall handler (the exit half of a hypercall round trip)' },
  'xen.hvm.exit.io': { dim: 'time', doc: 'HVM VM exit by an I/O-port instruction plus Xen\'s exit path to its handler' },
  'xen.hvm.exit.ept': { dim: 'time', doc: 'HVM VM exit by an EPT violation (MMIO to an emulated device) plus Xen\'s exit path' },
  'xen.hvm.exit.other': { dim: 'time', doc: 'HVM VM exit by an external interrupt (IPI) or an interrupt window, plus Xen\'s exit path' },
  'xen.hvm.vmentry': { dim: 'time', doc: 'Xen\'s return path to an HVM guest and VMRESUME' },
  'xen.hvm.eoi': { dim: 'time', doc: 'Guest EOI of an injected LAPIC interrupt: exit, vLAPIC emulation, entry (no APICv)' },
  'xen.hvm.injectIrq': { dim: 'time', doc: 'Xen choosing and injecting a pending virtual interrupt on VM entry (vmx_intr_assist)' },
  'xen.hvm.mmioDecode': { dim: 'time', doc: 'Xen fetching and decoding the guest instruction of an MMIO exit (x86 emulator), before forwarding it' },
  'xen.hvm.pioDecode': { dim: 'time', doc: 'Xen decoding an I/O-port exit from its exit qualification, before forwarding it' },
  'xen.pv.trap': { dim: 'time', doc: 'PV guest trap into Xen and return (hypercall syscall, or an interrupt taken in guest mode)' },
  'xen.pv.eventCallback': { dim: 'time', doc: 'Xen entering a PV guest at its event callback (bounce frame on the return to guest)' },
  'xen.ipi.latency': { dim: 'time', doc: 'Physical IPI from the sending pCPU until the target pCPU takes it (wire time, no CPU charged)' },
  'xen.hypercall.simpleOp': { dim: 'time', doc: 'Handler of a small hypercall sub-op (bind, close, status, unmask, set_param, setup_table...)' },
  'xen.evtchn.send': { dim: 'time', doc: 'EVTCHNOP_send handler: 2-level set_pending on the peer and the kick of its vCPU' },
  'xen.gnttab.copyOp': { dim: 'time', doc: 'One GNTTABOP_copy op besides its bytes: domain locks, grant acquire/release, map_domain_page of both frames' },
  'xen.gnttab.copyPerByte': { dim: 'perByte', doc: 'Bytes moved by a GNTTABOP_copy op (Xen\'s memcpy)' },
  'xen.gnttab.mapOp': { dim: 'time', doc: 'One GNTTABOP_map_grant_ref op: maptrack, grant pin, p2m/page-table update' },
  'xen.gnttab.unmapOp': { dim: 'time', doc: 'One GNTTABOP_unmap_grant_ref op: p2m/page-table update, unpin' },
  'xen.gnttab.tlbFlush': { dim: 'time', doc: 'TLB flush after a batch of grant unmaps (gnttab_flush_tlb), once per batch of 32' },
  'xen.ioreq.complete': { dim: 'time', doc: 'Xen taking an ioreq response and completing the emulated instruction (hvm_io_assist)' },
  'guest.xen.upcall': { dim: 'time', doc: 'Guest kernel event-channel upcall: interrupt entry/exit and the 2-level scan (xen_evtchn_do_upcall)' },
  'guest.xen.upcallPort': { dim: 'time', doc: 'Guest kernel dispatch of one pending port to its handler (evtchn_to_irq, handle_irq, clear pending)' },
} as const satisfies Record<string, { dim: Dimension; doc: string }>;

export type EntryName = keyof typeof ENTRIES;
type EntriesOf<D extends Dimension> = { [K in EntryName]: (typeof ENTRIES)[K]['dim'] extends D ? K : never }[EntryName];
export type TimeEntry = EntriesOf<'time'>;
export type PerByteEntry = EntriesOf<'perByte'>;
export type CountEntry = EntriesOf<'count'>;
export type BytesEntry = EntriesOf<'bytes'>;
export type RatioEntry = EntriesOf<'ratio'>;
