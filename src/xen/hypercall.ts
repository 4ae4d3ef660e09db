import { PRIO_IRQ, type SimEvent } from '../sim/index.js';
import {
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_set_priority,
  __HYPERVISOR_callback_op,
  __HYPERVISOR_sched_op,
  SCHEDOP_poll,
  SCHEDOP_yield,
  __HYPERVISOR_dm_op,
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_hvm_op,
  __HYPERVISOR_memory_op,
  CALLBACKOP_register,
  CALLBACKTYPE_event,
  DOMID_SELF,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  HVM_NR_PARAMS,
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT,
  HVM_PARAM_CALLBACK_TYPE_VECTOR,
  HVM_PARAM_CONSOLE_EVTCHN,
  HVM_PARAM_CONSOLE_PFN,
  HVM_PARAM_STORE_EVTCHN,
  HVM_PARAM_STORE_PFN,
  HVMOP_get_param,
  HVMOP_set_param,
  XENMEM_acquire_resource,
  XENMEM_add_to_physmap,
} from './abi/index.js';
import type { Domain } from './domain.js';
import type {
  EvtchnAllocUnbound,
  EvtchnBindInterdomain,
  EvtchnBindIpi,
  EvtchnBindVcpu,
  EvtchnBindVirq,
  EvtchnPort,
  EvtchnStatus,
} from './event-channel.js';
import type { GnttabCopy, GnttabMapGrantRef, GnttabQuerySize, GnttabSetupTable, GnttabUnmapGrantRef } from './gnttab-op.js';
import type { EvtchnExpandArray, EvtchnInitControl, EvtchnSetPriority } from './event-fifo.js';
import type { Hypervisor } from './hypervisor.js';
import type { DmOp, XenMemAcquireResource } from './ioreq.js';
import type { XenAddToPhysmap } from './memory-op.js';
import type { SchedPoll } from './sched-poll.js';
import { TP_HYPERCALL, TP_VMEXIT } from './trace-points.js';
import type { Vcpu } from './vcpu.js';
import type { GuestIrqHandler } from './vintr.js';

type GT = typeof __HYPERVISOR_grant_table_op;
type EV = typeof __HYPERVISOR_event_channel_op;

/** struct xen_hvm_param. */
export interface XenHvmParam {
  domid: number;
  index: number;
  value: bigint;
}

/** struct callback_register; the model's "address" is the guest function itself. */
export interface CallbackRegister {
  type: number;
  handler: GuestIrqHandler;
}

/**
 * A hypercall and its arguments, as the guest passes them: the number, the sub-command and
 * typed records with Xen's field names (OUT fields and per-op `status` are written back).
 * The byte layouts of these structs are in src/xen/abi; the model passes records because
 * only shared pages need to be real bytes.
 */
export type HypercallArgs =
  | { nr: GT; cmd: typeof GNTTABOP_copy; ops: GnttabCopy[] }
  | { nr: GT; cmd: typeof GNTTABOP_map_grant_ref; ops: GnttabMapGrantRef[] }
  | { nr: GT; cmd: typeof GNTTABOP_unmap_grant_ref; ops: GnttabUnmapGrantRef[] }
  | { nr: GT; cmd: typeof GNTTABOP_setup_table; ops: GnttabSetupTable[] }
  | { nr: GT; cmd: typeof GNTTABOP_query_size; ops: GnttabQuerySize[] }
  | { nr: EV; cmd: typeof EVTCHNOP_alloc_unbound; arg: EvtchnAllocUnbound }
  | { nr: EV; cmd: typeof EVTCHNOP_bind_interdomain; arg: EvtchnBindInterdomain }
  | { nr: EV; cmd: typeof EVTCHNOP_bind_virq; arg: EvtchnBindVirq }
  | { nr: EV; cmd: typeof EVTCHNOP_bind_ipi; arg: EvtchnBindIpi }
  | { nr: EV; cmd: typeof EVTCHNOP_close | typeof EVTCHNOP_send | typeof EVTCHNOP_unmask; arg: EvtchnPort }
  | { nr: EV; cmd: typeof EVTCHNOP_status; arg: EvtchnStatus }
  | { nr: EV; cmd: typeof EVTCHNOP_bind_vcpu; arg: EvtchnBindVcpu }
  | { nr: EV; cmd: typeof EVTCHNOP_init_control; arg: EvtchnInitControl }
  | { nr: EV; cmd: typeof EVTCHNOP_expand_array; arg: EvtchnExpandArray }
  | { nr: EV; cmd: typeof EVTCHNOP_set_priority; arg: EvtchnSetPriority }
  | { nr: typeof __HYPERVISOR_hvm_op; cmd: typeof HVMOP_set_param | typeof HVMOP_get_param; arg: XenHvmParam }
  | { nr: typeof __HYPERVISOR_memory_op; cmd: typeof XENMEM_add_to_physmap; arg: XenAddToPhysmap }
  | { nr: typeof __HYPERVISOR_memory_op; cmd: typeof XENMEM_acquire_resource; arg: XenMemAcquireResource }
  | { nr: typeof __HYPERVISOR_callback_op; cmd: typeof CALLBACKOP_register; arg: CallbackRegister }
  | { nr: typeof __HYPERVISOR_dm_op; cmd: DmOp['op']; arg: DmOp }
  | { nr: typeof __HYPERVISOR_sched_op; cmd: typeof SCHEDOP_yield }
  | { nr: typeof __HYPERVISOR_sched_op; cmd: typeof SCHEDOP_poll; arg: SchedPoll };

const NAMES: Record<number, [string, Record<number, string>]> = {
  [__HYPERVISOR_grant_table_op]: ['grant_table_op', { 0: 'map_grant_ref', 1: 'unmap_grant_ref', 2: 'setup_table', 5: 'copy', 6: 'query_size' }],
  [__HYPERVISOR_event_channel_op]: [
    'event_channel_op',
    {
      0: 'bind_interdomain',
      1: 'bind_virq',
      3: 'close',
      4: 'send',
      5: 'status',
      6: 'alloc_unbound',
      7: 'bind_ipi',
      8: 'bind_vcpu',
      9: 'unmask',
      11: 'init_control',
      12: 'expand_array',
      13: 'set_priority',
    },
  ],
  [__HYPERVISOR_hvm_op]: ['hvm_op', { 0: 'set_param', 1: 'get_param' }],
  [__HYPERVISOR_memory_op]: ['memory_op', { 7: 'add_to_physmap', 28: 'acquire_resource' }],
  [__HYPERVISOR_callback_op]: ['callback_op', { 0: 'register' }],
  [__HYPERVISOR_sched_op]: ['sched_op', { 0: 'yield', 1: 'block', 3: 'poll' }],
  [__HYPERVISOR_dm_op]: [
    'dm_op',
    {
      1: 'create_ioreq_server',
      2: 'get_ioreq_server_info',
      3: 'map_io_range_to_ioreq_server',
      4: 'unmap_io_range_from_ioreq_server',
      5: 'set_ioreq_server_state',
      6: 'destroy_ioreq_server',
      8: 'set_pci_intx_level',
      9: 'set_isa_irq_level',
      10: 'set_pci_link_route',
      14: 'inject_msi',
    },
  ],
};

/** `event_channel_op.send`-style name of a hypercall, for counters and traces. */
export function hypercallName(nr: number, cmd: number): string {
  const n = NAMES[nr];
  if (n === undefined) return `hypercall_${nr}`;
  return `${n[0]}.${n[1][cmd] ?? `cmd${cmd}`}`;
}

/** HVM params a guest may read about itself (hvm_allow_get_param); it may set only the callback. */
const GUEST_READABLE = new Set([
  HVM_PARAM_CALLBACK_IRQ,
  HVM_PARAM_STORE_PFN,
  HVM_PARAM_STORE_EVTCHN,
  HVM_PARAM_CONSOLE_PFN,
  HVM_PARAM_CONSOLE_EVTCHN,
]);

/**
 * The hypercall entry: charges the way into Xen on the calling vCPU (an HVM VM exit by VMCALL,
 * or a PV trap), dispatches to the handler, which charges its own cost there too, and the
 * way back (VM entry), where pending interrupts are injected. Context 'xen': Xen working for
 * the calling domain. Returns the hypercall's return value; per-op results are in the ops.
 */
export class Hypercalls {
  constructor(private readonly hv: Hypervisor) {}

  *call(v: Vcpu, a: HypercallArgs): Generator<SimEvent<unknown>, number, unknown> {
    const d = v.domain;
    const c = this.hv.costs;
    const name = hypercallName(a.nr, a.cmd);
    d.counters.hypercall(name);
    const t = this.hv.env.trace;
    if (t.enabled(TP_HYPERCALL))
      t.emit(TP_HYPERCALL, { domid: d.domid, vcpu: v.name, nr: a.nr, cmd: a.cmd, name, count: 'ops' in a ? a.ops.length : 1 });
    if (d.isHvm) {
      d.counters.exits.vmcall++;
      if (t.enabled(TP_VMEXIT)) t.emit(TP_VMEXIT, { domid: d.domid, vcpu: v.name, reason: 'vmcall' });
    } else d.counters.pvTraps++;
    yield v.exec(d.isHvm ? c.exit.vmcall : c.pvTrap, 'xen', PRIO_IRQ);
    const rc = yield* this.dispatch(v, a);
    // A vCPU that blocked in the call (SCHEDOP_poll) is woken by its VM entry's work, tickled
    // from the pCPU that unblocked it.
    if (d.isHvm) yield v.exec(c.vmentry, 'xen', PRIO_IRQ, this.hv.poll.takeWakeFrom(v));
    this.hv.intr.onGuestEntry(v);
    return rc;
  }

  private *dispatch(v: Vcpu, a: HypercallArgs): Generator<SimEvent<unknown>, number, unknown> {
    const d = v.domain;
    const hv = this.hv;
    switch (a.nr) {
      case __HYPERVISOR_grant_table_op:
        switch (a.cmd) {
          case GNTTABOP_copy:
            return yield* hv.gnttab.copy(v, a.ops);
          case GNTTABOP_map_grant_ref:
            return yield* hv.gnttab.map(v, a.ops);
          case GNTTABOP_unmap_grant_ref:
            return yield* hv.gnttab.unmap(v, a.ops);
          case GNTTABOP_setup_table:
          case GNTTABOP_query_size: {
            yield* this.simple(v);
            if (a.ops.length !== 1) return -EINVAL;
            if (a.cmd === GNTTABOP_setup_table) hv.gnttab.setupTable(d, a.ops[0]!);
            else hv.gnttab.querySize(d, a.ops[0]!);
            return 0;
          }
          default:
            return -ENOSYS;
        }
      case __HYPERVISOR_event_channel_op:
        if (a.cmd === EVTCHNOP_send) {
          yield v.exec(hv.evtchn.receiverUsesFifo(d, a.arg.port) ? hv.costs.evtchnSendFifo : hv.costs.evtchnSend, 'xen', PRIO_IRQ);
          return hv.evtchn.send(v, a.arg.port);
        }
        yield* this.simple(v);
        switch (a.cmd) {
          case EVTCHNOP_alloc_unbound:
            return hv.evtchn.allocUnbound(d, a.arg);
          case EVTCHNOP_bind_interdomain:
            return hv.evtchn.bindInterdomain(d, a.arg, v.pcpu);
          case EVTCHNOP_bind_virq:
            return hv.evtchn.bindVirq(d, a.arg);
          case EVTCHNOP_bind_ipi:
            return hv.evtchn.bindIpi(d, a.arg);
          case EVTCHNOP_close:
            return hv.evtchn.close(d, a.arg.port);
          case EVTCHNOP_status:
            return hv.evtchn.status(d, a.arg);
          case EVTCHNOP_unmask:
            return hv.evtchn.unmask(d, a.arg.port, v.pcpu);
          case EVTCHNOP_bind_vcpu:
            return hv.evtchn.bindVcpu(d, a.arg);
          case EVTCHNOP_init_control:
            return hv.evtchn.initControl(d, a.arg);
          case EVTCHNOP_expand_array:
            return hv.evtchn.expandArray(d, a.arg, v.pcpu);
          case EVTCHNOP_set_priority:
            return hv.evtchn.setPriority(d, a.arg);
          default:
            return -ENOSYS;
        }
      case __HYPERVISOR_hvm_op:
        yield* this.simple(v);
        if (a.cmd === HVMOP_set_param) return this.setParam(d, a.arg);
        if (a.cmd === HVMOP_get_param) return this.getParam(d, a.arg);
        return -ENOSYS;
      case __HYPERVISOR_memory_op:
        yield* this.simple(v);
        if (a.cmd === XENMEM_add_to_physmap) return hv.memory.addToPhysmap(d, a.arg);
        if (a.cmd === XENMEM_acquire_resource) return hv.ioreq.acquireResource(d, a.arg);
        return -ENOSYS;
      case __HYPERVISOR_sched_op:
        // SCHEDOP_yield (vcpu_yield): the scheduler decides again on the way back to the guest;
        // SCHEDOP_poll (do_poll) may block the vCPU in Xen until an event (sched-poll.ts).
        // (Blocking is the idle loop's HLT or SCHEDOP_block, which the pCPU does itself.)
        yield* this.simple(v);
        if (a.cmd === SCHEDOP_poll) return yield* hv.poll.poll(v, a.arg);
        if (a.cmd !== SCHEDOP_yield) return -ENOSYS;
        hv.sched.yield(v);
        return 0;
      case __HYPERVISOR_callback_op:
        // HVM guests have no callback_op (they use HVM_PARAM_CALLBACK_IRQ).
        if (d.isHvm) return -ENOSYS;
        yield* this.simple(v);
        if (a.cmd !== CALLBACKOP_register) return -ENOSYS;
        if (a.arg.type !== CALLBACKTYPE_event) return -EINVAL;
        d.pvEventCallback = a.arg.handler;
        return 0;
      case __HYPERVISOR_dm_op:
        yield* this.simple(v);
        return hv.ioreq.dmOp(d, a.arg, v.pcpu);
      default:
        return -ENOSYS;
    }
  }

  private *simple(v: Vcpu): Generator<SimEvent<unknown>, void, unknown> {
    yield v.exec(this.hv.costs.simpleOp, 'xen', PRIO_IRQ);
  }

  /** HVMOP_set_param: a guest may set only its callback; the privileged domain any parameter of any HVM guest. */
  private setParam(caller: Domain, a: XenHvmParam): number {
    const d = this.target(caller, a.domid);
    if (typeof d === 'number') return d;
    const index = a.index >>> 0;
    if (index >= HVM_NR_PARAMS) return -EINVAL;
    if (d === caller && !caller.privileged && index !== HVM_PARAM_CALLBACK_IRQ) return -EPERM;
    const value = BigInt.asUintN(64, a.value);
    if (index === HVM_PARAM_CALLBACK_IRQ) {
      const type = Number(value >> HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT);
      if (value === 0n) d.callbackVector = null;
      else if (type === HVM_PARAM_CALLBACK_TYPE_VECTOR) d.callbackVector = Number(value & 0xffn);
      else return -EOPNOTSUPP; // GSI and PCI INTx delivery need a virtual IOAPIC, not modelled
    }
    d.hvmParams.set(index, value);
    return 0;
  }

  private getParam(caller: Domain, a: XenHvmParam): number {
    const d = this.target(caller, a.domid);
    if (typeof d === 'number') return d;
    const index = a.index >>> 0;
    if (index >= HVM_NR_PARAMS) return -EINVAL;
    if (d === caller && !caller.privileged && !GUEST_READABLE.has(index)) return -EPERM;
    a.value = d.hvmParams.get(index) ?? 0n;
    return 0;
  }

  private target(caller: Domain, domid: number): Domain | number {
    const dom = domid & 0xffff;
    const d = dom === DOMID_SELF ? caller : this.hv.domain(dom);
    if (d === undefined) return -ESRCH;
    if (!d.isHvm) return -EINVAL;
    if (d !== caller && !caller.privileged) return -EPERM;
    return d;
  }
}
