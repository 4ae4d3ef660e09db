import { tracePoint } from '../sim/index.js';
import type { Packet } from '../net/index.js';

/**
 * Trace points every I/O path fires at its boundaries with the guest stack, under the same
 * names (STYLE.md habit 8), so a timeline or a statistics sink reads every path alike; the
 * mechanisms in between fire Xen's own (`copy`, `vmexit`, `notify`, `upcall`…).
 */

/**
 * The points that follow one frame (a sink's flows) carry the vCPU the work ran on and the
 * frame's bytes as they are at that place (a view, valid only during the call: a sink reads
 * what it needs, such as the IPv4 header that identifies the frame, before returning). Bytes,
 * not an object identity: every path really copies the frame into new buffers on its way.
 */

/** A guest's device accepted a frame to send (on the sending guest's vCPU `vcpu`). */
export const TP_TX_START = tracePoint<{ path: string; domid: number; dev: string; len: number; vcpu: string; frame: Uint8Array }>('txStart');
/** A channel path (hv2m, shmem) diverted a frame of `domid` to its channel with `peer` (Ethernet header written). */
export const TP_CHANNEL_FRAME = tracePoint<{ path: string; domid: number; peer: number; pkt: Packet }>('channelFrame');
/** A guest's device handed a received frame to its stack (on the receiving guest's vCPU `vcpu`). */
export const TP_RX_DELIVER = tracePoint<{ path: string; domid: number; dev: string; len: number; vcpu: string; frame: Uint8Array }>('rxDeliver');
/**
 * A mechanism between txStart and rxDeliver finished its part for one frame of `len` bytes, on
 * vCPU `vcpu` of domain `domid`: netfront wrote its TX requests or notified, netback
 * grant-copied it into Dom0 or into the receiver and notified, an HV²M sender's grant copy and
 * RX response, its notification, qemu's tap write or RX DMA, a shmem FIFO copy (`step` names
 * it). After a notification the frame may be gone from the notifier's memory: `frame` is then
 * a copy of its headers (Ethernet and IPv4), made only when the point is observed.
 */
export const TP_FRAME_STEP = tracePoint<{ path: string; domid: number; vcpu: string; step: string; len: number; frame: Uint8Array }>('frameStep');

/** The headers a flow needs of a frame (Ethernet and an option-less IPv4 header), copied: for a step after the frame is gone. */
export function frameHeaders(frame: Uint8Array): Uint8Array {
  return frame.slice(0, 34);
}
