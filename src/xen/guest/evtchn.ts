import { PRIO_IRQ, type ProcessGenerator, type SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_hvm_op,
  __HYPERVISOR_memory_op,
  BITS_PER_EVTCHN_WORD,
  CALLBACKOP_register,
  CALLBACKTYPE_event,
  DOMID_SELF,
  EVTCHN_2L_NR_CHANNELS,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_unmask,
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT,
  HVM_PARAM_CALLBACK_TYPE_VECTOR,
  HVMOP_set_param,
  XENMAPSPACE_shared_info,
  XENMEM_add_to_physmap,
} from '../abi/index.js';
import type { Domain } from '../domain.js';
import { SharedInfo } from '../shared-info.js';
import type { Vcpu } from '../vcpu.js';
import type { FrameAllocator } from './frame-alloc.js';
import type { XenPlatform } from './platform.js';

/** Linux's HYPERVISOR_CALLBACK_VECTOR (x86): the vector of the event-channel upcall. */
export const HYPERVISOR_CALLBACK_VECTOR = 0xf3;

/**
 * A driver's handler for events on one port, run in interrupt context on the vCPU that took
 * the upcall; it may charge work there (yield) or just wake a process.
 */
export type PortHandler = (port: number, v: Vcpu) => ProcessGenerator<void> | void;

/**
 * A guest kernel's event-channel layer, as Linux's drivers/xen/events (2-level): the upcall
 * entry (HVM callback vector, HVM_PARAM_CALLBACK_IRQ type 2; PV event callback), the scan of
 * the shared-info bitmaps, and per-port handlers that drivers bind. Every port is masked
 * until a handler is installed, then unmasked (by hypercall if an event is already pending),
 * so nothing that arrived before the handler is lost.
 */
export class EventChannelDriver {
  private readonly handlers = new Map<number, PortHandler>();
  private si: SharedInfo | null = null;
  /** Events that found no handler (counted, then dropped, as a spurious interrupt). */
  spurious = 0;

  constructor(
    private readonly xen: XenPlatform,
    private readonly domain: Domain,
    private readonly frames: FrameAllocator,
  ) {}

  /** The shared-info page as this guest sees it (mapped by init). */
  get sharedInfo(): SharedInfo {
    if (this.si === null) throw new Error(`d${this.domain.domid}: event channels used before init (model bug)`);
    return this.si;
  }

  /**
   * Maps the shared-info page, masks every port, installs the upcall: HVM sets its IDT entry
   * and HVM_PARAM_CALLBACK_IRQ (vector type); PV registers its event callback. Returns 0 or
   * the failing hypercall's error.
   */
  *init(v: Vcpu): Generator<SimEvent<unknown>, number, unknown> {
    const gfn = this.frames.allocUnpopulated();
    let rc = yield* this.xen.hypercall(v, {
      nr: __HYPERVISOR_memory_op,
      cmd: XENMEM_add_to_physmap,
      arg: { domid: DOMID_SELF, space: XENMAPSPACE_shared_info, idx: 0, gpfn: gfn },
    });
    if (rc !== 0) return rc;
    this.si = new SharedInfo(this.domain.memory.view(gfn));
    for (let p = 0; p < EVTCHN_2L_NR_CHANNELS; p++) this.si.setMask(p); // xen_evtchn_mask_all
    const entry = (cpu: Vcpu): ProcessGenerator<void> => this.upcall(cpu);
    if (this.domain.isHvm) {
      this.domain.idt.set(HYPERVISOR_CALLBACK_VECTOR, entry);
      const value = (BigInt(HVM_PARAM_CALLBACK_TYPE_VECTOR) << HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT) | BigInt(HYPERVISOR_CALLBACK_VECTOR);
      rc = yield* this.xen.hypercall(v, {
        nr: __HYPERVISOR_hvm_op,
        cmd: HVMOP_set_param,
        arg: { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, value },
      });
    } else {
      rc = yield* this.xen.hypercall(v, {
        nr: __HYPERVISOR_callback_op,
        cmd: CALLBACKOP_register,
        arg: { type: CALLBACKTYPE_event, handler: entry },
      });
    }
    return rc;
  }

  /**
   * The upcall (xen_evtchn_do_upcall → evtchn_2l_handle_events): clear
   * evtchn_upcall_pending, take evtchn_pending_sel, and for each word dispatch every pending
   * unmasked port (clearing its pending bit first), until no upcall is pending any more.
   */
  *upcall(v: Vcpu): ProcessGenerator<void> {
    const si = this.sharedInfo;
    const costs = this.xen.costs;
    yield v.exec(costs.guestUpcall, 'irq', PRIO_IRQ);
    do {
      si.setUpcallPending(v.id, false);
      let sel = si.takePendingSel(v.id);
      for (let i = 0; sel !== 0n; i++, sel >>= 1n) {
        if ((sel & 1n) === 0n) continue;
        let bits = si.activeWord(i);
        for (let b = 0; bits !== 0n; b++, bits >>= 1n) {
          if ((bits & 1n) === 0n) continue;
          const port = i * BITS_PER_EVTCHN_WORD + b;
          si.clearPending(port);
          yield v.exec(costs.guestUpcallPort, 'irq', PRIO_IRQ);
          const h = this.handlers.get(port);
          if (h === undefined) {
            this.spurious++;
            continue;
          }
          const r = h(port, v);
          if (r !== undefined) yield* r;
        }
      }
    } while (si.upcallPending(v.id));
  }

  // ---- binding (bind_*_to_irqhandler) -------------------------------------------------------

  /** EVTCHNOP_alloc_unbound: a port `remoteDomid` may bind; bind a handler with bindHandler. Port or -errno. */
  *allocUnbound(v: Vcpu, remoteDomid: number): Generator<SimEvent<unknown>, number, unknown> {
    const arg: { dom: number; remote_dom: number; port?: number } = { dom: DOMID_SELF, remote_dom: remoteDomid };
    const rc = yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_alloc_unbound, arg });
    return rc < 0 ? rc : arg.port!;
  }

  /** EVTCHNOP_bind_interdomain, then the handler is installed and the port unmasked. Local port or -errno. */
  *bindInterdomain(v: Vcpu, remoteDomid: number, remotePort: number, handler: PortHandler): Generator<SimEvent<unknown>, number, unknown> {
    const arg: { remote_dom: number; remote_port: number; local_port?: number } = { remote_dom: remoteDomid, remote_port: remotePort };
    const rc = yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_bind_interdomain, arg });
    if (rc < 0) return rc;
    yield* this.bindHandler(v, arg.local_port!, handler);
    return arg.local_port!;
  }

  /** EVTCHNOP_bind_virq with a handler. Port or -errno. */
  *bindVirq(v: Vcpu, virq: number, vcpu: number, handler: PortHandler): Generator<SimEvent<unknown>, number, unknown> {
    const arg: { virq: number; vcpu: number; port?: number } = { virq, vcpu };
    const rc = yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_bind_virq, arg });
    if (rc < 0) return rc;
    yield* this.bindHandler(v, arg.port!, handler);
    return arg.port!;
  }

  /** Installs `handler` for `port` and unmasks it. */
  *bindHandler(v: Vcpu, port: number, handler: PortHandler): Generator<SimEvent<unknown>, void, unknown> {
    this.handlers.set(port, handler);
    yield* this.unmask(v, port);
  }

  /** notify_remote_via_evtchn: EVTCHNOP_send. 0 or -errno. */
  *notify(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown> {
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port } });
  }

  /** Unbinds: mask, forget the handler, EVTCHNOP_close. 0 or -errno. */
  *close(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown> {
    this.mask(port);
    this.handlers.delete(port);
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_close, arg: { port } });
  }

  /** mask_evtchn: set the mask bit in the shared page (no hypercall). */
  mask(port: number): void {
    this.sharedInfo.setMask(port);
  }

  /**
   * unmask_evtchn: with nothing pending, clear the mask bit directly; with an event pending,
   * EVTCHNOP_unmask so Xen re-raises it (the HVM slow path of evtchn_2l_unmask).
   */
  *unmask(v: Vcpu, port: number): Generator<SimEvent<unknown>, void, unknown> {
    const si = this.sharedInfo;
    if (!si.isPending(port)) {
      si.testAndClearMask(port);
      return;
    }
    yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_unmask, arg: { port } });
  }
}
