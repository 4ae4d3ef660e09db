import type { ProcessGenerator, SimEvent } from '../../sim/index.js';
import type { Vcpu } from '../vcpu.js';

/** Runs the handler of one pending port whose pending bit the ABI has just cleared (handle_irq_for_port). */
export type PortDispatch = (port: number, v: Vcpu) => ProcessGenerator<void>;

/**
 * The low-level port operations of one event-channel ABI, as Linux's struct evtchn_ops
 * (drivers/xen/events/events_internal.h): the 2-level bitmaps in the shared-info page
 * (events_2l.c) or the FIFO event array and control blocks (events_fifo.c). The driver above
 * (evtchn.ts) binds ports and handlers the same way on either.
 */
export interface EvtchnOps {
  readonly abi: '2l' | 'fifo';
  /** The upcall's own cost on this ABI besides the per-port work (ns). */
  readonly upcallCost: number;
  /** evtchn_ops->setup: make a newly bound port usable (FIFO: grow the event array). 0 or -errno. */
  setup(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown>;
  mask(port: number): void;
  /** Unmask, re-raising by EVTCHNOP_unmask an event that is already pending. */
  unmask(v: Vcpu, port: number): Generator<SimEvent<unknown>, void, unknown>;
  isPending(port: number): boolean;
  clearPending(port: number): void;
  /** evtchn_ops->handle_events: dispatch every pending unmasked event of this vCPU. */
  handleEvents(v: Vcpu, dispatch: PortDispatch): ProcessGenerator<void>;
}
