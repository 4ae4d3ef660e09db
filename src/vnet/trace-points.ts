import { tracePoint } from '../sim/index.js';
import type { Packet } from '../net/index.js';

/**
 * Trace points every I/O path fires at its boundaries with the guest stack, under the same
 * names (STYLE.md habit 8), so a timeline or a statistics sink reads every path alike; the
 * mechanisms in between fire Xen's own (`copy`, `vmexit`, `notify`, `upcall`…).
 */

/** A guest's device accepted a frame to send. */
export const TP_TX_START = tracePoint<{ path: string; domid: number; dev: string; len: number }>('txStart');
/** A channel path (hv2m, shmem) diverted a frame of `domid` to its channel with `peer` (Ethernet header written). */
export const TP_CHANNEL_FRAME = tracePoint<{ path: string; domid: number; peer: number; pkt: Packet }>('channelFrame');
/** A guest's device handed a received frame to its stack. */
export const TP_RX_DELIVER = tracePoint<{ path: string; domid: number; dev: string; len: number }>('rxDeliver');
