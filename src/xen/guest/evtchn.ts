import { PRIO_IRQ, type ProcessGenerator, type SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_hvm_op,
  __HYPERVISOR_memory_op,
  __HYPERVISOR_sched_op,
  CALLBACKOP_register,
  CALLBACKTYPE_event,
  DOMID_SELF,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_set_priority,
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT,
  HVM_PARAM_CALLBACK_TYPE_VECTOR,
  HVMOP_set_param,
  SCHEDOP_poll,
  XENMAPSPACE_shared_info,
  XENMEM_add_to_physmap,
} from '../abi/index.js';
import type { Domain } from '../domain.js';
import { SharedInfo } from '../shared-info.js';
import type { Vcpu } from '../vcpu.js';
import { Evtchn2lOps } from './evtchn-2l.js';
import { EvtchnFifoOps } from './evtchn-fifo.js';
import type { EvtchnOps } from './evtchn-ops.js';
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
 * A guest kernel's event-channel layer, as Linux's drivers/xen/events: the upcall entry (HVM
 * callback vector, HVM_PARAM_CALLBACK_IRQ type 2; PV event callback), per-port handlers that
 * drivers bind, and below them one ABI's port operations (evtchn-ops.ts): the FIFO ABI if the
 * kernel release has it and Xen accepts it (xen_init_IRQ), else the 2-level bitmaps. Every port
 * is masked until a handler is installed, then unmasked (by hypercall if an event is already
 * pending), so nothing that arrived before the handler is lost.
 */
export class EventChannelDriver {
  private readonly handlers = new Map<number, PortHandler>();
  private si: SharedInfo | null = null;
  private abiOps: EvtchnOps | null = null;
  /** Events that found no handler (counted, then dropped, as a spurious interrupt). */
  spurious = 0;
  /** The error of EVTCHNOP_init_control when the kernel tried the FIFO ABI and fell back (0: it did not fall back). */
  fifoInitError = 0;

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

  /** The ABI's port operations chosen by init. */
  get ops(): EvtchnOps {
    if (this.abiOps === null) throw new Error(`d${this.domain.domid}: event channels used before init (model bug)`);
    return this.abiOps;
  }

  /** The ABI in use: '2l' or 'fifo'. */
  get abi(): '2l' | 'fifo' {
    return this.ops.abi;
  }

  /** The FIFO ABI's state (control blocks, event array), or null on the 2-level ABI. */
  get fifo(): EvtchnFifoOps | null {
    return this.abiOps instanceof EvtchnFifoOps ? this.abiOps : null;
  }

  /**
   * Maps the shared-info page (vcpu_info with evtchn_upcall_pending is there on either ABI),
   * chooses the ABI (xen_init_IRQ: FIFO first on a kernel that has it, the 2-level ABI with
   * every port masked if that fails or the kernel predates it), installs the upcall: HVM sets
   * its IDT entry and HVM_PARAM_CALLBACK_IRQ (vector type); PV registers its event callback.
   * Returns 0 or the failing hypercall's error.
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
    if (this.xen.linux.fifoEvents) {
      const r = yield* EvtchnFifoOps.init(this.xen, this.domain, this.frames, v);
      if (r instanceof EvtchnFifoOps) this.abiOps = r;
      else if (!r.first) return r.rc;
      else this.fifoInitError = r.rc;
    }
    this.abiOps ??= new Evtchn2lOps(this.xen, this.si);
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
   * The upcall (xen_evtchn_do_upcall → __xen_evtchn_do_upcall): clear evtchn_upcall_pending,
   * let the ABI dispatch every pending unmasked port (its pending bit cleared first), until no
   * upcall is pending any more.
   */
  *upcall(v: Vcpu): ProcessGenerator<void> {
    const si = this.sharedInfo;
    const ops = this.ops;
    yield v.exec(ops.upcallCost, 'irq', PRIO_IRQ);
    const dispatch = (port: number, cpu: Vcpu): ProcessGenerator<void> => this.dispatch(port, cpu);
    do {
      si.setUpcallPending(v.id, false);
      yield* ops.handleEvents(v, dispatch);
    } while (si.upcallPending(v.id));
  }

  /** handle_irq_for_port: the port's handler, or a spurious event. */
  private *dispatch(port: number, v: Vcpu): ProcessGenerator<void> {
    yield v.exec(this.xen.costs.guestUpcallPort, 'irq', PRIO_IRQ);
    const h = this.handlers.get(port);
    if (h === undefined) {
      this.spurious++;
      return;
    }
    const r = h(port, v);
    if (r !== undefined) yield* r;
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
    return yield* this.bound(v, arg.local_port!, handler);
  }

  /** EVTCHNOP_bind_virq with a handler. Port or -errno. */
  *bindVirq(v: Vcpu, virq: number, vcpu: number, handler: PortHandler): Generator<SimEvent<unknown>, number, unknown> {
    const arg: { virq: number; vcpu: number; port?: number } = { virq, vcpu };
    const rc = yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_bind_virq, arg });
    if (rc < 0) return rc;
    return yield* this.bound(v, arg.port!, handler);
  }

  /** A port the kernel just bound: set up and handled, or closed again if the ABI cannot take it. */
  private *bound(v: Vcpu, port: number, handler: PortHandler): Generator<SimEvent<unknown>, number, unknown> {
    const rc = yield* this.bindHandler(v, port, handler);
    if (rc < 0) {
      yield* this.close(v, port);
      return rc;
    }
    return port;
  }

  /**
   * Installs `handler` for `port` and unmasks it, after the ABI's per-port setup
   * (xen_irq_info_common_setup → xen_evtchn_port_setup: FIFO grows its event array). 0 or the
   * setup's error (the port then stays without a handler).
   */
  *bindHandler(v: Vcpu, port: number, handler: PortHandler): Generator<SimEvent<unknown>, number, unknown> {
    const rc = yield* this.ops.setup(v, port);
    if (rc < 0) return rc;
    this.handlers.set(port, handler);
    yield* this.unmask(v, port);
    return 0;
  }

  /** notify_remote_via_evtchn: EVTCHNOP_send. 0 or -errno. */
  *notify(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown> {
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send, arg: { port } });
  }

  /**
   * xen_set_irq_priority: EVTCHNOP_set_priority (FIFO priorities 0, highest, to 15; the 2-level
   * ABI has none, and Xen says -ENOSYS). 0 or -errno.
   */
  *setPriority(v: Vcpu, port: number, priority: number): Generator<SimEvent<unknown>, number, unknown> {
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_set_priority, arg: { port, priority } });
  }

  /**
   * xen_poll_irq_timeout: SCHEDOP_poll on `ports` (usually masked ones, as PV spinlocks poll
   * theirs), until one is pending, an upcall comes, or the absolute time `timeout` (0: none).
   * 0 or -errno.
   */
  *poll(v: Vcpu, ports: readonly number[], timeout = 0): Generator<SimEvent<unknown>, number, unknown> {
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_sched_op, cmd: SCHEDOP_poll, arg: { ports, timeout } });
  }

  /** Unbinds: mask, forget the handler, EVTCHNOP_close. 0 or -errno. */
  *close(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown> {
    this.mask(port);
    this.handlers.delete(port);
    return yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_close, arg: { port } });
  }

  /** mask_evtchn (no hypercall). */
  mask(port: number): void {
    this.ops.mask(port);
  }

  /** unmask_evtchn: EVTCHNOP_unmask only if an event is already pending. */
  *unmask(v: Vcpu, port: number): Generator<SimEvent<unknown>, void, unknown> {
    yield* this.ops.unmask(v, port);
  }

  /** test_evtchn: whether the port's event is pending. */
  isPending(port: number): boolean {
    return this.ops.isPending(port);
  }

  /** clear_evtchn: clear the port's pending bit. */
  clearPending(port: number): void {
    this.ops.clearPending(port);
  }
}
