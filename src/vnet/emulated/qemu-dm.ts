import { Resource, SimEvent, type Env, type ProcessGenerator } from '../../sim/index.js';
import {
  __HYPERVISOR_dm_op,
  IOREQ_READ,
  IOREQ_TYPE_COPY,
  IOREQ_TYPE_PCI_CONFIG,
  IOREQ_TYPE_PIO,
  XEN_DMOP_IO_RANGE_MEMORY,
  XEN_DMOP_IO_RANGE_PCI,
  XEN_DMOP_IO_RANGE_PORT,
  XEN_DMOP_PCI_SBDF,
  XEN_DMOP_set_pci_intx_level,
} from '../../xen/abi/index.js';
import type { Vcpu } from '../../xen/index.js';
import { IoreqServerClient, pciDevfn, type Ioreq, type IoRangeSpec, type XenGuest } from '../../xen/guest/index.js';
import type { Hypervisor } from '../../xen/index.js';
import type { EmulatedCosts } from './costs.js';
import { E1000Device, type E1000Stats } from './e1000-device.js';
import { E1000_IO_SIZE, E1000PciConfig, type E1000Decode } from './e1000-pci.js';
import { E1000_MMIO_SIZE } from './e1000-regs.js';
import { MapCache } from './map-cache.js';
import type { TapDevice } from './tap.js';
import { TP_FRAME_STEP } from '../trace-points.js';

/** Where the emulated NIC sits: its slot on the guest's PCI bus 0 (function 0, INTA), and where hvmloader puts BAR 0 and BAR 1. */
export interface E1000Placement {
  bar: number;
  ioBar: number;
  pciDevice: number;
}

/** The PCI host bridge's ports qemu's I/O address space holds (i440FX: pci-conf-idx at 0xcf8, pci-conf-data at 0xcfc). */
const PCI_HOST_PORTS: IoRangeSpec = { type: XEN_DMOP_IO_RANGE_PORT, start: 0xcf8, end: 0xcff };

/** What qemu-dm counts for one NIC. */
export interface QemuDmStats {
  ioreqs: number;
  /** Of ioreqs: PCI config-space accesses (IOREQ_TYPE_PCI_CONFIG) and port accesses (IOREQ_TYPE_PIO). */
  configIoreqs: number;
  pioIoreqs: number;
  /** map/unmap_io_range calls as the guest moved a BAR or switched its decode. */
  rangeChanges: number;
  /** dm_op set_pci_intx_level calls, by level. */
  irqAsserts: number;
  irqDeasserts: number;
  framesToTap: number;
  framesFromTap: number;
  mapcacheMisses: number;
}

/**
 * A guest's device model (qemu-xen as qemu-dm) for one e1000, as a Dom0 process on one of
 * Dom0's vCPUs with all its work charged `qemu`: an ioreq server claiming the NIC's BAR, the
 * 82540EM (E1000Device) behind it, guest memory through the map cache, frames to and from the
 * tap, and the interrupt line driven through XEN_DMOP_set_pci_intx_level. qemu's main loop is
 * one thread under the big QEMU lock: an ioreq and a tap read never run at once.
 *
 * Each ioreq wakes qemu (emulated.qemu.wakeup) and is dispatched (emulated.qemu.mmioAccess);
 * what the access made the device do — descriptors, frames, bytes copied, buckets mapped — is
 * charged after it, before the ioreq is answered, as QEMU finishes start_xmit inside the TDT
 * write. Writes are answered synchronously too: Xen buffers ioreqs only for the standard VGA
 * range (hvm_buffered_io_intercept), never for a NIC's BAR, so the server has no buffered ring.
 *
 * PCI config space: the server claims the NIC's BDF (XEN_DMOP_IO_RANGE_PCI, as qemu's
 * xen_map_pcidev) and the host bridge's ports 0xcf8-0xcff (qemu's I/O address space holds
 * them, so a CONFIG_ADDRESS write reaches qemu after Xen latched it). Config reads and writes
 * go to E1000PciConfig; when a write changes where a BAR decodes (COMMAND's memory or I/O bit,
 * a BAR moved or being sized), qemu's memory listener follows with unmap/map_io_range, so the
 * BAR is claimed only while the guest has it enabled. INTx-disable holds the line low
 * (pci_irq_disabled); with bus mastering off the device takes no frames (e1000_can_receive).
 */
export class QemuDm {
  readonly device: E1000Device;
  readonly mapCache: MapCache;
  readonly stats: QemuDmStats = {
    ioreqs: 0,
    configIoreqs: 0,
    pioIoreqs: 0,
    rangeChanges: 0,
    irqAsserts: 0,
    irqDeasserts: 0,
    framesToTap: 0,
    framesFromTap: 0,
    mapcacheMisses: 0,
  };
  readonly pci = new E1000PciConfig();
  /** Where the BARs are claimed now. */
  private decoded: E1000Decode = { mem: null, io: null };
  /** The host bridge's own CONFIG_ADDRESS latch (pci_host_conf_write). */
  private cf8 = 0;
  private readonly client: IoreqServerClient;
  private readonly bql: Resource;
  private readonly env: Env;
  private readonly outFrames: Uint8Array[] = [];
  private wantLevel = false;
  private sentLevel = false;
  private last: E1000Stats;
  private readerWait: SimEvent<void> | null = null;
  /** Inside an ioreq or a tap read (holding the BQL): effects are carried out by its settle. */
  private inDevice = false;
  private timerPending = false;
  private running = false;

  constructor(
    private readonly hv: Hypervisor,
    private readonly dom0: XenGuest,
    /** The Dom0 vCPU qemu runs on. */
    private readonly v: Vcpu,
    private readonly targetDomid: number,
    targetVcpus: number,
    mac: Uint8Array,
    readonly place: E1000Placement,
    private readonly tap: TapDevice,
    private readonly costs: EmulatedCosts,
  ) {
    this.env = hv.env;
    this.bql = new Resource(hv.env, 1);
    const target = hv.domain(targetDomid);
    if (target === undefined) throw new Error(`qemu-dm: no domain ${targetDomid} (model bug)`);
    this.mapCache = new MapCache(hv, dom0.domain, target);
    this.device = new E1000Device(hv.env, mac, {
      dmaRead: (gpa, len) => this.mapCache.read(gpa, len),
      dmaWrite: (gpa, data) => this.mapCache.write(gpa, data),
      setIrq: (level) => {
        this.wantLevel = level;
        // Outside an access or a tap read, the change comes from the mit_timer: qemu's main
        // loop runs the timer and then drives the line.
        if (!this.inDevice && level !== this.sentLevel) this.timerJob();
      },
      transmit: (frame) => {
        this.outFrames.push(frame);
      },
      canReceive: () => this.kickReader(),
    });
    this.last = { ...this.device.stats };
    this.client = new IoreqServerClient(dom0, v, targetDomid, targetVcpus, (req, cv) => this.emulate(req, cv));
    tap.onReadable = () => this.kickReader();
  }

  /** The NIC's SBDF (segment 0, bus 0, function 0). */
  get sbdf(): number {
    return XEN_DMOP_PCI_SBDF(0, 0, this.place.pciDevice, 0);
  }

  /** Where BAR 0 is claimed now (null: not decoding). */
  get mmioBase(): number | null {
    return this.decoded.mem;
  }

  /**
   * Creates the ioreq server for the NIC's BDF and the config ports and starts the serving
   * and tap-reading loops; the BARs are claimed once the guest enables them. 0 or the dm_op error.
   */
  *start(): ProcessGenerator<number> {
    const rc = yield* this.client.start([{ type: XEN_DMOP_IO_RANGE_PCI, start: this.sbdf, end: this.sbdf }, PCI_HOST_PORTS]);
    if (rc < 0) return rc;
    this.running = true;
    this.env.process(this.client.serve(), `qemu-dm-${this.targetDomid}`);
    this.env.process(this.tapReader(), `qemu-dm-${this.targetDomid}:tap`);
    return 0;
  }

  /** qemu exits: the ioreq server is destroyed, the map cache dropped, the tap closed. */
  *stop(): ProcessGenerator<void> {
    this.running = false;
    this.kickReader();
    yield* this.client.stop();
    this.mapCache.invalidate();
    this.tap.close();
  }

  private *emulate(req: Ioreq, v: Vcpu): ProcessGenerator<bigint> {
    const c = this.costs;
    const lock = this.bql.request();
    yield lock;
    this.inDevice = true;
    try {
      this.stats.ioreqs++;
      if (req.type === IOREQ_TYPE_PCI_CONFIG || req.type === IOREQ_TYPE_PIO) return yield* this.emulatePort(req, v);
      yield v.exec(c.qemuWakeup + c.qemuMmioAccess, 'qemu');
      if (req.type !== IOREQ_TYPE_COPY) return ~0n;
      const base = this.decoded.mem;
      // A request for a range the BAR has just left (raced with the unmap): unassigned memory.
      if (base === null || req.addr < base || req.addr + req.size > base + E1000_MMIO_SIZE) return req.dir === IOREQ_READ ? ~0n : 0n;
      const off = req.addr - base;
      let value = 0n;
      if (req.dir === IOREQ_READ) value = BigInt(this.device.read(off, req.size));
      else this.device.write(off, req.size, Number(BigInt.asUintN(32, req.data)));
      yield* this.settle(v);
      return value;
    } finally {
      this.inDevice = false;
      lock.release();
    }
  }

  /** A config-space or port ioreq: cpu_ioreq_config / cpu_ioreq_pio (under the BQL, from emulate). */
  private *emulatePort(req: Ioreq, v: Vcpu): ProcessGenerator<bigint> {
    const c = this.costs;
    yield v.exec(c.qemuWakeup + c.qemuConfigAccess, 'qemu');
    const read = req.dir === IOREQ_READ;
    const ones = (1n << BigInt(req.size * 8)) - 1n;
    if (req.type === IOREQ_TYPE_PCI_CONFIG) {
      this.stats.configIoreqs++;
      // addr = SBDF << 32 | register; Xen routed it here because the SBDF is ours.
      const reg = req.addr % 2 ** 32;
      return yield* this.configAccess(v, read, reg, req.size, req.data);
    }
    this.stats.pioIoreqs++;
    const port = req.addr;
    if (port >= 0xcf8 && port + req.size <= 0xcfc) {
      // pci_host_conf_write/read: only a 4-byte access at 0xcf8 is CONFIG_ADDRESS.
      if (port === 0xcf8 && req.size === 4) {
        if (read) return BigInt(this.cf8 >>> 0);
        this.cf8 = Number(req.data & 0xffffffffn);
      }
      return read ? ones : 0n;
    }
    if (port >= 0xcfc && port + req.size <= 0xd00) {
      // pci_host_data_*: Xen sends CONFIG_DATA here only when its latch had no enable bit (or named no claimed BDF).
      const cf8 = this.cf8;
      const bdf = (cf8 >>> 8) & 0xffff;
      if ((cf8 & 0x80000000) === 0 || bdf !== pciDevfn(this.place.pciDevice, 0)) return read ? ones : 0n;
      return yield* this.configAccess(v, read, (cf8 & 0xfc) | (port & 3), req.size, req.data);
    }
    const io = this.decoded.io;
    if (io !== null && port >= io && port + req.size <= io + E1000_IO_SIZE) return 0n; // e1000_io_read/write: not implemented in QEMU
    return read ? ones : 0n;
  }

  /** One config access to the NIC; a write may move its BARs (the memory listener's map/unmap). */
  private *configAccess(v: Vcpu, read: boolean, reg: number, size: number, data: bigint): ProcessGenerator<bigint> {
    if (read) return BigInt(this.pci.read(reg, size));
    this.pci.write(reg, size, Number(data & 0xffffffffn));
    yield* this.followDecode();
    // The line follows INTx-disable at once (pci_update_irq_disabled); e1000_write_config flushes queued frames once bus mastering is on.
    yield* this.settle(v);
    if (this.pci.busMaster) this.kickReader();
    return 0n;
  }

  /** pci_update_mappings: claim where the BARs decode now, release where they no longer do. */
  private *followDecode(): ProcessGenerator<void> {
    const now = this.pci.decode();
    const was = this.decoded;
    const change = function* (self: QemuDm, type: number, from: number | null, to: number | null, size: number): ProcessGenerator<void> {
      if (from === to) return;
      if (from !== null) {
        self.stats.rangeChanges++;
        yield* self.client.setRange(false, { type, start: from, end: from + size - 1 });
      }
      if (to !== null) {
        self.stats.rangeChanges++;
        yield* self.client.setRange(true, { type, start: to, end: to + size - 1 });
      }
    };
    this.decoded = now;
    yield* change(this, XEN_DMOP_IO_RANGE_MEMORY, was.mem, now.mem, E1000_MMIO_SIZE);
    yield* change(this, XEN_DMOP_IO_RANGE_PORT, was.io, now.io, E1000_IO_SIZE);
  }

  /** The mit_timer fired in qemu's main loop: the line follows on qemu's vCPU. */
  private timerJob(): void {
    if (this.timerPending) return;
    this.timerPending = true;
    this.env.process(
      (function* (self: QemuDm): ProcessGenerator<void> {
        const lock = self.bql.request();
        yield lock;
        self.inDevice = true;
        try {
          self.timerPending = false;
          yield self.v.exec(self.costs.qemuWakeup, 'qemu');
          yield* self.settle(self.v);
        } finally {
          self.inDevice = false;
          lock.release();
        }
      })(this),
      `qemu-dm-${this.targetDomid}:timer`,
    );
  }

  /** Charges what the device just did and carries out its effects: frames to the tap, then the interrupt line. */
  private *settle(v: Vcpu): ProcessGenerator<void> {
    const c = this.costs;
    const s = this.device.stats;
    const l = this.last;
    const misses = this.mapCache.pendingMisses;
    this.mapCache.pendingMisses = 0;
    this.stats.mapcacheMisses += misses;
    const work =
      (s.txDescs - l.txDescs) * c.qemuTxDesc +
      (s.rxDescs - l.rxDescs) * c.qemuRxDesc +
      (s.txFrames - l.txFrames + s.rxFrames - l.rxFrames) * c.qemuFrame +
      Math.round((s.dmaBytes - l.dmaBytes) * c.qemuDmaCopy) +
      misses * c.qemuMapcacheMiss;
    this.last = { ...s };
    if (work > 0) yield v.exec(work, 'qemu');
    for (let f = this.outFrames.shift(); f !== undefined; f = this.outFrames.shift()) {
      yield v.exec(c.tapWrite + Math.round(f.length * c.qemuDmaCopy), 'qemu');
      this.stats.framesToTap++;
      const tr = this.env.trace;
      if (tr.enabled(TP_FRAME_STEP))
        tr.emit(TP_FRAME_STEP, {
          path: 'emulated',
          domid: this.dom0.domid,
          vcpu: v.name,
          step: 'qemu e1000 TX: out of the guest, to the tap',
          len: f.length,
          frame: f,
        });
      this.tap.write(f);
    }
    while ((this.wantLevel && !this.pci.intxDisabled) !== this.sentLevel) {
      const level = this.wantLevel && !this.pci.intxDisabled;
      yield v.exec(c.qemuIrqOp, 'qemu');
      const rc = yield* this.dom0.xen.hypercall(v, {
        nr: __HYPERVISOR_dm_op,
        cmd: XEN_DMOP_set_pci_intx_level,
        arg: {
          op: XEN_DMOP_set_pci_intx_level,
          domid: this.targetDomid,
          domain: 0,
          bus: 0,
          device: this.place.pciDevice,
          intx: 0,
          level: level ? 1 : 0,
        },
      });
      if (rc < 0) break; // the guest is gone
      this.sentLevel = level;
      if (level) this.stats.irqAsserts++;
      else this.stats.irqDeasserts++;
    }
  }

  private kickReader(): void {
    const w = this.readerWait;
    if (w !== null) {
      this.readerWait = null;
      w.succeed();
    }
  }

  /** qemu's tap handler: while the device can take a frame (e1000_can_receive), read one and hand it over. */
  private *tapReader(): ProcessGenerator<void> {
    const c = this.costs;
    for (;;) {
      if (!this.running) return;
      if (this.tap.pending === 0 || !this.device.canReceive() || !this.pci.busMaster) {
        const ev = new SimEvent<void>(this.env);
        this.readerWait = ev;
        yield ev;
        continue;
      }
      const lock = this.bql.request();
      yield lock;
      this.inDevice = true;
      try {
        yield this.v.exec(c.qemuWakeup, 'qemu');
        while (this.running && this.tap.pending > 0 && this.device.canReceive() && this.pci.busMaster) {
          const f = this.tap.read()!;
          yield this.v.exec(c.tapRead + Math.round(f.length * c.qemuDmaCopy), 'qemu');
          this.stats.framesFromTap++;
          const tr = this.env.trace;
          if (tr.enabled(TP_FRAME_STEP))
            tr.emit(TP_FRAME_STEP, {
              path: 'emulated',
              domid: this.dom0.domid,
              vcpu: this.v.name,
              step: 'qemu e1000 RX: from the tap into the guest',
              len: f.length,
              frame: f,
            });
          this.device.receive(f);
          yield* this.settle(this.v);
        }
      } finally {
        this.inDevice = false;
        lock.release();
      }
    }
  }
}
