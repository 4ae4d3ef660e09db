import { PRIO_IRQ, Resource, wait, type SimEvent } from '../sim/index.js';
import {
  BUF_IOREQ,
  BUF_IOREQ_ADDR_SHIFT,
  BUF_IOREQ_DIR_SHIFT,
  BUF_IOREQ_SIZE,
  BUF_IOREQ_SIZE_SHIFT,
  BUFFERED_IOPAGE,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  IOREQ,
  IOREQ_BUFFER_SLOT_NUM,
  IOREQ_DIR,
  IOREQ_READ,
  IOREQ_SIZE,
  IOREQ_STATE_MASK,
  IOREQ_TYPE_COPY,
  IOREQ_TYPE_PCI_CONFIG,
  IOREQ_TYPE_PIO,
  IOREQ_WRITE,
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
  XENMEM_resource_ioreq_server_frame_bufioreq,
  XENMEM_resource_ioreq_server_frame_ioreq,
} from './abi/index.js';
import { getU32, getU64, setU32, setU64 } from './bytes.js';
import type { ExitReason } from './counters.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import { TP_IOREQ, TP_VMEXIT } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

/** MAX_NR_IOREQ_SERVERS and MAX_NR_IO_RANGES (xen/include/xen/ioreq.h). */
const MAX_NR_IOREQ_SERVERS = 8;
const MAX_NR_IO_RANGES = 256;

/** The PCI configuration mechanism #1 ports (CONFIG_ADDRESS, CONFIG_DATA) and CF8's fields (hvm_select_ioreq_server). */
export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;
const CF8_ENABLED = 0x80000000;
const cf8Bdf = (cf8: number): number => (cf8 & 0x00ffff00) >>> 8;
const cf8AddrLo = (cf8: number): number => cf8 & 0x000000fc;
const cf8AddrHi = (cf8: number): number => (cf8 & 0x0f000000) >>> 16;

/** The standard VGA memory window Xen 4.5 buffers writes to (stdvga.c: VGA_MEM_BASE, VGA_MEM_SIZE). */
export const VGA_MEM_BASE = 0xa0000;
export const VGA_MEM_SIZE = 0x20000;

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
  /** The buffered ioreq page (struct buffered_iopage) and its port (bufioreq_evtchn, vCPU 0's), if the server handles them. */
  bufPage: Uint8Array | null = null;
  bufPort = 0;
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

  /** rangeset_contains_singleton of the PCI rangeset. */
  claimsPci(sbdf: number): boolean {
    return this.ranges.some((r) => r.type === XEN_DMOP_IO_RANGE_PCI && r.start <= sbdf && sbdf <= r.end);
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
 *
 * PCI config space (Xen 4.5's hvm_access_cf8 and hvm_select_ioreq_server): a 4-byte write to
 * CONFIG_ADDRESS (0xcf8) is latched per domain, then goes on like any port access; an access
 * to CONFIG_DATA (0xcfc-0xcff) while the latch has its enable bit is routed by the BDF it
 * names: to the server that claimed that SBDF (XEN_DMOP_IO_RANGE_PCI) as an
 * IOREQ_TYPE_PCI_CONFIG ioreq with addr = SBDF << 32 | register, or, with no such server, to
 * the default server (none here: the null handler, so an absent device reads all ones).
 *
 * Buffered ioreqs (hvm_buffered_io_send): a server created with handle_bufioreq has a second
 * page, a ring of IOREQ_BUFFER_SLOT_NUM slots with free-running read/write pointers, and a
 * port (bufioreq_port). Xen 4.5 puts on it only what needs no answer from the device model:
 * MMIO writes to the standard VGA window (stdvga_intercept_mmio, outside its caching mode)
 * below 1 MiB; the vCPU goes on at once after a notification on bufioreq_port. A full ring
 * (or a server without the page) sends the access the synchronous way.
 */
export class IoreqServers {
  private readonly servers = new Map<Domain, (IoreqServer | undefined)[]>();
  /** d->arch.hvm_domain.pci_cf8: each domain's last 4-byte CONFIG_ADDRESS write. */
  private readonly cf8 = new Map<Domain, number>();
  /**
   * One emulated access at a time per vCPU. A vCPU runs one instruction stream: an access that
   * exits holds the vCPU in Xen until it completes, and the guest's next access cannot begin
   * before. The model runs several guest contexts on one vCPU (a driver's softirq beside a
   * process closing the device), so a second access waits here for the first to be answered;
   * without this it would find its slot still in use and Xen would crash the domain for it.
   */
  private readonly inFlight = new WeakMap<Vcpu, Resource>();

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
        a.bufioreq_port = s.bufPort; // 0 without a buffered ioreq page
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
    const list = this.list(d);
    let id = 0;
    while (id < MAX_NR_IOREQ_SERVERS && list[id] !== undefined) id++;
    if (id === MAX_NR_IOREQ_SERVERS) return -ENOSPC;
    const s = new IoreqServer(id, d, dm);
    if (hb !== 0) {
      // LEGACY and ATOMIC differ only in how the device model moves read_pointer; Xen writes the same way.
      const port = this.hv.evtchn.allocXenPort(d, 0, dm.domid, () => {});
      if (port < 0) return port;
      s.bufPage = new Uint8Array(PAGE_SIZE);
      s.bufPort = port;
    }
    for (const v of d.vcpus) {
      const vid = v.id;
      const port = this.hv.evtchn.allocXenPort(d, vid, dm.domid, (_p, from) => this.response(s, vid, from));
      if (port < 0) {
        for (const p of s.ports) this.hv.evtchn.freeXenPort(d, p);
        if (s.bufPage !== null) this.hv.evtchn.freeXenPort(d, s.bufPort);
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
    if (!s.target.dying) {
      for (const p of s.ports) this.hv.evtchn.freeXenPort(s.target, p);
      if (s.bufPage !== null) this.hv.evtchn.freeXenPort(s.target, s.bufPort);
    }
  }

  /** Domain destruction: every server of the dying domain goes. */
  destroyAll(d: Domain): void {
    for (const s of this.servers.get(d) ?? []) if (s !== undefined) this.destroy(s);
    this.servers.delete(d);
    this.cf8.delete(d);
  }

  /** XENMEM_acquire_resource of an ioreq server's page, for the device model that owns it. */
  acquireResource(caller: Domain, a: XenMemAcquireResource): number {
    if (a.type !== XENMEM_resource_ioreq_server) return -EOPNOTSUPP;
    const d = this.hv.domain(a.domid & 0xffff);
    if (d === undefined) return -ESRCH;
    if (!caller.privileged) return -EPERM;
    const s = this.list(d)[a.id >>> 0];
    if (s === undefined || s.dm !== caller) return -ENOENT;
    // Frame 0 is the buffered page (only if the server has one), frame 1 the synchronous one.
    if (!Number.isSafeInteger(a.frame) || !Number.isSafeInteger(a.nr_frames) || a.nr_frames < 1) return -EINVAL;
    const frames: Uint8Array[] = [];
    for (let f = a.frame; f < a.frame + a.nr_frames; f++) {
      if (f === XENMEM_resource_ioreq_server_frame_bufioreq && s.bufPage !== null) frames.push(s.bufPage);
      else if (f === XENMEM_resource_ioreq_server_frame_ioreq(0)) frames.push(s.page);
      else return -EINVAL;
    }
    a.frames = frames;
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
    let lock = this.inFlight.get(v);
    if (lock === undefined) this.inFlight.set(v, (lock = new Resource(this.hv.env, 1)));
    const held = lock.request();
    try {
      if (!held.triggered) yield held;
      return yield* this.emulateOne(v, type, dir, addr, size, data, reason, decode);
    } finally {
      held.release();
    }
  }

  private *emulateOne(
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
    if (type === IOREQ_TYPE_PIO && addr >= PCI_CONFIG_ADDRESS && addr + size <= PCI_CONFIG_ADDRESS + 4 && dir === IOREQ_WRITE && size === 4) {
      // hvm_access_cf8: latched, then on to the device models ("fall through to the catch all emulator").
      this.cf8.set(d, Number(value));
    }
    const sel = this.select(d, type, addr, size);
    const s = sel.server;
    type = sel.type;
    addr = sel.addr;
    if (s !== undefined && s.bufPage !== null && this.bufferable(type, dir, addr, size) && this.bufferedSend(s, v, type, dir, addr, size, value)) {
      d.counters.ioreqsBuffered++;
      if (t.enabled(TP_IOREQ)) t.emit(TP_IOREQ, { domid: d.domid, vcpu: v.name, server: s.id, type, dir, addr, size, data: value });
      yield v.exec(c.evtchnSend + c.vmentry, 'xen', PRIO_IRQ);
      this.hv.intr.onGuestEntry(v);
      return 0n;
    }
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
      if (type === IOREQ_TYPE_PCI_CONFIG) d.counters.ioreqsPciConfig++;
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

  /**
   * hvm_select_ioreq_server: the server an access goes to, and the type and address the
   * ioreq carries (a CONFIG_DATA access to a claimed BDF becomes IOREQ_TYPE_PCI_CONFIG).
   */
  private select(d: Domain, type: number, addr: number, size: number): { server: IoreqServer | undefined; type: number; addr: number } {
    const list = (this.servers.get(d) ?? []).filter((x): x is IoreqServer => x !== undefined && x.enabled);
    const cf8 = this.cf8.get(d) ?? 0;
    if (type === IOREQ_TYPE_PIO && (addr & ~3) === PCI_CONFIG_DATA && (cf8 & CF8_ENABLED) !== 0) {
      // PCI config data cycle: segment 0, the latched BDF; the register from CF8 and the port's low bits.
      const sbdf = cf8Bdf(cf8);
      const server = list.find((x) => x.claimsPci(sbdf));
      if (server === undefined) return { server: undefined, type, addr }; // the default server: none in the model
      return { server, type: IOREQ_TYPE_PCI_CONFIG, addr: sbdf * 2 ** 32 + (cf8AddrHi(cf8) | cf8AddrLo(cf8) | (addr & 3)) };
    }
    return { server: list.find((x) => x.claims(type, addr, size)), type, addr };
  }

  /** hvm_buffered_io_intercept in Xen 4.5: only writes to the standard VGA window (stdvga_intercept_mmio). */
  private bufferable(type: number, dir: number, addr: number, size: number): boolean {
    return type === IOREQ_TYPE_COPY && dir === IOREQ_WRITE && addr >= VGA_MEM_BASE && addr + size <= VGA_MEM_BASE + VGA_MEM_SIZE;
  }

  /** hvm_buffered_io_send: into the ring and a notification on bufioreq_port; false sends it the synchronous way. */
  private bufferedSend(s: IoreqServer, v: Vcpu, type: number, dir: number, addr: number, size: number, data: bigint): boolean {
    const pg = s.bufPage!;
    // addr is a 20-bit field; data_is_ptr and count > 1 are never buffered (the model has neither).
    if (addr > 0xfffff) return false;
    const code = size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
    const qw = size === 8 ? 1 : 0;
    const rp = getU32(pg, BUFFERED_IOPAGE.read_pointer);
    const wp = getU32(pg, BUFFERED_IOPAGE.write_pointer);
    if ((wp - rp) >>> 0 >= IOREQ_BUFFER_SLOT_NUM - qw) {
      s.target.counters.ioreqsBufferFull++;
      return false; // "The queue is full: send the iopacket through the normal path."
    }
    const word =
      (type | ((dir === IOREQ_READ ? 1 : 0) << BUF_IOREQ_DIR_SHIFT) | (code << BUF_IOREQ_SIZE_SHIFT) | (addr << BUF_IOREQ_ADDR_SHIFT)) >>> 0;
    const put = (i: number, d32: number): void => {
      const off = BUFFERED_IOPAGE.buf_ioreq + (i % IOREQ_BUFFER_SLOT_NUM) * BUF_IOREQ_SIZE;
      setU32(pg, off + BUF_IOREQ.word, word);
      setU32(pg, off + BUF_IOREQ.data, d32);
    };
    put(wp, Number(data & 0xffffffffn));
    if (qw) put((wp + 1) >>> 0, Number((data >> 32n) & 0xffffffffn));
    setU32(pg, BUFFERED_IOPAGE.write_pointer, (wp + 1 + qw) >>> 0); // after the slots (wmb)
    this.hv.evtchn.notifyViaXenPort(s.target, s.bufPort, v.pcpu);
    return true;
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
