import { Store, type ProcessGenerator, type SimEvent, type Timer } from '../../sim/index.js';
import {
  __HYPERVISOR_dm_op,
  __HYPERVISOR_memory_op,
  BUF_IOREQ,
  BUF_IOREQ_ADDR_SHIFT,
  BUF_IOREQ_DIR_SHIFT,
  BUF_IOREQ_SIZE,
  BUF_IOREQ_SIZE_SHIFT,
  BUFFERED_IOPAGE,
  IOREQ,
  IOREQ_BUFFER_SLOT_NUM,
  IOREQ_DIR,
  IOREQ_READ,
  IOREQ_SIZE,
  IOREQ_STATE_MASK,
  IOREQ_WRITE,
  STATE_IOREQ_INPROCESS,
  STATE_IOREQ_READY,
  STATE_IORESP_READY,
  XEN_DMOP_create_ioreq_server,
  XEN_DMOP_destroy_ioreq_server,
  XEN_DMOP_get_ioreq_server_info,
  XEN_DMOP_map_io_range_to_ioreq_server,
  XEN_DMOP_unmap_io_range_from_ioreq_server,
  XEN_DMOP_set_ioreq_server_state,
  XENMEM_acquire_resource,
  XENMEM_resource_ioreq_server,
  XENMEM_resource_ioreq_server_frame_bufioreq,
  XENMEM_resource_ioreq_server_frame_ioreq,
} from '../abi/index.js';
import { getU32, getU64, setU32, setU64 } from '../bytes.js';
import type { DmOp, XenMemAcquireResource } from '../ioreq.js';
import type { Vcpu } from '../vcpu.js';
import type { XenGuest } from './xen-guest.js';

/** BUFFER_IO_MAX_DELAY (qemu's xen-hvm.c): how long after a bufioreq notification qemu drains the ring, in ms. */
export const BUFFER_IO_MAX_DELAY_MS = 100;

/** One emulated access, as the device model reads it from an ioreq slot (or a buffered slot: `buffered`). */
export interface Ioreq {
  type: number;
  /** IOREQ_READ or IOREQ_WRITE. */
  dir: number;
  addr: number;
  size: number;
  count: number;
  /** The value written (IOREQ_WRITE). */
  data: bigint;
  /** Taken from the buffered ioreq ring: nobody waits for it. */
  buffered?: boolean;
}

/**
 * The device: emulates one access on the device model's vCPU (charging its own 'qemu' work)
 * and returns the value read (ignored for writes).
 */
export type DeviceEmulation = (req: Ioreq, v: Vcpu) => ProcessGenerator<bigint>;

/** An I/O range to claim (XEN_DMOP_IO_RANGE_*, inclusive). */
export interface IoRangeSpec {
  type: number;
  start: number;
  end: number;
}

/**
 * A device model's side of an ioreq server, as qemu-xen with libxendevicemodel and
 * /dev/xen/evtchn: creates the server for a guest, maps its ioreq page, binds the per-vCPU
 * ports (vp_eport, read from the page), claims I/O ranges and enables it; then a process
 * on the device model's vCPU serves requests: on an event (the port is masked by the evtchn
 * device until served), for the slot in IOREQ_READY: INPROCESS, emulate, result, IORESP_READY,
 * notify, unmask.
 *
 * With `handleBufioreq` the server also has the buffered ring (qemu's xen-hvm.c): its port
 * stays masked after a notification and arms a BUFFER_IO_MAX_DELAY timer; when it fires the
 * ring is drained (handle_buffered_iopage), and re-armed while it found work, else the port is
 * unmasked. The ring is drained too before each synchronous ioreq, so the guest's writes
 * reach the device in the order it made them.
 */
export class IoreqServerClient {
  id = -1;
  private page: Uint8Array | null = null;
  /** Dom0-local port bound to each guest vCPU's vp_eport. */
  private readonly localPorts: number[] = [];
  private readonly ready: Store<number>;
  private running = false;
  /** Requests served, and of them taken from the buffered ring. */
  served = 0;
  servedBuffered = 0;
  private bufPage: Uint8Array | null = null;
  private bufLocalPort = -1;
  private bufTimer: Timer | null = null;

  constructor(
    private readonly dm: XenGuest,
    private readonly v: Vcpu,
    readonly targetDomid: number,
    private readonly targetVcpus: number,
    private readonly device: DeviceEmulation,
    /** HVM_IOREQSRV_BUFIOREQ_* of the server to create (0: no buffered ring). */
    private readonly handleBufioreq = 0,
  ) {
    this.ready = new Store<number>(dm.xen.env);
  }

  /** The buffered ioreq page as the device model has it mapped (after start, with handleBufioreq). */
  get bufioreqPage(): Uint8Array | null {
    return this.bufPage;
  }

  /** The server's ioreq page as the device model has it mapped (after start). */
  get ioreqPage(): Uint8Array | null {
    return this.page;
  }

  /** Sets the server up and starts serving; 0 or the first error. */
  *start(ranges: readonly IoRangeSpec[]): Generator<SimEvent<unknown>, number, unknown> {
    const v = this.v;
    const xen = this.dm.xen;
    const create: DmOp & { op: typeof XEN_DMOP_create_ioreq_server } = {
      op: XEN_DMOP_create_ioreq_server,
      domid: this.targetDomid,
      handle_bufioreq: this.handleBufioreq,
    };
    let rc = yield* xen.hypercall(v, { nr: __HYPERVISOR_dm_op, cmd: XEN_DMOP_create_ioreq_server, arg: create });
    if (rc < 0) return rc;
    this.id = create.id!;
    const res: XenMemAcquireResource = {
      domid: this.targetDomid,
      type: XENMEM_resource_ioreq_server,
      id: this.id,
      frame: XENMEM_resource_ioreq_server_frame_ioreq(0),
      nr_frames: 1,
    };
    rc = yield* xen.hypercall(v, { nr: __HYPERVISOR_memory_op, cmd: XENMEM_acquire_resource, arg: res });
    if (rc < 0) return rc;
    const page = res.frames![0]!;
    this.page = page;
    if (this.handleBufioreq !== 0) {
      rc = yield* this.setupBuffered();
      if (rc < 0) return rc;
    }
    for (let vid = 0; vid < this.targetVcpus; vid++) {
      const vpEport = getU32(page, vid * IOREQ_SIZE + IOREQ.vp_eport);
      const handler = (port: number): void => {
        // /dev/xen/evtchn: the port stays masked until the reader has dealt with it.
        this.dm.evtchn.mask(port);
        this.ready.put(vid);
      };
      const local = yield* this.dm.evtchn.bindInterdomain(v, this.targetDomid, vpEport, handler);
      if (local < 0) return local;
      this.localPorts[vid] = local;
    }
    for (const r of ranges) {
      rc = yield* xen.hypercall(v, {
        nr: __HYPERVISOR_dm_op,
        cmd: XEN_DMOP_map_io_range_to_ioreq_server,
        arg: { op: XEN_DMOP_map_io_range_to_ioreq_server, domid: this.targetDomid, id: this.id, type: r.type, start: r.start, end: r.end },
      });
      if (rc < 0) return rc;
    }
    rc = yield* xen.hypercall(v, {
      nr: __HYPERVISOR_dm_op,
      cmd: XEN_DMOP_set_ioreq_server_state,
      arg: { op: XEN_DMOP_set_ioreq_server_state, domid: this.targetDomid, id: this.id, enabled: 1 },
    });
    if (rc < 0) return rc;
    this.running = true;
    return 0;
  }

  /** get_ioreq_server_info's bufioreq_port, the buffered page (frame 0), the port bound. */
  private *setupBuffered(): Generator<SimEvent<unknown>, number, unknown> {
    const v = this.v;
    const xen = this.dm.xen;
    const info: DmOp & { op: typeof XEN_DMOP_get_ioreq_server_info } = { op: XEN_DMOP_get_ioreq_server_info, domid: this.targetDomid, id: this.id };
    let rc = yield* xen.hypercall(v, { nr: __HYPERVISOR_dm_op, cmd: XEN_DMOP_get_ioreq_server_info, arg: info });
    if (rc < 0) return rc;
    const res: XenMemAcquireResource = {
      domid: this.targetDomid,
      type: XENMEM_resource_ioreq_server,
      id: this.id,
      frame: XENMEM_resource_ioreq_server_frame_bufioreq,
      nr_frames: 1,
    };
    rc = yield* xen.hypercall(v, { nr: __HYPERVISOR_memory_op, cmd: XENMEM_acquire_resource, arg: res });
    if (rc < 0) return rc;
    this.bufPage = res.frames![0]!;
    const env = this.dm.xen.env;
    const local = yield* this.dm.evtchn.bindInterdomain(v, this.targetDomid, info.bufioreq_port ?? 0, (port) => {
      this.dm.evtchn.mask(port);
      if (this.bufTimer === null) this.bufTimer = env.timer(() => this.ready.put(-1));
      if (!this.bufTimer.armed) this.bufTimer.setIn(BUFFER_IO_MAX_DELAY_MS * 1_000_000);
    });
    if (local < 0) return local;
    this.bufLocalPort = local;
    return 0;
  }

  /** handle_buffered_iopage: every slot between read_pointer and write_pointer, in order; returns how many. */
  private *drainBuffered(): ProcessGenerator<number> {
    const pg = this.bufPage;
    if (pg === null) return 0;
    let n = 0;
    for (;;) {
      const rp = getU32(pg, BUFFERED_IOPAGE.read_pointer);
      const wp = getU32(pg, BUFFERED_IOPAGE.write_pointer);
      if (rp === wp) return n;
      const slot = (i: number): number => BUFFERED_IOPAGE.buf_ioreq + (i % IOREQ_BUFFER_SLOT_NUM) * BUF_IOREQ_SIZE;
      const word = getU32(pg, slot(rp) + BUF_IOREQ.word);
      const code = (word >>> BUF_IOREQ_SIZE_SHIFT) & 3;
      let data = BigInt(getU32(pg, slot(rp) + BUF_IOREQ.data));
      const qw = code === 3 ? 1 : 0;
      if (qw) data |= BigInt(getU32(pg, slot((rp + 1) >>> 0) + BUF_IOREQ.data)) << 32n;
      const req: Ioreq = {
        type: word & 0xff,
        dir: ((word >>> BUF_IOREQ_DIR_SHIFT) & 1) !== 0 ? IOREQ_READ : IOREQ_WRITE,
        addr: word >>> BUF_IOREQ_ADDR_SHIFT,
        size: 1 << code,
        count: 1,
        data,
        buffered: true,
      };
      setU32(pg, BUFFERED_IOPAGE.read_pointer, (rp + 1 + qw) >>> 0);
      yield* this.device(req, this.v);
      this.served++;
      this.servedBuffered++;
      n++;
    }
  }

  /**
   * Claims or releases one I/O range of the running server (qemu's memory listener follows
   * a BAR that moves or a decode bit the guest turns off); 0 or the dm_op error.
   */
  *setRange(map: boolean, r: IoRangeSpec): Generator<SimEvent<unknown>, number, unknown> {
    const op = map ? XEN_DMOP_map_io_range_to_ioreq_server : XEN_DMOP_unmap_io_range_from_ioreq_server;
    return yield* this.dm.xen.hypercall(this.v, {
      nr: __HYPERVISOR_dm_op,
      cmd: op,
      arg: { op, domid: this.targetDomid, id: this.id, type: r.type, start: r.start, end: r.end },
    });
  }

  /** The serving loop; run it as a process: `env.process(client.serve())`. */
  *serve(): ProcessGenerator<void> {
    const v = this.v;
    for (;;) {
      const vid = (yield this.ready.get()) as number;
      if (!this.running) return;
      if (vid < 0) {
        // The buffered-io timer: drain; again in BUFFER_IO_MAX_DELAY while there was work, else unmask.
        const n = yield* this.drainBuffered();
        if (n > 0) this.bufTimer?.setIn(BUFFER_IO_MAX_DELAY_MS * 1_000_000);
        else yield* this.dm.evtchn.unmask(v, this.bufLocalPort);
        continue;
      }
      yield* this.drainBuffered();
      const page = this.page!;
      const slot = vid * IOREQ_SIZE;
      if ((page[slot + IOREQ.flags]! & IOREQ_STATE_MASK) === STATE_IOREQ_READY) {
        const flags = page[slot + IOREQ.flags]!;
        const req: Ioreq = {
          type: page[slot + IOREQ.type]!,
          dir: (flags & IOREQ_DIR) !== 0 ? IOREQ_READ : IOREQ_WRITE,
          addr: Number(getU64(page, slot + IOREQ.addr)),
          size: getU32(page, slot + IOREQ.size),
          count: getU32(page, slot + IOREQ.count),
          data: getU64(page, slot + IOREQ.data),
        };
        page[slot + IOREQ.flags] = (flags & ~IOREQ_STATE_MASK) | STATE_IOREQ_INPROCESS;
        const value = yield* this.device(req, v);
        if (req.dir === IOREQ_READ) setU64(page, slot + IOREQ.data, value);
        page[slot + IOREQ.flags] = (page[slot + IOREQ.flags]! & ~IOREQ_STATE_MASK) | STATE_IORESP_READY;
        this.served++;
        yield* this.dm.evtchn.notify(v, this.localPorts[vid]!);
      }
      yield* this.dm.evtchn.unmask(v, this.localPorts[vid]!);
    }
  }

  /** Destroys the server (XEN_DMOP_destroy_ioreq_server); the serving loop ends at its next wake-up. */
  *stop(): Generator<SimEvent<unknown>, number, unknown> {
    this.running = false;
    this.bufTimer?.cancel();
    return yield* this.dm.xen.hypercall(this.v, {
      nr: __HYPERVISOR_dm_op,
      cmd: XEN_DMOP_destroy_ioreq_server,
      arg: { op: XEN_DMOP_destroy_ioreq_server, domid: this.targetDomid, id: this.id },
    });
  }
}
