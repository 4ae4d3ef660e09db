import { tracePoint } from '../sim/index.js';
import type { ExitReason } from './counters.js';

/** A pCPU switched from one vCPU (or idle, null) to another. */
export const TP_SCHED_SWITCH = tracePoint<{ pcpu: number; from: string | null; to: string | null; reason: string }>('sched.switch');
/** A vCPU became runnable; `boosted` if it is queued with the credit scheduler's BOOST priority. */
export const TP_SCHED_WAKE = tracePoint<{ vcpu: string; pcpu: number; boosted: boolean }>('sched.wake');
/** A vCPU stopped being runnable because it had no work left (the guest blocked). */
export const TP_SCHED_BLOCK = tracePoint<{ vcpu: string; pcpu: number }>('sched.block');
/** The credit scheduler's accounting pass ran (every time slice). */
export const TP_SCHED_ACCT = tracePoint<{ credits: { vcpu: string; credit: number; pri: number }[] }>('sched.acct');

/** A hypercall entered Xen (`name` as `grant_table_op.copy`; `count` = ops in the batch). */
export const TP_HYPERCALL = tracePoint<{ domid: number; vcpu: string; nr: number; cmd: number; name: string; count: number }>('hypercall');
/** An HVM vCPU exited to Xen. */
export const TP_VMEXIT = tracePoint<{ domid: number; vcpu: string; reason: ExitReason }>('vmexit');
/**
 * An event-channel notification (EVTCHNOP_send, or Xen notifying through a Xen-attached
 * port): where it went and whether it raised an upcall (`kicked`), found the port already
 * pending or masked, or was dropped on an unbound port.
 */
export const TP_NOTIFY = tracePoint<{
  domid: number;
  port: number;
  remoteDomid: number | null;
  remotePort: number | null;
  outcome: 'kicked' | 'pending' | 'masked' | 'dropped' | 'xen';
}>('notify');
/** Xen entered a guest vCPU at its event upcall (vector = the HVM callback vector; null for PV). */
export const TP_UPCALL = tracePoint<{ domid: number; vcpu: string; vector: number | null }>('upcall');
/** One GNTTABOP_copy op finished (`status` GNTST_*; bytes moved only when okay). */
export const TP_COPY = tracePoint<{ domid: number; srcDomid: number; dstDomid: number; len: number; status: number }>('copy');
/** One GNTTABOP_map_grant_ref op finished. */
export const TP_MAP = tracePoint<{ domid: number; granter: number; ref: number; handle: number; readonly: boolean; status: number }>('map');
/** One GNTTABOP_unmap_grant_ref op finished. */
export const TP_UNMAP = tracePoint<{ domid: number; handle: number; status: number }>('unmap');
/** Xen forwarded an emulated access to an ioreq server (or, `server` null, to the null handler). */
export const TP_IOREQ = tracePoint<{
  domid: number;
  vcpu: string;
  server: number | null;
  type: number;
  dir: number;
  addr: number;
  size: number;
  data: bigint;
}>('ioreq');
/** Xen took a passed-through device's MSI as a physical interrupt on `pcpu`, for guest vector `vector`. */
export const TP_PIRQ = tracePoint<{ domid: number; vcpu: string; pcpu: number; bdf: string; vector: number }>('pirq');
