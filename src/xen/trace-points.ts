import { tracePoint } from '../sim/index.js';

/** A pCPU switched from one vCPU (or idle, null) to another. */
export const TP_SCHED_SWITCH = tracePoint<{ pcpu: number; from: string | null; to: string | null; reason: string }>('sched.switch');
/** A vCPU became runnable; `boosted` if it is queued with the credit scheduler's BOOST priority. */
export const TP_SCHED_WAKE = tracePoint<{ vcpu: string; pcpu: number; boosted: boolean }>('sched.wake');
/** A vCPU stopped being runnable because it had no work left (the guest blocked). */
export const TP_SCHED_BLOCK = tracePoint<{ vcpu: string; pcpu: number }>('sched.block');
/** The credit scheduler's accounting pass ran (every time slice). */
export const TP_SCHED_ACCT = tracePoint<{ credits: { vcpu: string; credit: number; pri: number }[] }>('sched.acct');
