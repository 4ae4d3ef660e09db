import { type ProcessGenerator, type SimEvent } from '../../sim/index.js';
import { __HYPERVISOR_event_channel_op, BITS_PER_EVTCHN_WORD, EVTCHN_2L_NR_CHANNELS, EVTCHNOP_unmask } from '../abi/index.js';
import type { SharedInfo } from '../shared-info.js';
import type { Vcpu } from '../vcpu.js';
import type { EvtchnOps, PortDispatch } from './evtchn-ops.js';
import type { XenPlatform } from './platform.js';

/**
 * A guest kernel's 2-level event-channel ABI, as Linux's drivers/xen/events/events_2l.c (and
 * the only one of linux-2.6.18-xen and Linux before 3.14): pending and mask bitmaps in the
 * shared-info page, a per-vCPU selector of pending words (shared/reference/xen-abi.md §4.1).
 */
export class Evtchn2lOps implements EvtchnOps {
  readonly abi = '2l' as const;

  /** xen_evtchn_2l_init after xen_evtchn_mask_all: every port starts masked. */
  constructor(
    private readonly xen: XenPlatform,
    private readonly si: SharedInfo,
  ) {
    for (let p = 0; p < EVTCHN_2L_NR_CHANNELS; p++) si.setMask(p);
  }

  get upcallCost(): number {
    return this.xen.costs.guestUpcall;
  }

  /** The 2-level ABI has every port's bits from the start: nothing to set up. */
  // eslint-disable-next-line require-yield
  *setup(): Generator<SimEvent<unknown>, number, unknown> {
    return 0;
  }

  /** mask_evtchn: set the mask bit in the shared page (no hypercall). */
  mask(port: number): void {
    this.si.setMask(port);
  }

  /**
   * evtchn_2l_unmask: with nothing pending, clear the mask bit directly; with an event pending,
   * EVTCHNOP_unmask so Xen re-raises it (the HVM slow path).
   */
  *unmask(v: Vcpu, port: number): Generator<SimEvent<unknown>, void, unknown> {
    if (!this.si.isPending(port)) {
      this.si.testAndClearMask(port);
      return;
    }
    yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_unmask, arg: { port } });
  }

  isPending(port: number): boolean {
    return this.si.isPending(port);
  }

  clearPending(port: number): void {
    this.si.clearPending(port);
  }

  /** evtchn_2l_handle_events: take evtchn_pending_sel, and for each word every pending unmasked port. */
  *handleEvents(v: Vcpu, dispatch: PortDispatch): ProcessGenerator<void> {
    const si = this.si;
    let sel = si.takePendingSel(v.id);
    for (let i = 0; sel !== 0n; i++, sel >>= 1n) {
      if ((sel & 1n) === 0n) continue;
      let bits = si.activeWord(i);
      for (let b = 0; bits !== 0n; b++, bits >>= 1n) {
        if ((bits & 1n) === 0n) continue;
        const port = i * BITS_PER_EVTCHN_WORD + b;
        si.clearPending(port);
        yield* dispatch(port, v);
      }
    }
  }
}
