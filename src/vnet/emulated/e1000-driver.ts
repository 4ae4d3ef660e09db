import { Deque, Resource, type Env, type ProcessGenerator, type Timer } from '../../sim/index.js';
import {
  CSUM_NONE,
  CSUM_PARTIAL,
  GSO_NONE,
  GSO_TCPV4,
  NO_OFFLOADS,
  Packet,
  type DeviceFeatures,
  type DeviceUpper,
  type MacAddr,
  type Napi,
  type NetDevice,
  type PacketBuffer,
  type PacketMemory,
} from '../../net/index.js';
import { IOREQ_READ, IOREQ_WRITE, PAGE_SIZE, VIOAPIC_DEFAULT_BASE_ADDRESS, IOAPIC_RTE_LEVEL } from '../../xen/abi/index.js';
import { hvmPciIntxGsi, type Vcpu } from '../../xen/index.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_5,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_ROM_ADDRESS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  PciConf,
  pciDevfn,
  type XenGuest,
} from '../../xen/guest/index.js';
import { TP_RX_DELIVER, TP_TX_START } from '../trace-points.js';
import type { EmulatedCosts } from './costs.js';
import { itrConfig, itrRegister, LOWEST_LATENCY, setItr, type ItrInterval, type ItrState } from './e1000-itr.js';
import { E1000_DEV_ID_82540EM, PCI_VENDOR_ID_INTEL } from './e1000-pci.js';
import * as R from './e1000-regs.js';

/** Ring sizes Linux's e1000 uses by default (E1000_DEFAULT_TXD / E1000_DEFAULT_RXD). */
export const E1000_DEFAULT_TXD = 256;
export const E1000_DEFAULT_RXD = 256;
/** E1000_MAX_DATA_PER_TXD: a data descriptor carries at most 4 KiB (1 << E1000_MAX_TXD_PWR). */
const MAX_DATA_PER_TXD = 1 << 12;
const IPPROTO_TCP = 6;
/** E1000_RX_BUFFER_WRITE: the clean routine hands buffers back (an RDT write) every 16. */
const RX_BUFFER_WRITE = 16;
/** IMS_ENABLE_MASK (e1000_main.c). */
const IMS_ENABLE_MASK = R.E1000_ICR_RXT0 | R.E1000_ICR_TXDW | R.E1000_ICR_RXDMT0 | R.E1000_ICR_RXSEQ | R.E1000_ICR_LSC;
/** The watchdog's period (e1000_watchdog re-arms itself every 2 s). */
const WATCHDOG_PERIOD_NS = 2_000_000_000;
/** Defaults of the module parameters (e1000_param.c): TxIntDelay 8, TxAbsIntDelay 32, RxIntDelay 0, RxAbsIntDelay 8 (1.024 µs units). */
const DEFAULT_TIDV = 8;
const DEFAULT_TADV = 32;
const DEFAULT_RDTR = 0;
const DEFAULT_RADV = 8;

/** What the driver counts (its netdev stats and a few of e1000's own). */
export interface E1000DriverStats {
  txPackets: number;
  txBytes: number;
  txDescs: number;
  /** Packets dropped by e1000_xmit_frame (link down, not in guest memory). */
  txDropped: number;
  txStops: number;
  txWakes: number;
  /** TDT writes (one per burst the stack hands over). */
  tdtWrites: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames that spanned descriptors (no jumbo support: dropped, as e1000_clean_rx_irq does). */
  rxErrors: number;
  rdtWrites: number;
  /** Interrupts taken, and those whose ICR read was 0 (shared line, not ours). */
  irqs: number;
  irqsNone: number;
  icrReads: number;
  /** Register accesses the driver made (each one a VM exit and an ioreq). */
  mmioReads: number;
  mmioWrites: number;
  watchdogRuns: number;
  /** e1000_set_itr runs (NAPI runs that finished their work, in a dynamic mode), and the ITR writes they made (only on a change). */
  itrUpdates: number;
  itrWrites: number;
}

/** Where the device sits on the guest's PCI bus 0 (function 0) and the vector Linux's allocator gives it. */
export interface E1000Location {
  slot: number;
  vector: number;
}

/** What the probe read from config space: BAR 0 and its size, the interrupt pin and line, the GSI of the pin (ACPI _PRT), the ids. */
export interface E1000Resources {
  bar: number;
  barSize: number;
  pin: number;
  irqLine: number;
  gsi: number;
  vector: number;
  subsystem: number;
}

interface TxBuf {
  pkt: Packet | null;
  /** The index of the packet's last descriptor (where DD is looked for), on its first one. */
  last: number;
  /** What the packet is on the wire, for the ITR statistics (buffer_info->segs, bytecount). */
  segs: number;
  bytes: number;
}

/**
 * Linux 3.18's e1000 driver (drivers/net/ethernet/intel/e1000/e1000_main.c) for the 82540EM,
 * one TX and one RX ring of 256 descriptors in the guest's own memory. Every register access
 * is an MMIO access to BAR 0 that exits to Xen and becomes an ioreq for qemu-dm; the vCPU
 * waits for it. Accesses are serialized (one CPU, one outstanding access).
 *
 * - probe (the PCI core's part and e1000_probe's): the device found, BAR 0 sized and read,
 *   decode and bus mastering enabled, pin and line read, all through config space (port I/O
 *   to CONFIG_ADDRESS/CONFIG_DATA, PCI_CONFIG ioreqs to qemu-dm); close disables bus mastering;
 *
 * - open (e1000_configure_tx/rx, e1000_setup_rctl, e1000_irq_enable): ring bases, lengths,
 *   heads and tails, TIPG/TIDV/TADV, RDTR/RADV, ITR from InterruptThrottleRate, RCTL/TCTL,
 *   the RX ring filled with 2 KiB buffers (RDT = the last one filled), IMS;
 * - TX (e1000_xmit_frame): a context descriptor for a TSO packet (e1000_tso: IPCSS/IPCSO/IPCSE,
 *   TUCSS/TUCSO, MSS, header length, payload length, IP|TCP|TSE; the IPv4 total length and
 *   checksum zeroed and the TCP checksum set to the pseudo-header sum without a length, in the
 *   packet's own page, so the device can complete each segment; data descriptors with TSE and
 *   IXSM|TXSM) or for a CHECKSUM_PARTIAL packet (e1000_tx_csum, TXSM with TUCSS/TUCSO), one
 *   data descriptor per 4 KiB of each fragment, EOP|IFCS|RS|IDE on
 *   the last, then the TDT write; packets handed over while a TDT write is pending share it
 *   (as skb->xmit_more lets 3.18 do);
 * - the interrupt (e1000_intr): the ICR read, which acknowledges; IMC ~0 and a flush (STATUS
 *   read); NAPI scheduled;
 * - NAPI (e1000_clean): TX descriptors with DD reclaimed; RX descriptors with DD taken (the
 *   4-byte FCS removed), refilled 16 at a time and at the end (RDT writes); at napi_complete,
 *   IMS = IMS_ENABLE_MASK and a flush;
 * - the watchdog every 2 s: STATUS and the statistics registers (e1000_update_stats, reduced
 *   to the counters QEMU keeps).
 *
 * - interrupt throttling (e1000-itr.ts): InterruptThrottleRate as the module parameter takes
 *   it, by default 3 (dynamic conservative): ITR first 195 (20000 ints/s); at the end of each
 *   NAPI run that finished its work, e1000_set_itr classifies what the run cleaned (TX: each
 *   TSO packet as its segments; RX: frames without FCS) and moves the rate between 20000 and
 *   4000 (70000 too in mode 1), writing ITR only when it changes; a fixed rate is programmed once.
 *
 * Decisions: TSO on, as 3.18 sets NETIF_F_TSO
 * for the 82540 (mac_type >= e1000_82544) and QEMU segments in software; RX
 * checksums are not offered (QEMU sets no TCPCS), so the stack verifies them.
 */
export class E1000Driver implements NetDevice {
  readonly mtu = 1500;
  features: DeviceFeatures = NO_OFFLOADS;
  readonly stats: E1000DriverStats = {
    txPackets: 0,
    txBytes: 0,
    txDescs: 0,
    txDropped: 0,
    txStops: 0,
    txWakes: 0,
    tdtWrites: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxErrors: 0,
    rdtWrites: 0,
    irqs: 0,
    irqsNone: 0,
    icrReads: 0,
    mmioReads: 0,
    mmioWrites: 0,
    watchdogRuns: 0,
    itrUpdates: 0,
    itrWrites: 0,
  };
  readonly napi: Napi;
  private upper: DeviceUpper | null = null;
  private readonly lock: Resource;
  private up = false;
  private stopped = false;
  private txRing = 0;
  private rxRing = 0;
  private txPage: Uint8Array = new Uint8Array(0);
  private rxPage: Uint8Array = new Uint8Array(0);
  private readonly txBufs: TxBuf[] = Array.from({ length: E1000_DEFAULT_TXD }, () => ({ pkt: null, last: -1, segs: 0, bytes: 0 }));
  private txNtu = 0;
  private txNtc = 0;
  private readonly rxBufs: (PacketBuffer | null)[] = new Array<PacketBuffer | null>(E1000_DEFAULT_RXD).fill(null);
  private rxNtu = 0;
  private rxNtc = 0;
  private rxCleaned = 0;
  private readonly work = new Deque<() => ProcessGenerator<void>>();
  private working = false;
  private tdtPending = false;
  private rdtPending = false;
  private watchdog: Timer | null = null;
  /** adapter->itr_setting and the dynamic state (adapter->itr, tx_itr, rx_itr). */
  private readonly itrSetting: number;
  private itr: ItrState;
  private gigabit = true;
  /** What the current NAPI run cleaned (adapter->total_*), and whether a run is scheduled (napi_schedule_prep). */
  private readonly interval: ItrInterval = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
  private napiScheduled = false;

  /** Filled in by the probe from config space. */
  readonly res: E1000Resources;
  /** Why the probe failed (open returned false), or null. */
  probeError: string | null = null;
  private readonly conf: PciConf;

  constructor(
    private readonly env: Env,
    readonly name: string,
    readonly mac: MacAddr,
    private readonly xg: XenGuest,
    private readonly vcpu: Vcpu,
    private readonly memory: PacketMemory,
    readonly location: E1000Location,
    private readonly costs: EmulatedCosts,
    /** The InterruptThrottleRate module parameter: 0 off, 1 dynamic, 3 dynamic conservative (default), 100-100000 a fixed rate (ints/s). */
    interruptThrottleRate = 3,
  ) {
    const cfg = itrConfig(interruptThrottleRate);
    this.itrSetting = cfg.setting;
    this.itr = { rate: cfg.rate, txRange: LOWEST_LATENCY, rxRange: LOWEST_LATENCY };
    this.lock = new Resource(env, 1);
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
    this.res = { bar: 0, barSize: 0, pin: 0, irqLine: 0, gsi: 0, vector: location.vector, subsystem: 0 };
    this.conf = new PciConf(xg.xen, vcpu);
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  get linkUp(): boolean {
    return this.up;
  }

  // ---- register access -------------------------------------------------------------------------

  private *rd(off: number): ProcessGenerator<number> {
    const l = this.lock.request();
    yield l;
    try {
      this.stats.mmioReads++;
      return Number(yield* this.xg.xen.mmio(this.vcpu, IOREQ_READ, this.res.bar + off, 4));
    } finally {
      l.release();
    }
  }

  private *wr(off: number, val: number): ProcessGenerator<void> {
    const l = this.lock.request();
    yield l;
    try {
      this.stats.mmioWrites++;
      yield* this.xg.xen.mmio(this.vcpu, IOREQ_WRITE, this.res.bar + off, 4, BigInt(val >>> 0));
    } finally {
      l.release();
    }
  }

  /** Driver work that touches registers, run in order on the vCPU (outside the stack's synchronous calls). */
  private later(op: () => ProcessGenerator<void>): void {
    this.work.push(op);
    if (this.working) return;
    this.working = true;
    this.env.process(
      (function* (self: E1000Driver): ProcessGenerator<void> {
        for (let o = self.work.shift(); o !== undefined; o = self.work.shift()) yield* o();
        self.working = false;
      })(this),
      `${this.name}:mmio`,
    );
  }

  // ---- probe and open ----------------------------------------------------------------------

  /**
   * Linux 3.18's PCI core and e1000_probe's config-space work, every access through
   * CONFIG_ADDRESS/CONFIG_DATA: pci_scan_device (the vendor/device dword; all ones is no
   * device), pci_setup_device (class, header type, subsystem ids), pci_read_irq (pin, line),
   * pci_read_bases (each BAR and the ROM sized with decode switched off around it:
   * __pci_read_base), then pci_enable_device (I/O and memory decode; 82540EM needs its I/O
   * BAR, e1000_is_need_ioport) and pci_set_master (bus mastering, the latency timer). The GSI
   * is the pin's ACPI _PRT entry (Xen's DSDT: hvm_pci_intx_gsi), as Linux takes it in APIC
   * mode; the line hvmloader wrote is read but only the PIC would use it.
   */
  private *probe(): ProcessGenerator<boolean> {
    const c = this.conf;
    const devfn = pciDevfn(this.location.slot, 0);
    const fail = (why: string): boolean => {
      this.probeError = why;
      return false;
    };
    const id = yield* c.read(0, devfn, PCI_VENDOR_ID, 4);
    if (id === 0xffffffff || id === 0)
      return fail(`no device at 00:${this.location.slot.toString(16).padStart(2, '0')}.0 (config space reads ${id === 0 ? '0' : 'all ones'})`);
    if ((id & 0xffff) !== PCI_VENDOR_ID_INTEL || id >>> 16 !== E1000_DEV_ID_82540EM)
      return fail(`device ${(id & 0xffff).toString(16)}:${(id >>> 16).toString(16)} is not an 82540EM (8086:100e)`);
    yield* c.read(0, devfn, PCI_CLASS_REVISION, 4);
    yield* c.read(0, devfn, PCI_HEADER_TYPE, 1);
    const subVendor = yield* c.read(0, devfn, PCI_SUBSYSTEM_VENDOR_ID, 2);
    const subId = yield* c.read(0, devfn, PCI_SUBSYSTEM_ID, 2);
    this.res.subsystem = ((subVendor << 16) | subId) >>> 0;
    const pin = yield* c.read(0, devfn, PCI_INTERRUPT_PIN, 1);
    const line = pin !== 0 ? yield* c.read(0, devfn, PCI_INTERRUPT_LINE, 1) : 0;
    let bar0: number | null = null;
    let size0 = 0;
    let hasIo = false;
    for (let reg = PCI_BASE_ADDRESS_0; reg <= PCI_ROM_ADDRESS; reg = reg === PCI_BASE_ADDRESS_5 ? PCI_ROM_ADDRESS : reg + 4) {
      const rom = reg === PCI_ROM_ADDRESS;
      const cmd = yield* c.read(0, devfn, PCI_COMMAND, 2);
      const decode = cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
      if (decode !== 0) yield* c.write(0, devfn, PCI_COMMAND, 2, cmd & ~decode);
      const l = yield* c.read(0, devfn, reg, 4);
      yield* c.write(0, devfn, reg, 4, rom ? (l | 0xfffff800) >>> 0 : 0xffffffff);
      const sz = yield* c.read(0, devfn, reg, 4);
      yield* c.write(0, devfn, reg, 4, l);
      if (decode !== 0) yield* c.write(0, devfn, PCI_COMMAND, 2, cmd);
      if (sz === 0 || sz === 0xffffffff || rom) continue;
      const io = (l & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
      if (io) hasIo = true;
      else if (reg === PCI_BASE_ADDRESS_0) {
        const mask = (sz & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
        size0 = (mask & -mask) >>> 0;
        bar0 = (l & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
      }
    }
    if (bar0 === null || size0 !== R.E1000_MMIO_SIZE) return fail(`BAR 0 is not a ${R.E1000_MMIO_SIZE / 1024} KiB memory BAR (size ${size0})`);
    if (bar0 === 0) return fail('BAR 0 was never assigned (reads 0)');
    if (pin === 0) return fail('no interrupt pin');
    // pci_enable_device (I/O and memory: the 82540EM needs its I/O BAR), then pci_set_master.
    let cmd = yield* c.read(0, devfn, PCI_COMMAND, 2);
    const want = PCI_COMMAND_MEMORY | (hasIo ? PCI_COMMAND_IO : 0);
    if ((cmd & want) !== want) yield* c.write(0, devfn, PCI_COMMAND, 2, cmd | want);
    cmd = yield* c.read(0, devfn, PCI_COMMAND, 2);
    if ((cmd & PCI_COMMAND_MASTER) === 0) yield* c.write(0, devfn, PCI_COMMAND, 2, cmd | PCI_COMMAND_MASTER);
    const lat = yield* c.read(0, devfn, PCI_LATENCY_TIMER, 1);
    if (lat < 16) yield* c.write(0, devfn, PCI_LATENCY_TIMER, 1, 64);
    Object.assign(this.res, { bar: bar0, barSize: size0, pin, irqLine: line, gsi: hvmPciIntxGsi(this.location.slot, pin - 1) });
    return true;
  }

  /**
   * The probe through config space, e1000_probe's register work and e1000_open: the MAC from
   * the EEPROM (with the checksum check over 64 words), the IOAPIC entry for the line (level,
   * the vector), the rings set up, RX filled, interrupts enabled. Returns false if the probe
   * fails (`probeError` says why: no such device, wrong ids or BAR, or a bad EEPROM checksum).
   */
  *open(): ProcessGenerator<boolean> {
    const v = this.vcpu;
    if (!(yield* this.probe())) return false;
    // e1000_reset_hw.
    yield* this.wr(R.E1000_IMC, 0xffffffff);
    yield* this.wr(R.E1000_CTRL, R.E1000_CTRL_RST);
    // e1000_validate_eeprom_checksum: words 0..0x3f through EERD.
    let sum = 0;
    for (let a = 0; a < 64; a++) {
      yield* this.wr(R.E1000_EERD, (a << R.E1000_EERD_ADDR_SHIFT) | R.E1000_EERD_START);
      const w = yield* this.rd(R.E1000_EERD);
      sum = (sum + (w >>> R.E1000_EERD_DATA_SHIFT)) & 0xffff;
    }
    if (sum !== R.EEPROM_SUM) {
      this.probeError = 'EEPROM checksum';
      return false;
    }
    // The IOAPIC redirection entry of the NIC's GSI: level-triggered, our vector, to vCPU 0 (Linux's ioapic_write_entry).
    const sel = VIOAPIC_DEFAULT_BASE_ADDRESS;
    const rte = IOAPIC_RTE_LEVEL | BigInt(this.res.vector);
    yield* this.xg.xen.mmio(v, IOREQ_WRITE, sel, 4, BigInt(0x11 + 2 * this.res.gsi));
    yield* this.xg.xen.mmio(v, IOREQ_WRITE, sel + 0x10, 4, 0n);
    yield* this.xg.xen.mmio(v, IOREQ_WRITE, sel, 4, BigInt(0x10 + 2 * this.res.gsi));
    yield* this.xg.xen.mmio(v, IOREQ_WRITE, sel + 0x10, 4, rte);
    this.xg.domain.idt.set(this.res.vector, (cpu) => this.intr(cpu));
    // Descriptor rings: one page each.
    const tg = this.xg.frames.alloc();
    const rg = this.xg.frames.alloc();
    if (tg === null || rg === null) throw new Error(`${this.name}: no guest frame for the descriptor rings (guest memory exhausted)`);
    this.txRing = tg * PAGE_SIZE;
    this.rxRing = rg * PAGE_SIZE;
    this.txPage = this.xg.mem.view(tg);
    this.rxPage = this.xg.mem.view(rg);
    this.txPage.fill(0);
    this.rxPage.fill(0);
    // e1000_configure_tx.
    yield* this.wr(R.E1000_TDBAL, this.txRing >>> 0);
    yield* this.wr(R.E1000_TDBAH, Math.floor(this.txRing / 2 ** 32));
    yield* this.wr(R.E1000_TDLEN, E1000_DEFAULT_TXD * R.DESC_SIZE);
    yield* this.wr(R.E1000_TDH, 0);
    yield* this.wr(R.E1000_TDT, 0);
    yield* this.wr(R.E1000_TIPG, 0x00602008);
    yield* this.wr(R.E1000_TIDV, DEFAULT_TIDV);
    yield* this.wr(R.E1000_TADV, DEFAULT_TADV);
    yield* this.wr(R.E1000_TCTL, R.E1000_TCTL_EN | R.E1000_TCTL_PSP | (0x0f << 4) | (0x40 << 12));
    // e1000_setup_rctl + e1000_configure_rx.
    yield* this.wr(R.E1000_RCTL, 0);
    yield* this.wr(R.E1000_RDTR, DEFAULT_RDTR);
    yield* this.wr(R.E1000_RADV, DEFAULT_RADV);
    if (this.itrSetting !== 0) yield* this.writeItr(this.itr.rate);
    yield* this.wr(R.E1000_RDBAL, this.rxRing >>> 0);
    yield* this.wr(R.E1000_RDBAH, Math.floor(this.rxRing / 2 ** 32));
    yield* this.wr(R.E1000_RDLEN, E1000_DEFAULT_RXD * R.DESC_SIZE);
    yield* this.wr(R.E1000_RDH, 0);
    yield* this.wr(R.E1000_RDT, 0);
    yield* this.wr(R.E1000_RCTL, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | (0 << R.E1000_RCTL_RDMTS_SHIFT));
    this.features = { ...NO_OFFLOADS, txCsum: true, sg: true, tso: true, gsoMaxSize: 65536 };
    yield* this.allocRxBuffers();
    // e1000_irq_enable.
    yield* this.wr(R.E1000_IMS, IMS_ENABLE_MASK);
    yield* this.rd(R.E1000_STATUS);
    const status = yield* this.rd(R.E1000_STATUS);
    this.up = (status & R.E1000_STATUS_LU) !== 0;
    this.gigabit = (status & R.E1000_STATUS_SPEED_MASK) === R.E1000_STATUS_SPEED_1000;
    this.watchdog = this.env.timer(() => this.later(() => this.watchdogTask()));
    this.watchdog.setIn(WATCHDOG_PERIOD_NS);
    return true;
  }

  /** e1000_down's data-path half (interrupts off, the watchdog stopped, buffers freed), then e1000_remove's pci_disable_device (bus mastering off). */
  *close(): ProcessGenerator<void> {
    this.up = false;
    this.watchdog?.cancel();
    yield* this.wr(R.E1000_IMC, 0xffffffff);
    yield* this.wr(R.E1000_RCTL, 0);
    yield* this.wr(R.E1000_TCTL, 0);
    const devfn = pciDevfn(this.location.slot, 0);
    const cmd = yield* this.conf.read(0, devfn, PCI_COMMAND, 2);
    if ((cmd & PCI_COMMAND_MASTER) !== 0) yield* this.conf.write(0, devfn, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MASTER);
    this.xg.domain.idt.delete(this.res.vector);
    for (const b of this.txBufs) {
      b.pkt?.release();
      b.pkt = null;
    }
    for (let i = 0; i < this.rxBufs.length; i++) {
      this.rxBufs[i]?.put();
      this.rxBufs[i] = null;
    }
  }

  private *watchdogTask(): ProcessGenerator<void> {
    if (!this.up) return;
    this.stats.watchdogRuns++;
    yield* this.rd(R.E1000_STATUS);
    for (const reg of R.E1000_STATS) yield* this.rd(reg);
    this.watchdog?.setIn(WATCHDOG_PERIOD_NS);
  }

  // ---- TX ----------------------------------------------------------------------------------

  private txUnused(): number {
    const n = E1000_DEFAULT_TXD;
    return this.txNtc > this.txNtu ? this.txNtc - this.txNtu - 1 : n + this.txNtc - this.txNtu - 1;
  }

  private putTxDesc(i: number, addr: number, lower: number, upper: number): void {
    const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
    dv.setBigUint64(0, BigInt(addr), true);
    dv.setUint32(8, lower >>> 0, true);
    dv.setUint32(12, upper >>> 0, true);
  }

  xmit(pkt: Packet): boolean {
    const frags = pkt.fragments();
    const tso = pkt.gsoType === GSO_TCPV4 && this.features.tso;
    const hdrLen = tso ? pkt.l4 + ((pkt.data[pkt.l4 + 12]! >> 4) << 2) : 0;
    if (
      !this.up ||
      frags === null ||
      frags.some((f) => f.buf.domid !== this.xg.domid) ||
      (pkt.gsoType !== GSO_NONE && !tso) ||
      (tso && frags[0]!.len < hdrLen)
    ) {
      this.stats.txDropped++;
      pkt.release();
      return true;
    }
    const csum = tso || pkt.csum === CSUM_PARTIAL;
    let needed = csum ? 1 : 0;
    for (const f of frags) needed += Math.max(1, Math.ceil(f.len / MAX_DATA_PER_TXD));
    // e1000_maybe_stop_tx: room for this packet, and MAX_SKB_FRAGS + 2 left after it.
    if (this.stopped || this.txUnused() < needed + 2) {
      if (!this.stopped) this.stats.txStops++;
      this.stopped = true;
      return false;
    }
    const n = E1000_DEFAULT_TXD;
    const first = this.txNtu;
    let i = first;
    let upper = 0;
    let dext = 0;
    if (tso) {
      // e1000_tso: the headers prepared in the packet's page for the device to complete per segment.
      const f0 = frags[0]!;
      const h = f0.buf.bytes.subarray(f0.bufOffset, f0.bufOffset + hdrLen);
      const l3 = pkt.l3;
      const l4 = pkt.l4;
      h[l3 + 2] = h[l3 + 3] = 0; // iph->tot_len
      h[l3 + 10] = h[l3 + 11] = 0; // iph->check
      let ph = IPPROTO_TCP;
      for (let k = l3 + 12; k < l3 + 20; k += 2) ph += (h[k]! << 8) | h[k + 1]!;
      while (ph > 0xffff) ph = (ph & 0xffff) + (ph >>> 16);
      h[l4 + 16] = ph >>> 8; // tcp->check = ~csum_tcpudp_magic(saddr, daddr, 0, IPPROTO_TCP, 0)
      h[l4 + 17] = ph & 0xff;
      const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      dv.setUint8(0, l3);
      dv.setUint8(1, l3 + 10);
      dv.setUint16(2, l4 - 1, true);
      dv.setUint8(4, l4);
      dv.setUint8(5, l4 + 16);
      dv.setUint16(6, 0, true);
      dv.setUint32(8, (R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_IP | R.E1000_TXD_CMD_TCP | (pkt.length - hdrLen)) >>> 0, true);
      dv.setUint8(12, 0);
      dv.setUint8(13, hdrLen);
      dv.setUint16(14, pkt.gsoSize, true);
      this.txBufs[i] = { pkt: null, last: -1, segs: 0, bytes: 0 };
      i = (i + 1) % n;
      upper = (R.E1000_TXD_POPTS_TXSM | R.E1000_TXD_POPTS_IXSM) << 8;
      dext = R.E1000_TXD_CMD_DEXT | R.E1000_TXD_DTYP_D | R.E1000_TXD_CMD_TSE;
    } else if (csum) {
      // e1000_tx_csum: a context descriptor with TUCSS/TUCSO.
      const css = pkt.csumStart;
      const cso = css + pkt.csumOffset;
      const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      dv.setUint32(0, 0, true);
      dv.setUint8(4, css);
      dv.setUint8(5, cso);
      dv.setUint16(6, 0, true);
      dv.setUint32(8, R.E1000_TXD_CMD_DEXT >>> 0, true);
      dv.setUint32(12, 0, true);
      this.txBufs[i] = { pkt: null, last: -1, segs: 0, bytes: 0 };
      i = (i + 1) % n;
      upper = R.E1000_TXD_POPTS_TXSM << 8;
      dext = R.E1000_TXD_CMD_DEXT | R.E1000_TXD_DTYP_D;
    }
    let lastIdx = i;
    for (const f of frags) {
      let gpa = f.buf.gfn * PAGE_SIZE + f.buf.offset + f.bufOffset;
      let left = f.len;
      while (left > 0) {
        const len = Math.min(left, MAX_DATA_PER_TXD);
        this.putTxDesc(i, gpa, len | dext | R.E1000_TXD_CMD_IFCS, upper);
        this.txBufs[i] = { pkt: null, last: -1, segs: 0, bytes: 0 };
        lastIdx = i;
        i = (i + 1) % n;
        gpa += len;
        left -= len;
      }
    }
    // The last descriptor ends the packet and asks for status (txd_cmd: EOP | IFCS | IDE | RS).
    const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + lastIdx * R.DESC_SIZE, R.DESC_SIZE);
    dv.setUint32(8, (dv.getUint32(8, true) | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS | R.E1000_TXD_CMD_IDE) >>> 0, true);
    // The packet is reclaimed from its first descriptor (the context one, if any) once its last has DD.
    // e1000_tx_map: a TSO packet counts as its segments, each with its own copy of the headers.
    const segs = tso && pkt.gsoSize > 0 ? Math.max(1, Math.ceil((pkt.length - hdrLen) / pkt.gsoSize)) : 1;
    this.txBufs[first] = { pkt, last: lastIdx, segs, bytes: (segs - 1) * hdrLen + pkt.length };
    this.txNtu = i;
    this.stats.txPackets++;
    this.stats.txBytes += pkt.length;
    this.stats.txDescs += needed;
    const tr = this.env.trace;
    if (tr.enabled(TP_TX_START))
      tr.emit(TP_TX_START, { path: 'emulated', domid: this.xg.domid, dev: this.name, len: pkt.length, vcpu: this.vcpu.name, frame: pkt.data });
    if (this.txUnused() < 2 + 18) {
      this.stopped = true;
      this.stats.txStops++;
    }
    this.vcpu.exec(this.costs.driverXmitFrame, 'softirq');
    if (!this.tdtPending) {
      this.tdtPending = true;
      this.later(() => this.writeTdt());
    }
    return true;
  }

  private *writeTdt(): ProcessGenerator<void> {
    this.tdtPending = false;
    this.stats.tdtWrites++;
    yield* this.wr(R.E1000_TDT, this.txNtu);
  }

  /** e1000_clean_tx_irq: packets whose last descriptor has DD are freed; the queue wakes with room again. */
  private cleanTx(): void {
    const n = E1000_DEFAULT_TXD;
    let cleaned = 0;
    while (this.txNtc !== this.txNtu) {
      const b = this.txBufs[this.txNtc]!;
      if (b.pkt === null || (this.txPage[b.last * R.DESC_SIZE + 12]! & R.E1000_TXD_STAT_DD) === 0) break;
      b.pkt.release();
      this.interval.txPackets += b.segs;
      this.interval.txBytes += b.bytes;
      this.txBufs[this.txNtc] = { pkt: null, last: -1, segs: 0, bytes: 0 };
      const end = (b.last + 1) % n;
      cleaned += (end - this.txNtc + n) % n;
      this.txNtc = end;
    }
    if (cleaned > 0) this.vcpu.exec(this.costs.driverCleanTx * cleaned, 'softirq');
    if (this.stopped && this.txUnused() >= 2 * (2 + 18)) {
      this.stopped = false;
      this.stats.txWakes++;
      this.upper?.wake();
    }
  }

  // ---- interrupt ---------------------------------------------------------------------------

  /** e1000_intr. */
  private *intr(v: Vcpu): ProcessGenerator<void> {
    this.stats.irqs++;
    yield v.exec(this.costs.driverIrq, 'irq');
    this.stats.icrReads++;
    const icr = yield* this.rd(R.E1000_ICR);
    if (icr === 0) {
      this.stats.irqsNone++;
      return;
    }
    // Interrupts off until the poll is done; E1000_WRITE_FLUSH reads STATUS.
    yield* this.wr(R.E1000_IMC, 0xffffffff);
    yield* this.rd(R.E1000_STATUS);
    if (!this.napiScheduled) {
      // napi_schedule_prep succeeded: a new NAPI run, a new interval for e1000_set_itr.
      this.napiScheduled = true;
      this.interval.txPackets = this.interval.txBytes = this.interval.rxPackets = this.interval.rxBytes = 0;
    }
    this.upper?.napiSchedule(this.napi);
  }

  // ---- RX ----------------------------------------------------------------------------------

  private rxUnused(): number {
    const n = E1000_DEFAULT_RXD;
    return this.rxNtc > this.rxNtu ? this.rxNtc - this.rxNtu - 1 : n + this.rxNtc - this.rxNtu - 1;
  }

  /** e1000_alloc_rx_buffers' memory half: buffers into every free slot; returns whether RDT must move. */
  private fillRx(): boolean {
    let count = this.rxUnused();
    if (count === 0) return false;
    const n = E1000_DEFAULT_RXD;
    while (count-- > 0) {
      const i = this.rxNtu;
      const buf = this.memory.alloc(R.MAXIMUM_ETHERNET_VLAN_SIZE + 4);
      this.rxBufs[i] = buf;
      const dv = new DataView(this.rxPage.buffer, this.rxPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      dv.setBigUint64(0, BigInt(buf.gfn * PAGE_SIZE + buf.offset), true);
      dv.setUint32(8, 0, true);
      dv.setUint32(12, 0, true);
      this.rxNtu = (i + 1) % n;
    }
    return true;
  }

  /** The RDT write: the last descriptor filled (next_to_use − 1), as e1000_alloc_rx_buffers writes it. */
  private *writeRdt(): ProcessGenerator<void> {
    this.rdtPending = false;
    this.stats.rdtWrites++;
    yield* this.wr(R.E1000_RDT, (this.rxNtu + E1000_DEFAULT_RXD - 1) % E1000_DEFAULT_RXD);
  }

  private *allocRxBuffers(): ProcessGenerator<void> {
    if (this.fillRx()) yield* this.writeRdt();
  }

  private refill(): void {
    this.rxCleaned = 0;
    if (!this.fillRx() || this.rdtPending) return;
    this.rdtPending = true;
    this.later(() => this.writeRdt());
  }

  /** One frame of e1000_clean_rx_irq (the TX ring is cleaned first, as e1000_clean does). */
  private poll(): Packet | undefined {
    if (!this.up) return undefined;
    this.cleanTx();
    const n = E1000_DEFAULT_RXD;
    for (;;) {
      const i = this.rxNtc;
      const off = i * R.DESC_SIZE;
      const status = this.rxPage[off + 12]!;
      if ((status & R.E1000_RXD_STAT_DD) === 0) return undefined;
      const dv = new DataView(this.rxPage.buffer, this.rxPage.byteOffset + off, R.DESC_SIZE);
      let length = dv.getUint16(8, true);
      const buf = this.rxBufs[i];
      this.rxBufs[i] = null;
      this.rxPage[off + 12] = 0;
      this.rxNtc = (i + 1) % n;
      this.vcpu.exec(this.costs.driverCleanRx, 'softirq');
      if (++this.rxCleaned >= RX_BUFFER_WRITE) this.refill();
      if (buf === null || buf === undefined) continue;
      if ((status & R.E1000_RXD_STAT_EOP) === 0 || length < 4 + 14) {
        // "Receive packet consumed multiple buffers": without jumbo frames the chain is dropped.
        this.stats.rxErrors++;
        buf.put();
        continue;
      }
      length -= 4; // the FCS (no NETIF_F_RXFCS)
      const pkt = new Packet(buf.bytes.subarray(0, length), buf, 0);
      pkt.csum = CSUM_NONE;
      this.stats.rxPackets++;
      this.stats.rxBytes += length;
      this.interval.rxPackets++;
      this.interval.rxBytes += length; // total_rx_bytes: without the FCS
      const tr = this.env.trace;
      if (tr.enabled(TP_RX_DELIVER))
        tr.emit(TP_RX_DELIVER, { path: 'emulated', domid: this.xg.domid, dev: this.name, len: length, vcpu: this.vcpu.name, frame: pkt.data });
      return pkt;
    }
  }

  /** e1000_clean's end: the refill of what was cleaned, e1000_set_itr in a dynamic mode, napi_complete, e1000_irq_enable (IMS and a flush). */
  private complete(): void {
    this.cleanTx();
    this.refill();
    this.napiScheduled = false;
    if ((this.itrSetting & 3) !== 0) {
      this.stats.itrUpdates++;
      const { state, changed } = setItr(this.itrSetting, this.itr, this.gigabit, this.interval);
      this.itr = state;
      // The register is written only when the rate changed.
      if (changed) this.later(() => this.writeItr(state.rate));
    }
    this.later(() => this.irqEnable());
  }

  /** The interrupt rate the driver has programmed (adapter->itr, ints/s; 0 with ITR off). */
  get itrRate(): number {
    return this.itr.rate;
  }

  private *writeItr(rate: number): ProcessGenerator<void> {
    this.stats.itrWrites++;
    yield* this.wr(R.E1000_ITR, itrRegister(rate));
  }

  private *irqEnable(): ProcessGenerator<void> {
    if (!this.up) return;
    yield* this.wr(R.E1000_IMS, IMS_ENABLE_MASK);
    yield* this.rd(R.E1000_STATUS);
  }
}
