import { tracePoint } from '../sim/index.js';

/**
 * Trace points every I/O path fires at its boundaries with the guest stack, under the same
 * names (STYLE.md habit 8), so a timeline or a statistics sink reads every path alike; the
 * mechanisms in between fire Xen's own (`copy`, `vmexit`, `notify`, `upcall`…).
 */

/** A guest's device accepted a frame to send. */
export const TP_TX_START = tracePoint<{ path: string; domid: number; dev: string; len: number }>('txStart');
/** A guest's device handed a received frame to its stack. */
export const TP_RX_DELIVER = tracePoint<{ path: string; domid: number; dev: string; len: number }>('rxDeliver');
