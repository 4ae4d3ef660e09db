import { Store, type ProcessGenerator, type SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_dm_op,
  __HYPERVISOR_memory_op,
  IOREQ,
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
  XEN_DMOP_map_io_range_to_ioreq_server,
  XEN_DMOP_set_ioreq_server_state,
  XENMEM_acquire_resource,
  XENMEM_resource_ioreq_server,
  XENMEM_resource_ioreq_server_frame_ioreq,
} from '../abi/index.js';
import { getU32, getU64, setU64 } from '../bytes.js';
import type { DmOp, XenMemAcquireResource } from '../ioreq.js';
import type { Vcpu } from '../vcpu.js';
import type { XenGuest } from './xen-guest.js';

/** One emulated access, as the device model reads it from an ioreq slot. */
export interface Ioreq {
  type: number;
  /** IOREQ_READ or IOREQ_WRITE. */
  dir: number;
  addr: number;
  size: number;
  count: number;
  /** The value written (IOREQ_WRITE). */
  data: bigint;
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
 */
export class IoreqServerClient {
  id = -1;
  private page: Uint8Array | null = null;
  /** Dom0-local port bound to each guest vCPU's vp_eport. */
  private readonly localPorts: number[] = [];
  private readonly ready: Store<number>;
  private running = false;
  /** Requests served. */
  served = 0;

  constructor(
    private readonly dm: XenGuest,
    private readonly v: Vcpu,
    readonly targetDomid: number,
    private readonly targetVcpus: number,
    private readonly device: DeviceEmulation,
  ) {
    this.ready = new Store<number>(dm.xen.env);
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
      handle_bufioreq: 0,
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

  /** The serving loop; run it as a process: `env.process(client.serve())`. */
  *serve(): ProcessGenerator<void> {
    const v = this.v;
    for (;;) {
      const vid = (yield this.ready.get()) as number;
      if (!this.running) return;
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
    return yield* this.dm.xen.hypercall(this.v, {
      nr: __HYPERVISOR_dm_op,
      cmd: XEN_DMOP_destroy_ioreq_server,
      arg: { op: XEN_DMOP_destroy_ioreq_server, domid: this.targetDomid, id: this.id },
    });
  }
}
