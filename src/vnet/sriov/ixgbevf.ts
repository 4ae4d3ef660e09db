import { Deque, type Env, type ProcessGenerator } from '../../sim/index.js';
import {
  CSUM_NONE,
  CSUM_PARTIAL,
  CSUM_UNNECESSARY,
  GSO_NONE,
  GSO_TCPV4,
  NO_OFFLOADS,
  Packet,
  lroMerge,
  type DeviceFeatures,
  type DeviceUpper,
  type MacAddr,
  type Napi,
  type NetDevice,
  type PacketBuffer,
  type PacketMemory,
} from '../../net/index.js';
import { PAGE_SIZE } from '../../xen/abi/index.js';
import type { Vcpu } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { TP_RX_DELIVER, TP_TX_START } from '../trace-points.js';
import type { SriovCosts } from './costs.js';
import type { SriovNic, Vf } from './nic.js';
import * as R from './regs.js';

/** ixgbevf.h (Linux 3.18): IXGBEVF_DEFAULT_TXD 1024, IXGBEVF_DEFAULT_RXD 512. */
export const IXGBEVF_DEFAULT_TXD = 1024;
export const IXGBEVF_DEFAULT_RXD = 512;
/** IXGBEVF_RX_BUFFER_WRITE: refilled buffers are handed to the NIC (a tail write) every 16. */
const RX_BUFFER_WRITE = 16;
/** The RX buffer ixgbevf posts for a 1500-byte MTU (IXGBEVF_RXBUFFER_2K: half a page). */
const RX_BUFFER = 2048;
/** DESC_NEEDED = MAX_SKB_FRAGS + 4; the queue wakes at TX_WAKE_THRESHOLD = 2 × DESC_NEEDED. */
const DESC_NEEDED = 17 + 4;
const TX_WAKE_THRESHOLD = 2 * DESC_NEEDED;
/** q_vector->itr values (0.25 µs units; the EITR register takes them masked by IXGBE_MAX_EITR): IXGBE_100K_ITR, _20K_, _8K_. */
const ITR_100K = 40;
const ITR_20K = 200;
const ITR_8K = 500;
type Latency = 0 | 1 | 2; // lowest_latency, low_latency, bulk_latency

export interface IxgbevfStats {
  txPackets: number;
  txBytes: number;
  txDescs: number;
  /** Packets dropped by ixgbevf_xmit_frame (link down, not in the guest's memory, too many fragments). */
  txDropped: number;
  txStops: number;
  txWakes: number;
  tailWrites: number;
  rxPackets: number;
  rxBytes: number;
  /** Descriptors written back with an error (RXE: the NIC could not write the buffer) or a bad checksum. */
  rxErrors: number;
  rxCsumErrors: number;
  irqs: number;
  /** Writes to VF registers (all through the mapped BAR: none exits). */
  regWrites: number;
  itrChanges: number;
}

interface RingItr {
  bytes: number;
  packets: number;
  itr: Latency;
}

/**
 * Linux 3.18's ixgbevf (drivers/net/ethernet/intel/ixgbevf/ixgbevf_main.c) for an 82599 VF
 * passed through to an HVM guest: one queue pair and its MSI-X vector; the TX ring (1024
 * advanced descriptors) and the RX ring (512, each with a 2 KiB buffer) in the guest's own
 * memory; every register access a write to the VF's BAR, which Xen maps into the guest, so
 * none exits (each costs the vCPU an uncached write, `sriov.vf.regWrite`).
 *
 * - open (ixgbevf_open): the mailbox reset that gets the MAC from the PF, the rings' bases,
 *   lengths, heads and tails, RXDCTL/TXDCTL enable, the RX ring filled, EITR, VTEIMS;
 * - TX (ixgbevf_xmit_frame, ixgbevf_tso / ixgbevf_tx_csum, ixgbevf_tx_map): a context
 *   descriptor for a CHECKSUM_PARTIAL or GSO packet, one data descriptor per ≤ 16 KiB of each
 *   fragment, EOP|RS on the last, then the tail write (3.18's ixgbevf writes it per packet);
 * - the interrupt (ixgbevf_msix_clean_rings): napi_schedule (the vector auto-masks, EIAM);
 * - NAPI (ixgbevf_poll): TX descriptors with DD freed (ixgbevf_clean_tx_irq), RX descriptors
 *   with DD taken (ixgbevf_clean_rx_irq: checksum status, the buffer's bytes are the frame —
 *   the NIC wrote them there, nothing is copied), buffers re-posted with a tail write every
 *   16; at napi_complete the adaptive ITR (ixgbevf_set_itr / ixgbevf_update_itr, the default
 *   rx-usecs 1 = dynamic) and VTEIMS.
 *
 * Decisions: GRO is the model's LRO merge (as for the physical NIC's link end); it assembles
 * the merged packet in a new guest buffer, uncharged, standing for Linux's frag chaining
 * (which copies nothing). The ITR can be fixed with `itrUs` (ethtool -C rx-usecs).
 */
export class IxgbevfDriver implements NetDevice {
  readonly mtu = 1500;
  features: DeviceFeatures = NO_OFFLOADS;
  readonly stats: IxgbevfStats = {
    txPackets: 0,
    txBytes: 0,
    txDescs: 0,
    txDropped: 0,
    txStops: 0,
    txWakes: 0,
    tailWrites: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxErrors: 0,
    rxCsumErrors: 0,
    irqs: 0,
    regWrites: 0,
    itrChanges: 0,
  };
  readonly napi: Napi;
  mac: MacAddr;
  private upper: DeviceUpper | null = null;
  private up = false;
  private stopped = false;
  private txPage: Uint8Array = new Uint8Array(0);
  private rxPage: Uint8Array = new Uint8Array(0);
  private txGpa = 0;
  private rxGpa = 0;
  private readonly txBufs: ({ pkt: Packet; last: number } | null)[] = new Array<{ pkt: Packet; last: number } | null>(IXGBEVF_DEFAULT_TXD).fill(null);
  private txNtu = 0;
  private txNtc = 0;
  private readonly rxBufs: (PacketBuffer | null)[] = new Array<PacketBuffer | null>(IXGBEVF_DEFAULT_RXD).fill(null);
  private rxNtu = 0;
  private rxNtc = 0;
  private rxCleaned = 0;
  /** Frames taken from the ring in this poll and not yet handed up (GRO looks across them). */
  private readonly ready = new Deque<Packet>();
  private q = ITR_20K;
  private readonly rxItr: RingItr = { bytes: 0, packets: 0, itr: 0 };
  private readonly txItr: RingItr = { bytes: 0, packets: 0, itr: 0 };

  constructor(
    private readonly env: Env,
    readonly name: string,
    private readonly xg: XenGuest,
    private readonly vcpu: Vcpu,
    private readonly memory: PacketMemory,
    private readonly nic: SriovNic,
    private readonly vf: Vf,
    /** The guest vector of the queue's MSI-X entry. */
    private readonly vector: number,
    private readonly costs: SriovCosts,
    /** A fixed interrupt interval in µs (ethtool rx-usecs > 1), or null for the adaptive default. */
    private readonly itrUs: number | null = null,
  ) {
    this.mac = vf.mac ?? 0;
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  get linkUp(): boolean {
    return this.up;
  }

  /** A register write through the mapped BAR: the vCPU's uncached store, then the NIC has it when it crosses PCIe. */
  private wr(off: number, v: number): void {
    this.stats.regWrites++;
    this.vcpu.exec(this.costs.regWrite, 'softirq');
    this.nic.regWrite(this.vf, off, v);
  }

  /** ixgbevf_probe + ixgbevf_open; returns false if the PF gave no MAC (ixgbevf refuses a VF without one here). */
  *open(): ProcessGenerator<boolean> {
    // ixgbevf_reset_hw_vf: IXGBE_VF_RESET through the mailbox; the PF answers with the MAC.
    const mac = this.nic.mailbox(this.vf);
    yield this.vcpu.exec(this.costs.regWrite * 4, 'kernel');
    if (mac === null) return false;
    this.mac = mac;
    const tn = (IXGBEVF_DEFAULT_TXD * R.DESC_SIZE) / PAGE_SIZE;
    const rn = (IXGBEVF_DEFAULT_RXD * R.DESC_SIZE) / PAGE_SIZE;
    const tg = this.xg.frames.allocRun(tn);
    const rg = this.xg.frames.allocRun(rn);
    if (tg === null || rg === null) throw new Error(`${this.name}: no guest frames for the descriptor rings (guest memory exhausted)`);
    this.txPage = this.xg.mem.ramSpan(tg, tn)!;
    this.rxPage = this.xg.mem.ramSpan(rg, rn)!;
    this.txPage.fill(0);
    this.rxPage.fill(0);
    this.txGpa = tg * PAGE_SIZE;
    this.rxGpa = rg * PAGE_SIZE;
    this.xg.domain.idt.set(this.vector, (v) => this.intr(v));
    // ixgbevf_configure_tx_ring.
    this.wr(R.IXGBE_VFTXDCTL0, 0);
    this.wr(R.IXGBE_VFTDBAL0, this.txGpa >>> 0);
    this.wr(R.IXGBE_VFTDBAH0, Math.floor(this.txGpa / 2 ** 32));
    this.wr(R.IXGBE_VFTDLEN0, IXGBEVF_DEFAULT_TXD * R.DESC_SIZE);
    this.wr(R.IXGBE_VFTDH0, 0);
    this.wr(R.IXGBE_VFTDT0, 0);
    this.wr(R.IXGBE_VFTXDCTL0, R.IXGBE_XDCTL_ENABLE);
    // ixgbevf_configure_rx_ring.
    this.wr(R.IXGBE_VFRXDCTL0, 0);
    this.wr(R.IXGBE_VFRDBAL0, this.rxGpa >>> 0);
    this.wr(R.IXGBE_VFRDBAH0, Math.floor(this.rxGpa / 2 ** 32));
    this.wr(R.IXGBE_VFRDLEN0, IXGBEVF_DEFAULT_RXD * R.DESC_SIZE);
    this.wr(R.IXGBE_VFRDH0, 0);
    this.wr(R.IXGBE_VFRDT0, 0);
    this.wr(R.IXGBE_VFRXDCTL0, R.IXGBE_XDCTL_ENABLE);
    this.features = { ...NO_OFFLOADS, txCsum: true, rxCsum: true, sg: true, tso: true, lro: true };
    this.fillRx();
    this.writeRdt();
    this.q = this.itrUs !== null ? this.itrUs * 4 : ITR_20K;
    this.wr(R.IXGBE_VTEITR0, this.q & R.IXGBE_MAX_EITR);
    this.wr(R.IXGBE_VTEIMS, 1);
    // Let the set-up writes reach the NIC before traffic.
    yield this.env.timeout(this.costs.pcie.writeLatency * 4);
    this.up = true;
    return true;
  }

  /** ixgbevf_down's data-path half: queues and the vector off, buffers freed. */
  *close(): ProcessGenerator<void> {
    this.up = false;
    this.wr(R.IXGBE_VTEIMC, 1);
    this.wr(R.IXGBE_VFRXDCTL0, 0);
    this.wr(R.IXGBE_VFTXDCTL0, 0);
    yield this.env.timeout(this.costs.pcie.writeLatency * 2);
    this.xg.domain.idt.delete(this.vector);
    for (let i = 0; i < this.txBufs.length; i++) {
      this.txBufs[i]?.pkt.release();
      this.txBufs[i] = null;
    }
    for (let p = this.ready.shift(); p !== undefined; p = this.ready.shift()) p.release();
    for (let i = 0; i < this.rxBufs.length; i++) {
      this.rxBufs[i]?.put();
      this.rxBufs[i] = null;
    }
  }

  // ---- TX ----------------------------------------------------------------------------------

  private txUnused(): number {
    const n = IXGBEVF_DEFAULT_TXD;
    return this.txNtc > this.txNtu ? this.txNtc - this.txNtu - 1 : n + this.txNtc - this.txNtu - 1;
  }

  private putDesc(i: number, addr: number, w2: number, w3: number): void {
    const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
    dv.setBigUint64(0, BigInt(addr), true);
    dv.setUint32(8, w2 >>> 0, true);
    dv.setUint32(12, w3 >>> 0, true);
  }

  xmit(pkt: Packet): boolean {
    const frags = pkt.fragments();
    if (!this.up || frags === null || frags.some((f) => f.buf.domid !== this.xg.domid)) {
      this.stats.txDropped++;
      pkt.release();
      return true;
    }
    const gso = pkt.gsoType === GSO_TCPV4;
    const csum = pkt.csum === CSUM_PARTIAL || gso;
    let needed = csum ? 1 : 0;
    for (const f of frags) needed += Math.max(1, Math.ceil(f.len / R.IXGBE_MAX_DATA_PER_TXD));
    if (needed > R.IXGBE_MAX_TX_DESC_PER_PACKET + (csum ? 1 : 0)) {
      // skb_linearize would be needed; the model's stack never builds such a packet.
      this.stats.txDropped++;
      pkt.release();
      return true;
    }
    // ixgbevf_maybe_stop_tx.
    if (this.stopped || this.txUnused() < needed + 3) {
      if (!this.stopped) this.stats.txStops++;
      this.stopped = true;
      return false;
    }
    const n = IXGBEVF_DEFAULT_TXD;
    const first = this.txNtu;
    let i = first;
    let popts = 0;
    let tse = 0;
    if (csum) {
      const maclen = pkt.l3;
      const iplen = pkt.csumStart - pkt.l3;
      const tcp = pkt.csumOffset === 16;
      let mssL4 = 0;
      if (gso) {
        const l4len = (pkt.data[pkt.csumStart + 12]! >>> 4) * 4;
        mssL4 = (pkt.gsoSize << R.IXGBE_ADVTXD_MSS_SHIFT) | (l4len << R.IXGBE_ADVTXD_L4LEN_SHIFT);
        tse = R.IXGBE_ADVTXD_DCMD_TSE;
      }
      const tucmd =
        R.IXGBE_ADVTXD_TUCMD_IPV4 |
        (tcp ? R.IXGBE_ADVTXD_TUCMD_L4T_TCP : 0) |
        (R.IXGBE_ADVTXD_DTYP_CTXT << R.IXGBE_ADVTXD_DTYP_SHIFT) |
        R.IXGBE_TXD_CMD_DEXT;
      const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      dv.setUint32(0, (iplen | (maclen << R.IXGBE_ADVTXD_MACLEN_SHIFT)) >>> 0, true);
      dv.setUint32(4, 0, true);
      dv.setUint32(8, tucmd >>> 0, true);
      dv.setUint32(12, mssL4 >>> 0, true);
      i = (i + 1) % n;
      popts = R.IXGBE_ADVTXD_POPTS_TXSM;
    }
    const paylen = gso ? pkt.length - (pkt.csumStart + (pkt.data[pkt.csumStart + 12]! >>> 4) * 4) : pkt.length;
    const dcmd = (R.IXGBE_ADVTXD_DTYP_DATA << R.IXGBE_ADVTXD_DTYP_SHIFT) | R.IXGBE_TXD_CMD_DEXT | R.IXGBE_TXD_CMD_IFCS | tse;
    let last = i;
    let firstData = true;
    for (const f of frags) {
      let gpa = f.buf.gfn * PAGE_SIZE + f.buf.offset + f.bufOffset;
      let left = f.len;
      while (left > 0) {
        const len = Math.min(left, R.IXGBE_MAX_DATA_PER_TXD);
        this.putDesc(i, gpa, dcmd | len, firstData ? popts | (paylen << R.IXGBE_ADVTXD_PAYLEN_SHIFT) : 0);
        firstData = false;
        last = i;
        i = (i + 1) % n;
        gpa += len;
        left -= len;
      }
    }
    const dv = new DataView(this.txPage.buffer, this.txPage.byteOffset + last * R.DESC_SIZE, R.DESC_SIZE);
    dv.setUint32(8, (dv.getUint32(8, true) | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS) >>> 0, true);
    this.txBufs[first] = { pkt, last };
    this.txNtu = i;
    this.stats.txPackets++;
    this.stats.txBytes += pkt.length;
    this.stats.txDescs += needed;
    const tr = this.env.trace;
    if (tr.enabled(TP_TX_START))
      tr.emit(TP_TX_START, { path: 'sriov', domid: this.xg.domid, dev: this.name, len: pkt.length, vcpu: this.vcpu.name, frame: pkt.data });
    this.vcpu.exec(this.costs.xmitFrame, 'softirq');
    // The tail doorbell: a write to the mapped BAR, no exit.
    this.stats.tailWrites++;
    this.wr(R.IXGBE_VFTDT0, this.txNtu);
    if (this.txUnused() < DESC_NEEDED) {
      this.stopped = true;
      this.stats.txStops++;
    }
    return true;
  }

  /** ixgbevf_clean_tx_irq. */
  private cleanTx(): void {
    const n = IXGBEVF_DEFAULT_TXD;
    let cleaned = 0;
    while (this.txNtc !== this.txNtu) {
      const b = this.txBufs[this.txNtc];
      if (b === null || b === undefined) {
        this.txNtc = (this.txNtc + 1) % n;
        cleaned++;
        continue;
      }
      if ((this.txPage[b.last * R.DESC_SIZE + 12]! & R.IXGBE_TXD_STAT_DD) === 0) break;
      this.txItr.bytes += b.pkt.length;
      this.txItr.packets++;
      b.pkt.release();
      this.txBufs[this.txNtc] = null;
      const end = (b.last + 1) % n;
      cleaned += (end - this.txNtc + n) % n;
      this.txNtc = end;
    }
    if (cleaned > 0) this.vcpu.exec(this.costs.cleanTx * cleaned, 'softirq');
    if (this.stopped && this.txUnused() >= TX_WAKE_THRESHOLD) {
      this.stopped = false;
      this.stats.txWakes++;
      this.upper?.wake();
    }
  }

  // ---- interrupt ---------------------------------------------------------------------------

  /** ixgbevf_msix_clean_rings. */
  private *intr(v: Vcpu): ProcessGenerator<void> {
    this.stats.irqs++;
    yield v.exec(this.costs.driverIrq, 'irq');
    if (this.up) this.upper?.napiSchedule(this.napi);
  }

  // ---- RX ----------------------------------------------------------------------------------

  private rxUnused(): number {
    const n = IXGBEVF_DEFAULT_RXD;
    return this.rxNtc > this.rxNtu ? this.rxNtc - this.rxNtu - 1 : n + this.rxNtc - this.rxNtu - 1;
  }

  /** ixgbevf_alloc_rx_buffers' memory half: a buffer into every free slot; returns whether the tail must move. */
  private fillRx(): boolean {
    let count = this.rxUnused();
    if (count === 0) return false;
    const n = IXGBEVF_DEFAULT_RXD;
    while (count-- > 0) {
      const i = this.rxNtu;
      const buf = this.memory.alloc(RX_BUFFER);
      this.rxBufs[i] = buf;
      const dv = new DataView(this.rxPage.buffer, this.rxPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      dv.setBigUint64(0, BigInt(buf.gfn * PAGE_SIZE + buf.offset), true);
      dv.setBigUint64(8, 0n, true);
      this.rxNtu = (i + 1) % n;
    }
    return true;
  }

  /** ixgbevf_release_rx_desc: the tail is next_to_use. */
  private writeRdt(): void {
    this.stats.tailWrites++;
    this.wr(R.IXGBE_VFRDT0, this.rxNtu);
  }

  private refill(): void {
    this.rxCleaned = 0;
    if (this.fillRx()) this.writeRdt();
  }

  /**
   * One packet for the stack (ixgbevf_poll: the TX ring cleaned first, then
   * ixgbevf_clean_rx_irq with napi_gro_receive): the frames the ring holds now are taken, and
   * GRO merges a TCP flow's in-order segments among them into one packet, as the physical
   * NIC's link end does (src/net/iface/lro.ts, the same rules as tcp_gro_receive).
   */
  private poll(): Packet | undefined {
    if (!this.up) return undefined;
    if (this.ready.length === 0) {
      this.cleanTx();
      for (let p = this.take(); p !== undefined; p = this.take()) this.ready.push(p);
    }
    const first = this.ready.shift();
    if (first === undefined) return undefined;
    return lroMerge(first, this.ready, this.memory);
  }

  /** One frame of ixgbevf_clean_rx_irq. */
  private take(): Packet | undefined {
    const n = IXGBEVF_DEFAULT_RXD;
    for (;;) {
      const i = this.rxNtc;
      const dv = new DataView(this.rxPage.buffer, this.rxPage.byteOffset + i * R.DESC_SIZE, R.DESC_SIZE);
      const status = dv.getUint32(8, true);
      if ((status & R.IXGBE_RXD_STAT_DD) === 0) return undefined;
      const length = dv.getUint16(12, true);
      const buf = this.rxBufs[i];
      this.rxBufs[i] = null;
      this.rxNtc = (i + 1) % n;
      this.vcpu.exec(this.costs.cleanRx, 'softirq');
      if (++this.rxCleaned >= RX_BUFFER_WRITE) this.refill();
      if (buf === null || buf === undefined) continue;
      if ((status & R.IXGBE_RXDADV_ERR_RXE) !== 0 || (status & R.IXGBE_RXD_STAT_EOP) === 0 || length < 14 || length > RX_BUFFER) {
        this.stats.rxErrors++;
        buf.put();
        continue;
      }
      const pkt = new Packet(buf.bytes.subarray(0, length), buf, 0);
      // ixgbevf_rx_checksum: L4CS without TCPE → CHECKSUM_UNNECESSARY.
      if ((status & R.IXGBE_RXD_STAT_L4CS) !== 0) {
        if ((status & R.IXGBE_RXDADV_ERR_TCPE) !== 0) {
          this.stats.rxCsumErrors++;
          pkt.csum = CSUM_NONE;
        } else pkt.csum = CSUM_UNNECESSARY;
      } else pkt.csum = CSUM_NONE;
      pkt.gsoType = GSO_NONE;
      this.stats.rxPackets++;
      this.stats.rxBytes += length;
      this.rxItr.bytes += length;
      this.rxItr.packets++;
      const tr = this.env.trace;
      if (tr.enabled(TP_RX_DELIVER))
        tr.emit(TP_RX_DELIVER, { path: 'sriov', domid: this.xg.domid, dev: this.name, len: length, vcpu: this.vcpu.name, frame: pkt.data });
      return pkt;
    }
  }

  /** napi_complete: the refill, ixgbevf_set_itr (adaptive), then the vector re-enabled (VTEIMS). */
  private complete(): void {
    this.cleanTx();
    this.refill();
    if (this.itrUs === null) this.setItr();
    if (this.up) this.wr(R.IXGBE_VTEIMS, 1);
  }

  /** ixgbevf_update_itr: bytes per µs of the last interval move the ring between latency classes. */
  private updateItr(r: RingItr): void {
    if (r.packets === 0) return;
    const perUs = r.bytes / Math.max(1, this.q >> 2);
    if (r.itr === 0) {
      if (perUs > 10) r.itr = 1;
    } else if (r.itr === 1) {
      if (perUs > 20) r.itr = 2;
      else if (perUs <= 10) r.itr = 0;
    } else if (perUs <= 20) r.itr = 1;
    r.bytes = 0;
    r.packets = 0;
  }

  private setItr(): void {
    this.updateItr(this.txItr);
    this.updateItr(this.rxItr);
    const cur = Math.max(this.rxItr.itr, this.txItr.itr);
    let next = cur === 0 ? ITR_100K : cur === 1 ? ITR_20K : ITR_8K;
    if (next !== this.q) {
      // The smoothing of ixgbevf_set_itr: move part of the way.
      next = Math.floor((10 * next * this.q) / (9 * next + this.q));
      this.q = next;
      this.stats.itrChanges++;
      this.wr(R.IXGBE_VTEITR0, this.q & R.IXGBE_MAX_EITR);
    }
  }
}
