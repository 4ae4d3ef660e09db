import { Deque, type Env } from '../../sim/index.js';
import {
  CSUM_NONE,
  CSUM_PARTIAL,
  CSUM_UNNECESSARY,
  GSO_NONE,
  GSO_TCPV4,
  NO_OFFLOADS,
  Packet,
  type DeviceFeatures,
  type DeviceUpper,
  type MacAddr,
  type Napi,
  type NetDevice,
} from '../../net/index.js';
import type { BridgePortHandle } from '../path.js';
import type { SriovCosts } from './costs.js';
import type { SriovNic } from './nic.js';
import { IXGBE_RXD_STAT_L4CS, IXGBE_RXDADV_ERR_TCPE } from './regs.js';
import { rxChecksumStatus } from './nic.js';

export interface PfStats {
  txPackets: number;
  /** Packets refused because the PF's TX ring was full (the bridge's qdisc holds them). */
  txBusy: number;
  rxFrames: number;
  /** Frames dropped: the PF's RX ring full (rx_missed_errors). */
  rxDropped: number;
  irqs: number;
}

/**
 * The physical function as Dom0 sees it: ixgbe's netdev for the port, a port of Dom0's bridge
 * (how an SR-IOV guest meets a pv or emulated guest of the same host). Its TX DMA-reads the
 * frame from Dom0's memory over the NIC's PCIe link and gives it to the switch; frames the
 * switch sends to the PF pool are DMA-written into Dom0 buffers, then ixgbe's interrupt and
 * NAPI on Dom0's CPU. Its rings are the physical port's (phys.nic.txRing/rxRing) and so are
 * its driver costs (phys.nic.*). Dom0's DMA is not translated (the hardware domain's IOMMU
 * context is the identity map in Xen 4.5's default, iommu=dom0-passthrough off being
 * irrelevant here: Dom0's buffers are its own).
 */
export class PfDevice implements NetDevice {
  readonly mtu = 1500;
  readonly features: DeviceFeatures = { ...NO_OFFLOADS, txCsum: true, rxCsum: true, sg: true, tso: true };
  readonly stats: PfStats = { txPackets: 0, txBusy: 0, rxFrames: 0, rxDropped: 0, irqs: 0 };
  readonly napi: Napi;
  private upper: DeviceUpper | null = null;
  private inFlight = 0;
  private stopped = false;
  private readonly rx = new Deque<Packet>();
  private masked = false;
  /** The bridge port the PF is (set once by the path). */
  port: BridgePortHandle | null = null;
  bridge = '';

  constructor(
    private readonly env: Env,
    readonly name: string,
    readonly mac: MacAddr,
    private readonly nic: SriovNic,
    private readonly costs: SriovCosts,
    private readonly txRing = 512,
    private readonly rxRing = 512,
  ) {
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
  }

  setBridge(port: BridgePortHandle, bridge: string): void {
    this.port = port;
    this.bridge = bridge;
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  xmit(pkt: Packet): boolean {
    if (this.inFlight >= this.txRing) {
      this.stopped = true;
      this.stats.txBusy++;
      return false;
    }
    this.inFlight++;
    this.stats.txPackets++;
    this.upper?.cpu.exec(this.costs.pfTxPacket, 'softirq');
    const bytes = gather(pkt);
    const csum = pkt.csum;
    const gso = pkt.gsoType;
    const ctx = { maclen: pkt.l3, iplen: pkt.csumStart - pkt.l3, tcp: pkt.csumOffset === 16, mss: pkt.gsoSize };
    const now = this.env.now;
    const t = this.nic.pcie.read(now, bytes.length);
    this.env.timeout(Math.max(0, Math.ceil(t - now))).addCallback(() => {
      pkt.release();
      this.inFlight--;
      if (this.stopped && this.inFlight < this.txRing) {
        this.stopped = false;
        this.upper?.wake();
      }
      const frames = csum === CSUM_PARTIAL || gso === GSO_TCPV4 ? this.nic.buildFrames(bytes, ctx, gso === GSO_TCPV4, 1 << 9) : [bytes];
      for (const f of frames) this.nic.fromPf(f);
    });
    return true;
  }

  /** A frame the switch sent to the PF's pool: DMA into a Dom0 buffer, then the interrupt. */
  receiveFromVeb(bytes: Uint8Array): void {
    const t = this.nic.pcie.write(this.env.now, bytes.length);
    this.env.timeout(Math.max(0, Math.ceil(t - this.env.now))).addCallback(() => {
      if (this.upper === null) return;
      if (this.rx.length >= this.rxRing) {
        this.stats.rxDropped++;
        return;
      }
      const p = Packet.alloc(this.upper.memory, bytes.length);
      p.data.set(bytes);
      const st = rxChecksumStatus(bytes);
      p.csum = (st & IXGBE_RXD_STAT_L4CS) !== 0 && (st & IXGBE_RXDADV_ERR_TCPE) === 0 ? CSUM_UNNECESSARY : CSUM_NONE;
      p.gsoType = GSO_NONE;
      this.rx.push(p);
      this.stats.rxFrames++;
      if (!this.masked) this.raise();
    });
  }

  private raise(): void {
    this.masked = true;
    this.stats.irqs++;
    this.upper!.cpu.exec(this.costs.pfIrq, 'irq').addCallback(() => this.upper!.napiSchedule(this.napi));
  }

  private poll(): Packet | undefined {
    const p = this.rx.shift();
    if (p !== undefined) this.upper!.cpu.exec(this.costs.pfRxPacket, 'softirq');
    return p;
  }

  private complete(): void {
    this.masked = false;
    if (this.rx.length > 0) this.raise();
  }
}

/** A packet's bytes as one array (its fragments concatenated: what the NIC's DMA gathers). */
export function gather(pkt: Packet): Uint8Array {
  const fr = pkt.frags;
  if (fr === null) return pkt.data.slice();
  let n = 0;
  for (const f of fr) n += f.len;
  const out = new Uint8Array(n);
  let o = 0;
  for (const f of fr) {
    out.set(f.buf.bytes.subarray(f.bufOffset, f.bufOffset + f.len), o);
    o += f.len;
  }
  return out;
}
