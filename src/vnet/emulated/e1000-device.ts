import type { Env, Timer } from '../../sim/index.js';
import { readU16, readU32, writeU16, writeU32 } from '../../net/index.js';
import {
  DESC_SIZE,
  DLEN_MASK,
  E1000_CTRL,
  E1000_CTRL_RST,
  E1000_EERD,
  E1000_EERD_ADDR_SHIFT,
  E1000_EERD_DATA_SHIFT,
  E1000_EERD_DONE,
  E1000_EERD_START,
  E1000_GORCH,
  E1000_GORCL,
  E1000_GOTCH,
  E1000_GOTCL,
  E1000_GPRC,
  E1000_GPTC,
  E1000_ICR,
  E1000_ICR_RXDMT0,
  E1000_ICR_RXO,
  E1000_ICR_RXT0,
  E1000_ICR_TXDW,
  E1000_ICR_TXQE,
  E1000_ICS,
  E1000_IMC,
  E1000_IMS,
  E1000_ITR,
  E1000_MDIC,
  E1000_MDIC_OP_READ,
  E1000_MDIC_READY,
  E1000_MMIO_SIZE,
  E1000_MPC,
  E1000_RA,
  E1000_RADV,
  E1000_RAH_AV,
  E1000_RCTL,
  E1000_RCTL_BAM,
  E1000_RCTL_BSEX,
  E1000_RCTL_EN,
  E1000_RCTL_LPE,
  E1000_RCTL_MPE,
  E1000_RCTL_RDMTS_SHIFT,
  E1000_RCTL_SECRC,
  E1000_RCTL_SZ_SHIFT,
  E1000_RCTL_UPE,
  E1000_RDBAH,
  E1000_RDBAL,
  E1000_RDH,
  E1000_RDLEN,
  E1000_RDT,
  E1000_RDTR,
  E1000_RXD_STAT_DD,
  E1000_RXD_STAT_EOP,
  E1000_STATS,
  E1000_STATUS,
  E1000_STATUS_LU,
  E1000_STATUS_RESET,
  E1000_TADV,
  E1000_TCTL,
  E1000_TCTL_EN,
  E1000_TDBAH,
  E1000_TDBAL,
  E1000_TDH,
  E1000_TDLEN,
  E1000_TDT,
  E1000_TIDV,
  E1000_TORH,
  E1000_TORL,
  E1000_TOTH,
  E1000_TOTL,
  E1000_TPR,
  E1000_TPT,
  E1000_TXD_CMD_DEXT,
  E1000_TXD_CMD_EOP,
  E1000_TXD_CMD_IDE,
  E1000_TXD_CMD_RPS,
  E1000_TXD_CMD_RS,
  E1000_TXD_CMD_TSE,
  E1000_TXD_CMD_IP,
  E1000_TXD_CMD_TCP,
  E1000_TXD_DTYP_D,
  E1000_TXD_LEN_MASK,
  E1000_TXD_POPTS_IXSM,
  E1000_TXD_POPTS_TXSM,
  E1000_TXD_STAT_DD,
  EEPROM_SUM,
  MAXIMUM_ETHERNET_VLAN_SIZE,
  MIN_BUF_SIZE,
  TX_BUFFER,
} from './e1000-regs.js';

/** How the device reaches guest memory and the outside: qemu-dm's map cache, the tap, the interrupt line. */
export interface E1000Backend {
  /** DMA read of guest-physical memory; bytes outside guest RAM read as 0 (QEMU's unassigned memory). */
  dmaRead(gpa: number, len: number): Uint8Array;
  /** DMA write; bytes outside guest RAM are dropped. */
  dmaWrite(gpa: number, data: Uint8Array): void;
  /** pci_set_irq: the INTx line's new level. */
  setIrq(level: boolean): void;
  /** A frame the device sends (qemu_send_packet to the tap). */
  transmit(frame: Uint8Array): void;
  /** RX buffers became available (qemu_flush_queued_packets). */
  canReceive(): void;
}

/** What the device did, for counters and tests. */
export interface E1000Stats {
  mmioReads: number;
  mmioWrites: number;
  txDescs: number;
  txFrames: number;
  rxFrames: number;
  rxDescs: number;
  /** Frames dropped: no/too few buffers (RXO), receiver off, oversize, filtered. */
  rxDropped: number;
  irqRaised: number;
  /** Mitigation windows in which a rising edge was held back until the window closed. */
  irqDeferred: number;
  /** ITR writes, and those that changed its value. */
  itrWrites: number;
  itrChanges: number;
  /** TDH wrapped back to where start_xmit began (the tail was beyond the ring, or the ring is nonsense). */
  txWrapStalls: number;
  /** Bytes moved by DMA. */
  dmaBytes: number;
}

const r = (off: number): number => off >> 2;

/** Per-frame TX context (struct e1000_tx): offload parameters from the last context descriptor, the frame being gathered. */
interface TxState {
  ipcss: number;
  ipcso: number;
  ipcse: number;
  tucss: number;
  tucso: number;
  tucse: number;
  sumNeeded: number;
  data: Uint8Array;
  size: number;
  /** TSO, from the context descriptor: payload length, header length, MSS, IPv4, TCP, TSE; the header as it came, and segments sent so far. */
  paylen: number;
  hdrLen: number;
  mss: number;
  ip: boolean;
  tcp: boolean;
  tse: boolean;
  /** TSE in the current data descriptor (cptse). */
  cptse: boolean;
  header: Uint8Array;
  tsoFrames: number;
}

function checksumFold(data: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += (data[i]! << 8) | (i + 1 < to ? data[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * The 82540EM as QEMU's hw/net/e1000.c emulates it: the MAC registers (mac_reg[]) with
 * their read and write handlers, start_xmit over the TX ring, e1000_receive_iov into the RX
 * ring with the descriptor-done write-back, and set_interrupt_cause with the mit_timer
 * (interrupt mitigation from ITR, RADV with RDTR set, TADV for descriptors with IDE). It does
 * no timing itself: its caller (qemu-dm) charges each access and frame from the profile.
 *
 * TSO as QEMU does it in software (process_tx_desc with tse/cptse, xmit_seg): the context
 * descriptor gives the header length, MSS and payload length; data is gathered up to one
 * header + MSS at a time, each segment sent with the header it started with, its IPv4 total
 * length and id, its TCP sequence number advanced and PSH/FIN cleared on all but the last,
 * the pseudo-header sum completed with the segment's length, then the checksums inserted.
 * A data descriptor asking for TSE after a context without it is ignored as QEMU ignores it
 * ("TCP segmentation error").
 */
export class E1000Device {
  private readonly mac = new Uint32Array(E1000_MMIO_SIZE >> 2);
  readonly eeprom = new Uint16Array(64);
  private readonly phy = new Uint16Array(32);
  private mitTimerOn = false;
  private mitIrqLevel = false;
  private mitIde = false;
  /** An edge is being held back in the current window (counted once per window). */
  private mitHeld = false;
  private readonly mitTimer: Timer;
  private tx: TxState = {
    ipcss: 0,
    ipcso: 0,
    ipcse: 0,
    tucss: 0,
    tucso: 0,
    tucse: 0,
    sumNeeded: 0,
    data: new Uint8Array(TX_BUFFER),
    size: 0,
    paylen: 0,
    hdrLen: 0,
    mss: 0,
    ip: false,
    tcp: false,
    tse: false,
    cptse: false,
    header: new Uint8Array(256),
    tsoFrames: 0,
  };
  readonly stats: E1000Stats = {
    mmioReads: 0,
    mmioWrites: 0,
    txDescs: 0,
    txFrames: 0,
    rxFrames: 0,
    rxDescs: 0,
    rxDropped: 0,
    irqRaised: 0,
    irqDeferred: 0,
    itrWrites: 0,
    itrChanges: 0,
    txWrapStalls: 0,
    dmaBytes: 0,
  };

  constructor(
    env: Env,
    readonly macAddr: Uint8Array,
    private readonly be: E1000Backend,
  ) {
    if (macAddr.length !== 6) throw new Error(`e1000: MAC address of ${macAddr.length} bytes (model bug)`);
    this.mitTimer = env.timer(() => this.mitTimerFired());
    // EEPROM: MAC in words 0-2, checksum word 0x3f so that words 0x00-0x3f sum to EEPROM_SUM.
    for (let i = 0; i < 3; i++) this.eeprom[i] = macAddr[2 * i]! | (macAddr[2 * i + 1]! << 8);
    let sum = 0;
    for (let i = 0; i < 0x3f; i++) sum = (sum + this.eeprom[i]!) & 0xffff;
    this.eeprom[0x3f] = (EEPROM_SUM - sum) & 0xffff;
    this.phy[1] = 0x796d; // PHY_STATUS: link up, autoneg complete
    this.phy[2] = 0x0141; // PHY_ID1
    this.phy[3] = 0x0c20; // PHY_ID2 (M88E1011)
    this.reset();
  }

  /** e1000_reset / mac_reg_init. */
  private reset(): void {
    this.mitTimer.cancel();
    this.mitTimerOn = false;
    this.mitIrqLevel = false;
    this.mitIde = false;
    this.mitHeld = false;
    this.mac.fill(0);
    this.mac[r(E1000_STATUS)] = E1000_STATUS_RESET;
    this.mac[r(E1000_CTRL)] = 0x00000240; // E1000_CTRL_SPD_1000 | E1000_CTRL_SLU
    this.mac[r(E1000_RA)] = (this.macAddr[0]! | (this.macAddr[1]! << 8) | (this.macAddr[2]! << 16) | (this.macAddr[3]! << 24)) >>> 0;
    this.mac[r(E1000_RA) + 1] = (this.macAddr[4]! | (this.macAddr[5]! << 8) | E1000_RAH_AV) >>> 0;
    this.tx.size = 0;
    this.tx.sumNeeded = 0;
    this.be.setIrq(false);
  }

  /** A register's value without side effects (tests, the trace). */
  peek(off: number): number {
    return this.mac[r(off)]!;
  }

  get irqLevel(): boolean {
    return this.mitIrqLevel;
  }

  // ---- MMIO ---------------------------------------------------------------------------------

  /** e1000_mmio_read: 32-bit registers; narrower reads take their bytes of it. */
  read(off: number, size: number): number {
    this.stats.mmioReads++;
    const idx = r(off & ~3);
    let v: number;
    if (idx >= this.mac.length) v = 0;
    else if (off - (off & 3) === E1000_ICR) {
      // mac_icr_read: the read returns the causes and clears them.
      v = this.mac[idx]!;
      this.setInterruptCause(0);
    } else if ((E1000_STATS as readonly number[]).includes(off & ~3)) {
      v = this.mac[idx]!;
      this.mac[idx] = 0;
    } else v = this.mac[idx]!;
    const shift = (off & 3) * 8;
    return size >= 4 ? v >>> 0 : (v >>> shift) & ((1 << (size * 8)) - 1);
  }

  /** e1000_mmio_write: the register's write handler (macreg_writeops). */
  write(off: number, size: number, value: number): void {
    this.stats.mmioWrites++;
    const o = off & ~3;
    if (r(o) >= this.mac.length) return;
    let val = value >>> 0;
    if (size < 4) {
      const shift = (off & 3) * 8;
      const m = ((1 << (size * 8)) - 1) << shift;
      val = ((this.mac[r(o)]! & ~m) | ((val << shift) & m)) >>> 0;
    }
    switch (o) {
      case E1000_CTRL:
        if (val & E1000_CTRL_RST) {
          this.reset();
          return;
        }
        this.mac[r(o)] = val & ~E1000_CTRL_RST;
        return;
      case E1000_STATUS:
        return; // read-only
      case E1000_EERD:
        // The EEPROM read interface: start bit and word address in, data and done out.
        if (val & E1000_EERD_START) {
          const a = (val >>> E1000_EERD_ADDR_SHIFT) & 0xff;
          const w = a < this.eeprom.length ? this.eeprom[a]! : 0;
          this.mac[r(o)] = ((w << E1000_EERD_DATA_SHIFT) | (a << E1000_EERD_ADDR_SHIFT) | E1000_EERD_DONE) >>> 0;
        }
        return;
      case E1000_MDIC: {
        // set_mdic: PHY address 1 only; reads return the register with READY.
        const reg = (val >>> 16) & 0x1f;
        const phyAddr = (val >>> 21) & 0x1f;
        let out = val;
        if (phyAddr === 1 && (val & (3 << 26)) === E1000_MDIC_OP_READ) out = (val & ~0xffff) | this.phy[reg]!;
        else if (phyAddr === 1) this.phy[reg] = val & 0xffff;
        this.mac[r(o)] = (out | E1000_MDIC_READY) >>> 0;
        return;
      }
      case E1000_ICR:
        // set_icr: write 1 to clear.
        this.setInterruptCause(this.mac[r(E1000_ICR)]! & ~val);
        return;
      case E1000_ICS:
        this.setInterruptCause(val | this.mac[r(E1000_ICR)]!);
        return;
      case E1000_IMS:
        this.mac[r(E1000_IMS)] = this.mac[r(E1000_IMS)]! | val;
        this.setInterruptCause(this.mac[r(E1000_ICR)]!);
        return;
      case E1000_IMC:
        this.mac[r(E1000_IMS)] = this.mac[r(E1000_IMS)]! & ~val;
        this.setInterruptCause(this.mac[r(E1000_ICR)]!);
        return;
      case E1000_RDLEN:
      case E1000_TDLEN:
        this.mac[r(o)] = val & DLEN_MASK; // set_dlen: a ring is a multiple of 128 bytes
        return;
      case E1000_ITR:
        this.stats.itrWrites++;
        if ((val & 0xffff) !== this.mac[r(o)]) this.stats.itrChanges++;
        this.mac[r(o)] = val & 0xffff; // set_16bit; the next mitigation window uses it
        return;
      case E1000_RDH:
      case E1000_TDH:
      case E1000_RDTR:
      case E1000_RADV:
      case E1000_TADV:
      case E1000_TIDV:
        this.mac[r(o)] = val & 0xffff; // set_16bit
        return;
      case E1000_RDT:
        this.mac[r(o)] = val & 0xffff; // set_rdt
        if (this.hasRxBufs(1)) this.be.canReceive();
        return;
      case E1000_TDT:
        this.mac[r(o)] = val & 0xffff;
        this.startXmit();
        return;
      case E1000_TCTL:
        this.mac[r(o)] = val;
        this.startXmit();
        return;
      case E1000_RCTL:
        this.mac[r(o)] = val; // set_rx_control
        if (this.hasRxBufs(1)) this.be.canReceive();
        return;
      default:
        this.mac[r(o)] = val;
    }
  }

  // ---- interrupts ---------------------------------------------------------------------------

  /** set_interrupt_cause: ICR (and ICS) take `val`; the line follows IMS & ICR, its rising edges paced by the mit_timer. */
  private setInterruptCause(val: number): void {
    const m = this.mac;
    m[r(E1000_ICR)] = val >>> 0;
    m[r(E1000_ICS)] = val >>> 0;
    const pending = (m[r(E1000_IMS)]! & m[r(E1000_ICR)]!) >>> 0;
    if (!this.mitIrqLevel && pending !== 0) {
      // A rising edge: postponed while inside the mitigation window.
      if (this.mitTimerOn) {
        if (!this.mitHeld) this.stats.irqDeferred++;
        this.mitHeld = true;
        return;
      }
      let delay = 0;
      const upd = (x: number): void => {
        if (x !== 0 && (delay === 0 || x < delay)) delay = x;
      };
      if (this.mitIde && (pending & (E1000_ICR_TXQE | E1000_ICR_TXDW)) !== 0) upd(m[r(E1000_TADV)]! * 4);
      if (m[r(E1000_RDTR)] !== 0 && (pending & E1000_ICR_RXT0) !== 0) upd(m[r(E1000_RADV)]! * 4);
      upd(m[r(E1000_ITR)]!);
      // "the Ethernet controller guarantees a maximum observable interrupt rate of 7813
      // interrupts/sec": a delay under 500 units of 256 ns is raised to 500.
      if (delay < 500) delay = 500;
      this.mitTimerOn = true;
      this.mitTimer.setIn(delay * 256);
      this.mitIde = false;
    }
    const level = pending !== 0;
    if (level && !this.mitIrqLevel) this.stats.irqRaised++;
    this.mitIrqLevel = level;
    this.be.setIrq(level);
  }

  /** e1000_mit_timer: the window closed; the line is re-evaluated. */
  private mitTimerFired(): void {
    this.mitTimerOn = false;
    this.mitHeld = false;
    this.setInterruptCause(this.mac[r(E1000_ICR)]!);
  }

  // ---- TX -----------------------------------------------------------------------------------

  private ringBase(lo: number, hi: number): number {
    return this.mac[r(hi)]! * 2 ** 32 + (this.mac[r(lo)]! & ~0xf);
  }

  /** start_xmit: every descriptor from TDH up to TDT, then TXQE (and TXDW if one asked for status). */
  private startXmit(): void {
    const m = this.mac;
    if ((m[r(E1000_TCTL)]! & E1000_TCTL_EN) === 0) return;
    const n = m[r(E1000_TDLEN)]! / DESC_SIZE;
    let cause = E1000_ICR_TXQE;
    const start = m[r(E1000_TDH)]!;
    const base = this.ringBase(E1000_TDBAL, E1000_TDBAH);
    while (m[r(E1000_TDH)] !== m[r(E1000_TDT)]) {
      const head = m[r(E1000_TDH)]!;
      const addr = base + head * DESC_SIZE;
      const d = this.be.dmaRead(addr, DESC_SIZE);
      this.stats.dmaBytes += DESC_SIZE;
      this.stats.txDescs++;
      this.processTxDesc(d);
      cause |= this.txdescWriteback(addr, d);
      let next = head + 1;
      if (next * DESC_SIZE >= m[r(E1000_TDLEN)]!) next = 0;
      m[r(E1000_TDH)] = next;
      // "TDH wraparound": a tail beyond the ring (or an empty ring) never meets the head.
      if (next === start || start >= n) {
        this.stats.txWrapStalls++;
        break;
      }
    }
    this.setInterruptCause(cause | m[r(E1000_ICR)]!);
  }

  private processTxDesc(d: Uint8Array): void {
    const dv = new DataView(d.buffer, d.byteOffset, DESC_SIZE);
    const bufAddr = Number(dv.getBigUint64(0, true));
    const lower = dv.getUint32(8, true);
    const upper = dv.getUint32(12, true);
    const dtype = lower & (E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D);
    const tp = this.tx;
    if ((lower & E1000_TXD_CMD_IDE) !== 0) this.mitIde = true;
    if (dtype === E1000_TXD_CMD_DEXT) {
      // Context descriptor: offload parameters for the frames that follow.
      tp.ipcss = d[0]!;
      tp.ipcso = d[1]!;
      tp.ipcse = dv.getUint16(2, true);
      tp.tucss = d[4]!;
      tp.tucso = d[5]!;
      tp.tucse = dv.getUint16(6, true);
      tp.paylen = lower & 0xfffff;
      tp.hdrLen = d[13]!;
      tp.mss = dv.getUint16(14, true);
      tp.ip = (lower & E1000_TXD_CMD_IP) !== 0;
      tp.tcp = (lower & E1000_TXD_CMD_TCP) !== 0;
      tp.tse = (lower & E1000_TXD_CMD_TSE) !== 0;
      tp.tsoFrames = 0;
      // QEMU: "this is probably wrong" — a zero TUCSO is taken as the TCP or UDP checksum's place.
      if (tp.tucso === 0) tp.tucso = tp.tucss + (tp.tcp ? 16 : 6);
      return;
    }
    let len: number;
    if (dtype === (E1000_TXD_CMD_DEXT | E1000_TXD_DTYP_D)) {
      if (tp.size === 0) tp.sumNeeded = (upper >>> 8) & 0xff;
      tp.cptse = (lower & E1000_TXD_CMD_TSE) !== 0;
      len = lower & 0xfffff;
    } else {
      // Legacy descriptor: no offloads (the CSO/CSS insertion is not used by Linux's driver).
      if (tp.size === 0) tp.sumNeeded = 0;
      tp.cptse = false;
      len = lower & E1000_TXD_LEN_MASK;
    }
    if (tp.tse && tp.cptse) {
      // Gather one header + MSS at a time; each full segment goes out and the header is put back.
      const msh = Math.min(tp.hdrLen + tp.mss, TX_BUFFER);
      let addr = bufAddr;
      let split = len;
      let bytes: number;
      do {
        bytes = Math.min(split, msh - tp.size, TX_BUFFER - tp.size);
        if (bytes > 0) {
          tp.data.set(this.be.dmaRead(addr, bytes), tp.size);
          this.stats.dmaBytes += bytes;
        }
        const sz = tp.size + bytes;
        if (sz >= tp.hdrLen && tp.size < tp.hdrLen) tp.header.set(tp.data.subarray(0, tp.hdrLen));
        tp.size = sz;
        addr += bytes;
        if (sz === msh) {
          this.xmitSeg();
          tp.data.set(tp.header.subarray(0, tp.hdrLen));
          tp.size = tp.hdrLen;
        }
        split -= bytes;
      } while (bytes > 0 && split > 0);
    } else if (!tp.tse && tp.cptse) {
      // "TCP segmentation error": TSE asked for without a TSO context; the descriptor is ignored.
    } else {
      // The packet buffer holds 64 KiB; what does not fit is cut off.
      const bytes = Math.min(len, TX_BUFFER - tp.size);
      if (bytes > 0) {
        tp.data.set(this.be.dmaRead(bufAddr, bytes), tp.size);
        this.stats.dmaBytes += bytes;
        tp.size += bytes;
      }
    }
    if ((lower & E1000_TXD_CMD_EOP) === 0) return; // the frame continues in the next descriptor
    if (!(tp.tse && tp.cptse && tp.size < tp.hdrLen)) this.xmitSeg();
    tp.tsoFrames = 0;
    tp.size = 0;
    tp.sumNeeded = 0;
    tp.cptse = false;
  }

  /** putsum: the 16-bit one's-complement sum of [css, cse] stored big-endian at sloc. */
  private putsum(data: Uint8Array, n: number, sloc: number, css: number, cse: number): void {
    if (cse !== 0 && cse < n) n = cse + 1;
    if (sloc < n - 1) {
      const s = ~checksumFold(data, css, n) & 0xffff;
      const v = s === 0 ? 0xffff : s;
      data[sloc] = v >> 8;
      data[sloc + 1] = v & 0xff;
    }
  }

  private xmitSeg(): void {
    const tp = this.tx;
    if (tp.tse && tp.cptse) {
      const d = tp.data;
      const frames = tp.tsoFrames;
      let css = tp.ipcss;
      if (tp.ip && css + 6 <= tp.size) {
        // IPv4 total length and id of this segment.
        writeU16(d, css + 2, tp.size - css);
        writeU16(d, css + 4, (readU16(d, css + 4) + frames) & 0xffff);
      }
      css = tp.tucss;
      const len = tp.size - css;
      if (tp.tcp && css + 14 <= tp.size) {
        const sofar = frames * tp.mss;
        writeU32(d, css + 4, (readU32(d, css + 4) + sofar) >>> 0);
        if (tp.paylen - sofar > tp.mss) d[css + 13] = d[css + 13]! & ~9; // PSH and FIN only on the last
      } else if (!tp.tcp && css + 6 <= tp.size) writeU16(d, css + 4, len & 0xffff); // UDP length
      if ((tp.sumNeeded & E1000_TXD_POPTS_TXSM) !== 0 && tp.tucso + 2 <= tp.size) {
        // The pseudo-header sum the driver left (without a length) completed with this segment's.
        let ph = readU16(d, tp.tucso) + len;
        ph = (ph >>> 16) + (ph & 0xffff);
        writeU16(d, tp.tucso, ph & 0xffff);
      }
      tp.tsoFrames++;
    }
    const frame = tp.data.slice(0, tp.size);
    if (tp.sumNeeded & E1000_TXD_POPTS_TXSM) this.putsum(frame, frame.length, tp.tucso, tp.tucss, tp.tucse);
    if (tp.sumNeeded & E1000_TXD_POPTS_IXSM) this.putsum(frame, frame.length, tp.ipcso, tp.ipcss, tp.ipcse);
    if (frame.length === 0) return;
    const m = this.mac;
    this.stats.txFrames++;
    m[r(E1000_TPT)] = m[r(E1000_TPT)]! + 1;
    m[r(E1000_GPTC)] = m[r(E1000_GPTC)]! + 1;
    const add64 = (lo: number, hi: number, v: number): void => {
      const t = m[r(lo)]! + v;
      m[r(lo)] = t >>> 0;
      if (t > 0xffffffff) m[r(hi)] = m[r(hi)]! + 1;
    };
    add64(E1000_GOTCL, E1000_GOTCH, frame.length + 4);
    add64(E1000_TOTL, E1000_TOTH, frame.length + 4);
    this.be.transmit(frame);
  }

  /** txdesc_writeback: DD into the descriptor's status when it asked (RS/RPS); that asks for TXDW. */
  private txdescWriteback(addr: number, d: Uint8Array): number {
    const lower = new DataView(d.buffer, d.byteOffset, DESC_SIZE).getUint32(8, true);
    if ((lower & (E1000_TXD_CMD_RS | E1000_TXD_CMD_RPS)) === 0) return 0;
    const up = new Uint8Array(4);
    const upper = new DataView(d.buffer, d.byteOffset, DESC_SIZE).getUint32(12, true);
    new DataView(up.buffer).setUint32(0, ((upper & ~0xf) | E1000_TXD_STAT_DD) >>> 0, true);
    this.be.dmaWrite(addr + 12, up);
    this.stats.dmaBytes += 4;
    return E1000_ICR_TXDW;
  }

  // ---- RX -----------------------------------------------------------------------------------

  private rxBufSize(): number {
    const rctl = this.mac[r(E1000_RCTL)]!;
    const sz = (rctl >>> E1000_RCTL_SZ_SHIFT) & 3;
    const base = [2048, 1024, 512, 256][sz]!;
    return (rctl & E1000_RCTL_BSEX) !== 0 && sz !== 0 ? base * 16 : base;
  }

  /** e1000_has_rxbufs: the descriptors between RDH and RDT hold `total` bytes (RDH == RDT: none posted). */
  hasRxBufs(total: number): boolean {
    const m = this.mac;
    const head = m[r(E1000_RDH)]!;
    const tail = m[r(E1000_RDT)]!;
    const n = m[r(E1000_RDLEN)]! / DESC_SIZE;
    let bufs: number;
    if (head < tail) bufs = tail - head;
    else if (head > tail) bufs = n - head + tail;
    else return false;
    return total <= bufs * this.rxBufSize();
  }

  /** e1000_can_receive: link up, receiver on, a buffer posted. A frame that finds none waits in the tap (queued). */
  canReceive(): boolean {
    return (this.mac[r(E1000_STATUS)]! & E1000_STATUS_LU) !== 0 && (this.mac[r(E1000_RCTL)]! & E1000_RCTL_EN) !== 0 && this.hasRxBufs(1);
  }

  private receiveFilter(f: Uint8Array): boolean {
    const rctl = this.mac[r(E1000_RCTL)]!;
    const bcast = f.subarray(0, 6).every((b) => b === 0xff);
    if (bcast) return (rctl & E1000_RCTL_BAM) !== 0;
    if ((f[0]! & 1) !== 0) return (rctl & E1000_RCTL_MPE) !== 0 || (rctl & E1000_RCTL_UPE) !== 0;
    if ((rctl & E1000_RCTL_UPE) !== 0) return true;
    for (let i = 0; i < 16; i++) {
      const lo = this.mac[r(E1000_RA) + 2 * i]!;
      const hi = this.mac[r(E1000_RA) + 2 * i + 1]!;
      if ((hi & E1000_RAH_AV) === 0) continue;
      if (
        f[0] === (lo & 0xff) &&
        f[1] === ((lo >>> 8) & 0xff) &&
        f[2] === ((lo >>> 16) & 0xff) &&
        f[3] === lo >>> 24 &&
        f[4] === (hi & 0xff) &&
        f[5] === ((hi >>> 8) & 0xff)
      )
        return true;
    }
    return false;
  }

  /**
   * e1000_receive_iov: a frame from the tap into posted RX buffers, each written back with its
   * length and DD (EOP on the last), then RXT0 (and RXDMT0 when the free descriptors fall under
   * the RCTL.RDMTS threshold). Returns false when the frame must wait (no buffer posted); a
   * frame the device drops returns true.
   */
  receive(frame: Uint8Array): boolean {
    const m = this.mac;
    if ((m[r(E1000_STATUS)]! & E1000_STATUS_LU) === 0 || (m[r(E1000_RCTL)]! & E1000_RCTL_EN) === 0) {
      this.stats.rxDropped++;
      return true;
    }
    let f = frame;
    if (f.length < MIN_BUF_SIZE) {
      f = new Uint8Array(MIN_BUF_SIZE);
      f.set(frame);
    }
    if (f.length > MAXIMUM_ETHERNET_VLAN_SIZE && (m[r(E1000_RCTL)]! & E1000_RCTL_LPE) === 0) {
      this.stats.rxDropped++;
      return true;
    }
    if (!this.receiveFilter(f)) {
      this.stats.rxDropped++;
      return true;
    }
    if (!this.hasRxBufs(1)) return false;
    // The frame plus its FCS, unless the driver asked to strip it (SECRC).
    const total = f.length + ((m[r(E1000_RCTL)]! & E1000_RCTL_SECRC) !== 0 ? 0 : 4);
    if (!this.hasRxBufs(total)) {
      this.stats.rxDropped++;
      m[r(E1000_MPC)] = m[r(E1000_MPC)]! + 1;
      this.setInterruptCause(E1000_ICR_RXO | m[r(E1000_ICR)]!);
      return true;
    }
    const bufsz = this.rxBufSize();
    const base = this.ringBase(E1000_RDBAL, E1000_RDBAH);
    const n = m[r(E1000_RDLEN)]! / DESC_SIZE;
    const start = m[r(E1000_RDH)]!;
    // Descriptors take `total` bytes (the frame, then its FCS unless stripped); the FCS is
    // counted in the last descriptor's length but its bytes are not written (QEMU does the same).
    let off = 0;
    do {
      const head = m[r(E1000_RDH)]!;
      const addr = base + head * DESC_SIZE;
      const d = this.be.dmaRead(addr, DESC_SIZE);
      const dv = new DataView(d.buffer, d.byteOffset, DESC_SIZE);
      const buf = Number(dv.getBigUint64(0, true));
      const chunk = Math.min(bufsz, total - off);
      if (buf !== 0) {
        // ("Null RX descriptor": a zero buffer address is skipped and takes nothing.)
        const data = Math.max(0, Math.min(chunk, f.length - off));
        if (data > 0) {
          this.be.dmaWrite(buf, f.subarray(off, off + data));
          this.stats.dmaBytes += data;
        }
        off += chunk;
        dv.setUint16(8, chunk, true);
        d[12] = E1000_RXD_STAT_DD | (off >= total ? E1000_RXD_STAT_EOP : 0);
      } else {
        dv.setUint16(8, 0, true);
        d[12] = E1000_RXD_STAT_DD;
      }
      d[13] = 0;
      this.be.dmaWrite(addr, d);
      this.stats.dmaBytes += DESC_SIZE;
      this.stats.rxDescs++;
      let next = head + 1;
      if (next * DESC_SIZE >= m[r(E1000_RDLEN)]!) next = 0;
      m[r(E1000_RDH)] = next;
      if (next === start || start >= n) {
        // RDH wraparound: the frame did not fit where the driver said buffers were.
        this.stats.rxDropped++;
        this.setInterruptCause(E1000_ICR_RXO | m[r(E1000_ICR)]!);
        return true;
      }
    } while (off < total);
    this.stats.rxFrames++;
    m[r(E1000_GPRC)] = m[r(E1000_GPRC)]! + 1;
    m[r(E1000_TPR)] = m[r(E1000_TPR)]! + 1;
    const add64 = (lo: number, hi: number, v: number): void => {
      const t = m[r(lo)]! + v;
      m[r(lo)] = t >>> 0;
      if (t > 0xffffffff) m[r(hi)] = m[r(hi)]! + 1;
    };
    add64(E1000_GORCL, E1000_GORCH, f.length + 4);
    add64(E1000_TORL, E1000_TORH, f.length + 4);
    let cause = E1000_ICR_RXT0;
    let tail = m[r(E1000_RDT)]!;
    if (tail < m[r(E1000_RDH)]!) tail += n;
    const rdmts = (m[r(E1000_RCTL)]! >>> E1000_RCTL_RDMTS_SHIFT) & 3;
    if ((tail - m[r(E1000_RDH)]!) * DESC_SIZE <= m[r(E1000_RDLEN)]! >>> (rdmts + 1)) cause |= E1000_ICR_RXDMT0;
    this.setInterruptCause(cause | m[r(E1000_ICR)]!);
    return true;
  }
}
