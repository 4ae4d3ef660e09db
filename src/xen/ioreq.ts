import { PRIO_IRQ, wait, type SimEvent } from '../sim/index.js';
import {
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  IOREQ,
  IOREQ_DIR,
  IOREQ_READ,
  IOREQ_SIZE,
  IOREQ_STATE_MASK,
  IOREQ_TYPE_COPY,
  IOREQ_TYPE_PIO,
  PAGE_SIZE,
  STATE_IOREQ_INPROCESS,
  STATE_IOREQ_NONE,
  STATE_IOREQ_READY,
  STATE_IORESP_READY,
  XEN_DMOP_create_ioreq_server,
  XEN_DMOP_destroy_ioreq_server,
  XEN_DMOP_get_ioreq_server_info,
  XEN_DMOP_inject_msi,
  XEN_DMOP_set_isa_irq_level,
  XEN_DMOP_set_pci_intx_level,
  XEN_DMOP_set_pci_link_route,
  XEN_DMOP_IO_RANGE_MEMORY,
  XEN_DMOP_IO_RANGE_PCI,
  XEN_DMOP_IO_RANGE_PORT,
  XEN_DMOP_map_io_range_to_ioreq_server,
  XEN_DMOP_set_ioreq_server_state,
  XEN_DMOP_unmap_io_range_from_ioreq_server,
  XENMEM_resource_ioreq_server,
  XENMEM_resource_ioreq_server_frame_ioreq,
} from './abi/index.js';
import { getU64, setU32, setU64 } from './bytes.js';
import type { ExitReason } from './counters.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import { TP_IOREQ, TP_VMEXIT } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

/** MAX_NR_IOREQ_SERVERS and MAX_NR_IO_RANGES (xen/include/xen/ioreq.h). */
const MAX_NR_IOREQ_SERVERS = 8;
const MAX_NR_IO_RANGES = 256;

/** dm_op arguments (struct xen_dm_op and its union members), `domid` being the target. */
export type DmOp =
  | { op: typeof XEN_DMOP_create_ioreq_server; domid: number; handle_bufioreq: number; id?: number }
  | { op: typeof XEN_DMOP_get_ioreq_server_info; domid: number; id: number; bufioreq_port?: number }
  | {
      op: typeof XEN_DMOP_map_io_range_to_ioreq_server | typeof XEN_DMOP_unmap_io_range_from_ioreq_server;
      domid: number;
      id: number;
      type: number;
      start: number;
      end: number;
    }
  | { op: typeof XEN_DMOP_set_ioreq_server_state; domid: number; id: number; enabled: number }
  | { op: typeof XEN_DMOP_destroy_ioreq_server; domid: number; id: number }
  | { op: typeof XEN_DMOP_set_pci_intx_level; domid: number; domain: number; bus: number; device: number; intx: number; level: number }
  | { op: typeof XEN_DMOP_set_isa_irq_level; domid: number; isa_irq: number; level: number }
  | { op: typeof XEN_DMOP_set_pci_link_route; domid: number; link: number; isa_irq: number }
  | { op: typeof XEN_DMOP_inject_msi; domid: number; addr: bigint; data: number; pad?: number };

/** struct xen_mem_acquire_resource; the model hands the mapped pages back in `frames`. */
export interface XenMemAcquireResource {
  domid: number;
  type: number;
  id: number;
  frame: number;
  nr_frames: number;
  frames?: Uint8Array[];
}

interface IoRange {
  type: number;
  start: number;
  end: number;
}

/** A vCPU blocked in Xen on its ioreq (struct ioreq_vcpu with pending set). */
interface Waiter {
  prevState: number;
  done: (value: bigint, completion: SimEvent<void>) => void;
}

/** struct ioreq_server: a device model's claim on I/O ranges of one HVM guest. */
class IoreqServer {
  /** The synchronous ioreq page: one ioreq_t per vCPU, shared with the device model. */
  readonly page = new Uint8Array(PAGE_SIZE);
  readonly ranges: IoRange[] = [];
  enabled = false;
  /** Per vCPU: the guest's Xen-attached port the device model binds (vp_eport). */
  readonly ports: number[] = [];
  readonly waiting: (Waiter | null)[];

  constructor(
    readonly id: number,
    readonly target: Domain,
    readonly dm: Domain,
  ) {
    this.waiting = target.vcpus.map(() => null);
  }

  claims(type: number, addr: number, size: number): boolean {
    const rtype = type === IOREQ_TYPE_PIO ? XEN_DMOP_IO_RANGE_PORT : XEN_DMOP_IO_RANGE_MEMORY;
    const end = addr + size - 1;
    return this.ranges.some((r) => r.type === rtype && r.start <= addr && end <= r.end);
  }
}

function state(page: Uint8Array, slot: number): number {
  return page[slot + IOREQ.flags]! & IOREQ_STATE_MASK;
}

function setState(page: Uint8Array, slot: number, s: number): void {
  page[slot + IOREQ.flags] = (page[slot + IOREQ.flags]! & ~IOREQ_STATE_MASK) | s;
}

/** All-ones of an access size, what a read of nothing returns. */
function ones(size: number): bigint {
  return (1n << BigInt(size * 8)) - 1n;
}

/**
 * Xen's ioreq machinery (xen/common/ioreq.c, shared/reference/xen-abi.md §7): device models
 * in a privileged domain register servers for I/O ranges of an HVM guest (dm_op) and map the
 * server's ioreq page (acquire_resource); a guest access to a claimed range exits, Xen fills
 * the vCPU's slot (NONE → READY), notifies the device model over the slot's event channel
 * and blocks the vCPU; the device model marks it INPROCESS, emulates, writes the result and
 * IORESP_READY and notifies back; Xen takes the result (→ NONE), wakes the vCPU and completes
 * the instruction. An access no server claims goes to the null handler (reads all ones,
 * writes dropped).
 */
export class IoreqServers {
  private readonly servers = new Map<Domain, (IoreqServer | undefined)[]>();

  constructor(private readonly hv: Hypervisor) {}

  // ---- dm_op --------------------------------------------------------------------------------

  dmOp(caller: Domain, a: DmOp, from: Pcpu | null = null): number {
    // rcu_lock_remote_domain_by_id, is_hvm_domain, XSM_DM_PRIV.
    const d = this.hv.domain(a.domid & 0xffff);
    if (d === undefined) return -ESRCH;
    if (d === caller) return -EPERM;
    if (!d.isHvm) return -EINVAL;
    if (!caller.privileged) return -EPERM;
    const list = this.list(d);
    switch (a.op) {
      case XEN_DMOP_create_ioreq_server:
        return this.create(caller, d, a);
      case XEN_DMOP_set_pci_intx_level:
        return this.hv.irq.setPciIntxLevel(d, a, from);
      case XEN_DMOP_set_isa_irq_level:
        return this.hv.irq.setIsaIrqLevel(d, a, from);
      case XEN_DMOP_set_pci_link_route:
        return this.hv.irq.setPciLinkRoute(d, a);
      case XEN_DMOP_inject_msi:
        return this.hv.irq.injectMsi(d, a, from);
      default:
        break;
    }
    const s = list[a.id >>> 0];
    if (s === undefined || s.dm !== caller) return -ENOENT;
    switch (a.op) {
      case XEN_DMOP_get_ioreq_server_info:
        a.bufioreq_port = 0; // no buffered ioreq page in the model
        return 0;
      case XEN_DMOP_map_io_range_to_ioreq_server:
      case XEN_DMOP_unmap_io_range_from_ioreq_server:
        return this.range(s, a);
      case XEN_DMOP_set_ioreq_server_state:
        s.enabled = (a.enabled & 0xff) !== 0;
        return 0;
      case XEN_DMOP_destroy_ioreq_server:
        this.destroy(s);
        return 0;
      default:
        return -EOPNOTSUPP;
    }
  }

  private list(d: Domain): (IoreqServer | undefined)[] {
    let l = this.servers.get(d);
    if (l === undefined) {
      l = [];
      this.servers.set(d, l);
    }
    return l;
  }

  private create(dm: Domain, d: Domain, a: { handle_bufioreq: number; id?: number }): number {
    const hb = a.handle_bufioreq & 0xff;
    if (hb > 2) return -EINVAL;
    if (hb !== 0) return -EOPNOTSUPP; // buffered ioreqs (standard VGA only on x86) are not modelled
    const list = this.list(d);
    let id = 0;
    while (id < MAX_NR_IOREQ_SERVERS && list[id] !== undefined) id++;
    if (id === MAX_NR_IOREQ_SERVERS) return -ENOSPC;
    const s = new IoreqServer(id, d, dm);
    for (const v of d.vcpus) {
      const vid = v.id;
      const port = this.hv.evtchn.allocXenPort(d, vid, dm.domid, (_p, from) => this.response(s, vid, from));
      if (port < 0) {
        for (const p of s.ports) this.hv.evtchn.freeXenPort(d, p);
        return port;
      }
      s.ports.push(port);
      setU32(s.page, vid * IOREQ_SIZE + IOREQ.vp_eport, port);
    }
    list[id] = s;
    a.id = id;
    return 0;
  }

  private range(s: IoreqServer, a: { op: number; type: number; start: number; end: number }): number {
    const type = a.type >>> 0;
    if (type !== XEN_DMOP_IO_RANGE_PORT && type !== XEN_DMOP_IO_RANGE_MEMORY && type !== XEN_DMOP_IO_RANGE_PCI) return -EINVAL;
    const { start, end } = a;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end) return -EINVAL;
    const same = s.ranges.filter((r) => r.type === type);
    if (a.op === XEN_DMOP_map_io_range_to_ioreq_server) {
      if (same.some((r) => r.start <= end && start <= r.end)) return -EEXIST;
      if (same.length >= MAX_NR_IO_RANGES) return -ENOSPC;
      s.ranges.push({ type, start, end });
      return 0;
    }
    const i = s.ranges.findIndex((r) => r.type === type && r.start === start && r.end === end);
    if (i < 0) return -ENOENT;
    s.ranges.splice(i, 1);
    return 0;
  }

  private destroy(s: IoreqServer): void {
    const list = this.list(s.target);
    list[s.id] = undefined;
    s.enabled = false;
    // A vCPU waiting on this server completes as if the emulator died (the NONE case of hvm_wait_for_io).
    s.waiting.forEach((w, vid) => {
      if (w !== null) this.complete(s, vid, ~0n, null);
    });
    if (!s.target.dying) for (const p of s.ports) this.hv.evtchn.freeXenPort(s.target, p);
  }

  /** Domain destruction: every server of the dying domain goes. */
  destroyAll(d: Domain): void {
    for (const s of this.servers.get(d) ?? []) if (s !== undefined) this.destroy(s);
    this.servers.delete(d);
  }

  /** XENMEM_acquire_resource of an ioreq server's page, for the device model that owns it. */
  acquireResource(caller: Domain, a: XenMemAcquireResource): number {
    if (a.type !== XENMEM_resource_ioreq_server) return -EOPNOTSUPP;
    const d = this.hv.domain(a.domid & 0xffff);
    if (d === undefined) return -ESRCH;
    if (!caller.privileged) return -EPERM;
    const s = this.list(d)[a.id >>> 0];
    if (s === undefined || s.dm !== caller) return -ENOENT;
    if (a.frame !== XENMEM_resource_ioreq_server_frame_ioreq(0) || a.nr_frames !== 1) return -EINVAL;
    a.frames = [s.page];
    return 0;
  }

  // ---- exits --------------------------------------------------------------------------------

  /** An HVM guest's MMIO access to guest-physical `gpa` (not RAM): EPT-violation exit, emulation. */
  *mmio(v: Vcpu, dir: number, gpa: number, size: number, data: bigint): Generator<SimEvent<unknown>, bigint, unknown> {
    return yield* this.emulate(v, IOREQ_TYPE_COPY, dir, gpa, size, data, 'ept', this.hv.costs.mmioDecode);
  }

  /** An HVM guest's IN/OUT on I/O port `port`: I/O-instruction exit, emulation. */
  *pio(v: Vcpu, dir: number, port: number, size: number, data: bigint): Generator<SimEvent<unknown>, bigint, unknown> {
    return yield* this.emulate(v, IOREQ_TYPE_PIO, dir, port, size, data, 'io', this.hv.costs.pioDecode);
  }

  private *emulate(
    v: Vcpu,
    type: number,
    dir: number,
    addr: number,
    size: number,
    data: bigint,
    reason: ExitReason & ('ept' | 'io'),
    decode: number,
  ): Generator<SimEvent<unknown>, bigint, unknown> {
    const d = v.domain;
    if (!d.isHvm) throw new Error(`${v.name}: emulated I/O exits are for HVM guests (model bug)`);
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8) throw new Error(`${v.name}: access size ${size} is not 1, 2, 4 or 8 (model bug)`);
    const c = this.hv.costs;
    d.counters.exits[reason]++;
    const t = this.hv.env.trace;
    if (t.enabled(TP_VMEXIT)) t.emit(TP_VMEXIT, { domid: d.domid, vcpu: v.name, reason });
    yield v.exec(c.exit[reason] + decode, 'xen', PRIO_IRQ);
    const value = dir === IOREQ_READ ? 0n : BigInt.asUintN(size * 8, data);
    if (type === IOREQ_TYPE_COPY && this.hv.irq.claims(addr, size)) {
      // hvm_io_intercept: the IOAPIC is emulated inside Xen, no ioreq leaves the hypervisor.
      d.counters.ioInternal++;
      const r = dir === IOREQ_READ ? this.hv.irq.read(d, addr) : (this.hv.irq.write(d, addr, value, v.pcpu), 0n);
      yield v.exec(c.vmentry, 'xen', PRIO_IRQ);
      this.hv.intr.onGuestEntry(v);
      return BigInt.asUintN(size * 8, r);
    }
    const s = (this.servers.get(d) ?? []).find((x) => x !== undefined && x.enabled && x.claims(type, addr, size));
    if (t.enabled(TP_IOREQ)) t.emit(TP_IOREQ, { domid: d.domid, vcpu: v.name, server: s?.id ?? null, type, dir, addr, size, data: value });
    let result: bigint;
    if (s === undefined) {
      // No device model claims it: Xen's null handler completes it in place (reads all ones).
      d.counters.ioUnclaimed++;
      result = dir === IOREQ_READ ? ones(size) : 0n;
      yield v.exec(c.vmentry, 'xen', PRIO_IRQ);
    } else {
      const slot = v.id * IOREQ_SIZE;
      const p = s.page;
      if (state(p, slot) !== STATE_IOREQ_NONE) {
        // "device model set bad IO state": the device model wrote the slot behind Xen's back.
        this.hv.crashDomain(d, `ioreq slot of ${v.name} in state ${state(p, slot)} when sending`);
        return ones(size);
      }
      setU64(p, slot + IOREQ.addr, BigInt(addr));
      setU64(p, slot + IOREQ.data, value);
      setU32(p, slot + IOREQ.count, 1);
      setU32(p, slot + IOREQ.size, size);
      p[slot + IOREQ.type] = type;
      p[slot + IOREQ.flags] = dir === IOREQ_READ ? IOREQ_DIR : 0; // data_is_ptr 0, df 0, state NONE
      setState(p, slot, STATE_IOREQ_READY); // published last
      d.counters.ioreqs++;
      yield v.exec(c.evtchnSend, 'xen', PRIO_IRQ);
      // Blocked in Xen until the device model answers: nothing else runs on the vCPU meanwhile.
      const answered = this.hv.env.event<{ value: bigint; completion: SimEvent<void> }>();
      s.waiting[v.id] = { prevState: STATE_IOREQ_READY, done: (val, completion) => answered.succeed({ value: val, completion }) };
      this.hv.sched.pause(v);
      this.hv.evtchn.notifyViaXenPort(d, s.ports[v.id]!, v.pcpu);
      const r = yield* wait(answered);
      result = r.value;
      yield r.completion;
    }
    this.hv.intr.onGuestEntry(v);
    return dir === IOREQ_READ ? BigInt.asUintN(size * 8, result) : 0n;
  }

  /** The device model notified vCPU `vid`'s port (hvm_wait_for_io's state machine). */
  private response(s: IoreqServer, vid: number, from: Pcpu | null): void {
    const w = s.waiting[vid];
    if (w === undefined || w === null) return; // nothing outstanding: a spurious notification
    const slot = vid * IOREQ_SIZE;
    const st = state(s.page, slot);
    if (st === STATE_IOREQ_NONE) {
      this.complete(s, vid, ~0n, from); // "an emulator is dying and it races with an I/O"
      return;
    }
    if (st < w.prevState || st > STATE_IORESP_READY) {
      this.hv.crashDomain(s.target, `weird ioreq state transition ${w.prevState} -> ${st} on vCPU ${vid}`);
      return;
    }
    if (st === STATE_IOREQ_READY || st === STATE_IOREQ_INPROCESS) {
      w.prevState = st;
      return;
    }
    setState(s.page, slot, STATE_IOREQ_NONE);
    this.complete(s, vid, getU64(s.page, slot + IOREQ.data), from);
  }

  /** hvm_io_assist: the vCPU leaves its wait and completes the instruction (woken through the scheduler). */
  private complete(s: IoreqServer, vid: number, value: bigint, from: Pcpu | null): void {
    const w = s.waiting[vid]!;
    s.waiting[vid] = null;
    const v = s.target.vcpus[vid]!;
    const completion = v.exec(this.hv.costs.ioreqComplete + this.hv.costs.vmentry, 'xen', PRIO_IRQ);
    this.hv.sched.unpause(v, from);
    w.done(value, completion);
  }
}
