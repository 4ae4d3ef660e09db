import { Deque, SimEvent, type Env, type ProcessGenerator } from '../../sim/index.js';
import {
  CSUM_NONE,
  CSUM_PARTIAL,
  GSO_TCPV4,
  HEAP_MEMORY,
  IP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  LinkEnd,
  Packet,
  WireError,
  completeChecksum,
  gsoSegment,
  l4ChecksumValid,
  parseIpv4,
  type MacAddr,
} from '../../net/index.js';
import { isIommuFault, type Domain, type Hypervisor, type PtMsiBinding } from '../../xen/index.js';
import type { SriovCosts } from './costs.js';
import { PcieLink } from './pcie.js';
import { PfDevice } from './pf.js';
import * as R from './regs.js';
import type { WirePort } from '../phys/index.js';

/** Descriptors the NIC fetches for a TX queue at once: enough for any legal packet (40 data + a context descriptor). */
const TX_FETCH = R.IXGBE_MAX_TX_DESC_PER_PACKET + 1;
/** Descriptors the NIC prefetches for an RX queue at once (RXDCTL.PTHRESH as ixgbevf leaves it, 32). */
const RX_FETCH = 32;
/** Largest frame a VF may send without TSO: 1500-byte MTU + Ethernet header (VFLRE not set: no jumbo). */
const MAX_FRAME = 1514;
const BROADCAST: MacAddr = 0xffffffffffff;

export interface VfStats {
  /** Packets the NIC took from the TX ring (a TSO packet is one) and the frames they made on the switch. */
  txPackets: number;
  txFrames: number;
  txBytes: number;
  /** TX doorbells (tail writes) that reached the NIC. */
  doorbells: number;
  /** Packets dropped because a buffer address faulted in the IOMMU (no byte read). */
  txIommuFaults: number;
  /** Malformed descriptor chains: the queue was stopped (malicious driver detection), the PF told. */
  txMalformed: number;
  /** Frames whose source MAC was not the VF's (MAC anti-spoofing): dropped. */
  txSpoofed: number;
  /** Frames written into the guest's RX buffers. */
  rxFrames: number;
  rxBytes: number;
  /** Frames dropped: no RX descriptor posted for them (SRRCTL.DROP_EN), or the queue off. */
  rxNoDesc: number;
  /** Frames dropped: the NIC's RX packet buffer full. */
  rxOverflow: number;
  /** Frames dropped because the posted buffer's address faulted in the IOMMU (descriptor written back with RXE). */
  rxIommuFaults: number;
  /** The descriptor ring itself faulted: the queue stopped. */
  ringFaults: number;
  /** Packet data moved over PCIe: TX reads (one per packet) and RX writes (one per frame). */
  dataReads: number;
  dataWrites: number;
  /** MSI-X messages sent. */
  msix: number;
}

/** A packet the TX engine parsed from fetched descriptors, to be read. */
interface TxPlan {
  bufs: { addr: number; len: number }[];
  total: number;
  ctx: { maclen: number; iplen: number; tcp: boolean; mss: number } | null;
  tse: boolean;
  olinfo: number;
  last: number;
  rs: boolean;
}

type Port = { kind: 'vf'; vf: Vf } | { kind: 'pf' } | { kind: 'wire' };

/** What a frame in the NIC's packet buffer carries besides its bytes. */
interface NicFrame {
  bytes: Uint8Array;
}

/**
 * One virtual function: its queue pair's registers (programmed by the guest's driver through
 * the BAR Xen maps into it), its pool in the switch (its MAC filter), its MSI-X vector and
 * interrupt moderation. Rings and buffers are in the owner's memory, reached only through the
 * IOMMU with the VF's BDF.
 */
export class Vf {
  readonly stats: VfStats = {
    txPackets: 0,
    txFrames: 0,
    txBytes: 0,
    doorbells: 0,
    txIommuFaults: 0,
    txMalformed: 0,
    txSpoofed: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxNoDesc: 0,
    rxOverflow: 0,
    rxIommuFaults: 0,
    ringFaults: 0,
    dataReads: 0,
    dataWrites: 0,
    msix: 0,
  };
  /** The MAC the PF set for this VF (ip link set PF vf N mac …); the switch's filter for its pool. */
  mac: MacAddr | null = null;
  owner: Domain | null = null;
  msi: PtMsiBinding | null = null;
  // Registers.
  tdba = 0;
  tdlen = 0;
  tdh = 0;
  tdt = 0;
  txEnabled = false;
  rdba = 0;
  rdlen = 0;
  rdh = 0;
  rdt = 0;
  rxEnabled = false;
  eitr = 0;
  /** VTEIMS/VTEIMC: the vector's interrupt enabled (auto-masked when it fires, EIAM). */
  irqEnabled = false;
  /** A queue stopped by the NIC (malformed chain, ring fault) until the VF is reset. */
  txStopped = false;
  rxStopped = false;
  // NIC-internal state.
  txRunning = false;
  rxRunning = false;
  readonly rxq = new Deque<NicFrame>();
  rxqBytes = 0;
  /** RX descriptors fetched and not yet used: ring index and buffer address. */
  readonly rxCache = new Deque<{ i: number; addr: number }>();
  rxFetched = 0;
  causePending = false;
  irqTimerAt: number | null = null;
  lastIrq = -Infinity;
  /** When the TX engine's last issued data read completes. */
  txDataAt = 0;

  constructor(
    readonly index: number,
    readonly bdf: string,
  ) {}

  get txCount(): number {
    return this.tdlen / R.DESC_SIZE;
  }
  get rxCount(): number {
    return this.rdlen / R.DESC_SIZE;
  }
}

export interface SriovNicStats {
  /** Frames the switch forwarded (each copy of a replicated frame counts). */
  vebFrames: number;
  broadcasts: number;
  toWire: number;
  fromWire: number;
  /** Frames for the wire dropped: no cable, or the port's TX ring full. */
  wireDropped: number;
  /** Frames from the wire or the PF that matched no pool. */
  unmatched: number;
  toPf: number;
  fromPf: number;
  /** Malicious-driver-detection events the PF was told of. */
  mddEvents: number;
  /** Mailbox messages VFs sent to the PF. */
  mailbox: number;
}

/**
 * An 82599-class SR-IOV NIC (one port): the physical function, owned by Dom0's ixgbe (set-up
 * only: enabling VFs, their MAC filters, the PF–VF mailbox; and a port of Dom0's bridge), the
 * virtual functions, the embedded switch (VEB) among the VFs' pools, the PF and the wire port,
 * and the PCIe link all functions share.
 *
 * Per frame VF→VF: the tail doorbell crosses PCIe (downstream), the NIC fetches descriptors
 * and reads the buffers (DMA reads through the IOMMU), segments a TSO packet and completes
 * checksums, the VEB forwards by destination MAC (broadcast and multicast to every other pool
 * and the wire, as the 82599 replicates them; unknown unicast to the wire), the destination
 * VF's RX engine DMA-writes the frame into a buffer its driver posted, writes the descriptor
 * back, and its MSI-X message (a DMA write) reaches Xen as a physical interrupt, moderated by
 * the EITR interval the driver programs. A descriptor or buffer address outside the owner's
 * memory faults in the IOMMU: dropped and counted, nothing touched. A malformed TX chain stops
 * only that VF's TX queue (the 82599's malicious driver detection) and is reported to the PF.
 *
 * The NIC's own work (descriptor handling, the switch's per-frame pipeline) is charged to the
 * host's `nic` device row, apart from every CPU.
 */
export class SriovNic {
  readonly stats: SriovNicStats = {
    vebFrames: 0,
    broadcasts: 0,
    toWire: 0,
    fromWire: 0,
    wireDropped: 0,
    unmatched: 0,
    toPf: 0,
    fromPf: 0,
    mddEvents: 0,
    mailbox: 0,
  };
  readonly pcie: PcieLink;
  readonly vfs: Vf[] = [];
  /** The 82599's wire port: the other end of the host's cable. */
  readonly wire: LinkEnd;
  readonly pf: PfDevice;
  /** MACs the PF's pool accepts besides its own (stations behind Dom0's bridge: `bridge fdb add MAC dev PF self`). */
  readonly pfFilter = new Set<MacAddr>();
  private vebFree = 0;
  /** Bytes of frames waiting in the RX packet buffer for descriptors, all pools together. */
  private rxHeld = 0;
  /** TX engines waiting for room in the RX packet buffer (the switch's loopback path is full). */
  private spaceWaiters: SimEvent<void>[] = [];
  private readonly deviceName: string;
  /** How far ahead of now a TX engine's outstanding reads may reach, ns. */
  private readonly readWindow: number;
  /** How much posted-write time the RX engine lets queue on the link before it waits, ns (four full TLPs). */
  private readonly writeAhead: number;

  constructor(
    private readonly env: Env,
    private readonly hv: Hypervisor,
    readonly name: string,
    /** The PCI address of the PF (bus:dev.fn); VFs are numbered after it. */
    readonly pfBdf: string,
    pfMac: MacAddr,
    readonly costs: SriovCosts,
    rng: ReturnType<Env['rng']['fork']>,
  ) {
    this.pcie = new PcieLink(costs.pcie);
    this.readWindow = costs.pcie.readLatency;
    this.writeAhead = 4 * (costs.pcie.maxPayload + costs.pcie.tlpOverhead) * costs.pcie.nsPerByte;
    this.deviceName = 'nic';
    this.pf = new PfDevice(env, `${name}`, pfMac, this, costs);
    this.wire = new LinkEnd(env, `${name}.wire`, pfMac, costs.wire, rng);
    this.wire.attach({
      cpu: { exec: (ns) => env.timeout(ns) },
      memory: HEAP_MEMORY,
      napiSchedule: (napi) => {
        for (let p = napi.poll(); p !== undefined; p = napi.poll()) this.fromWire(p);
        napi.complete();
      },
      receive: (p) => this.fromWire(p),
      wake: () => undefined,
    });
  }

  /** The wire port as a cable sees it. */
  get wirePort(): WirePort {
    const end = this.wire;
    return {
      name: end.name,
      end,
      get connected() {
        return end.peer !== null;
      },
    };
  }

  /** pci_enable_sriov from the PF driver (ixgbe max_vfs): `n` more VFs, at 82599 VF routing IDs (device 0x10, function = VF index mod 8). */
  enableVfs(n: number): void {
    const [bus] = this.pfBdf.split(':') as [string];
    for (let i = 0; i < n; i++) {
      const k = this.vfs.length;
      const dev = 0x10 + Math.floor(k / 8);
      this.vfs.push(new Vf(k, `${bus}:${dev.toString(16).padStart(2, '0')}.${k % 8}`));
    }
  }

  vfByBdf(bdf: string): Vf | undefined {
    return this.vfs.find((v) => v.bdf === bdf.replace(/^0000:/, '').toLowerCase());
  }

  /** Dom0's PF driver sets a VF's MAC (ixgbe_ndo_set_vf_mac) — the switch's filter for its pool. */
  setVfMac(vf: Vf, mac: MacAddr): void {
    vf.mac = mac;
  }

  /**
   * The VF is assigned to `d` (xl pci-attach: pciback, XEN_DOMCTL_assign_device): its DMA is
   * translated in `d`'s IOMMU context, its MSI-X vector bound to guest vector `gvec`.
   */
  assignVf(vf: Vf, d: Domain, gvec: number): void {
    if (vf.owner !== null) throw new Error(`${this.name}: VF ${vf.bdf} is already assigned to ${vf.owner.name}`);
    vf.owner = d;
    this.hv.iommu.assign(vf.bdf, d);
    vf.msi = this.hv.pt.bindMsi(d, vf.bdf, 0, gvec, 0);
  }

  /** Takes the VF back from its guest (xl pci-detach): queues off, IOMMU context and interrupt binding gone. */
  releaseVf(vf: Vf): void {
    this.resetVf(vf);
    if (vf.msi !== null) this.hv.pt.unbind(vf.msi);
    vf.msi = null;
    this.hv.iommu.deassign(vf.bdf);
    vf.owner = null;
  }

  /** A function-level reset of the VF's queues (VFLR, or IXGBE_VF_RESET through the mailbox). */
  resetVf(vf: Vf): void {
    vf.tdba = vf.tdlen = vf.tdh = vf.tdt = 0;
    vf.rdba = vf.rdlen = vf.rdh = vf.rdt = 0;
    vf.txEnabled = vf.rxEnabled = vf.irqEnabled = false;
    vf.txStopped = vf.rxStopped = false;
    vf.rxq.clear();
    this.rxHeld -= vf.rxqBytes;
    vf.rxqBytes = 0;
    vf.rxCache.clear();
    vf.rxFetched = 0;
    vf.causePending = false;
  }

  /** A VF-to-PF mailbox message (ixgbevf's reset, set-MAC): handled by the PF driver in Dom0; returns the VF's MAC. */
  mailbox(vf: Vf): MacAddr | null {
    this.stats.mailbox++;
    return vf.mac;
  }

  /** Room in the RX packet buffer for the switch to loop a packet's frames back into. */
  private hasSpace(): boolean {
    return this.rxHeld <= this.costs.rxBuffer / 2;
  }

  private spaceFreed(): void {
    if (this.spaceWaiters.length === 0 || !this.hasSpace()) return;
    const w = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const e of w) e.succeed();
  }

  private busy(ns: number): void {
    this.hv.acct.chargeDevice(this.deviceName, ns);
  }

  private waitUntil(t: number) {
    return this.env.timeout(Math.max(0, Math.ceil(t - this.env.now)));
  }

  private at(t: number, f: () => void): void {
    this.env.timeout(Math.max(0, Math.ceil(t - this.env.now))).addCallback(f);
  }

  // ---- the BAR: register writes from the guest (mapped, no exit) -----------------------------

  /**
   * A guest's write to one of `vf`'s registers. The write crossed PCIe as a posted MMIO write
   * (the driver charged its CPU for it); it takes effect when it reaches the NIC.
   */
  regWrite(vf: Vf, off: number, value: number): void {
    const t = this.pcie.mmioWrite(this.env.now, 4);
    this.at(t, () => this.applyReg(vf, off, value >>> 0));
  }

  private applyReg(vf: Vf, off: number, v: number): void {
    switch (off) {
      case R.IXGBE_VFTDBAL0:
        vf.tdba = vf.tdba - (vf.tdba % 2 ** 32) + v;
        break;
      case R.IXGBE_VFTDBAH0:
        vf.tdba = (vf.tdba % 2 ** 32) + v * 2 ** 32;
        break;
      case R.IXGBE_VFTDLEN0:
        vf.tdlen = v & 0xfff80;
        break;
      case R.IXGBE_VFTDH0:
        vf.tdh = v & 0xffff;
        break;
      case R.IXGBE_VFTXDCTL0:
        vf.txEnabled = (v & R.IXGBE_XDCTL_ENABLE) !== 0;
        break;
      case R.IXGBE_VFTDT0:
        vf.tdt = v & 0xffff;
        vf.stats.doorbells++;
        this.kickTx(vf);
        break;
      case R.IXGBE_VFRDBAL0:
        vf.rdba = vf.rdba - (vf.rdba % 2 ** 32) + v;
        break;
      case R.IXGBE_VFRDBAH0:
        vf.rdba = (vf.rdba % 2 ** 32) + v * 2 ** 32;
        break;
      case R.IXGBE_VFRDLEN0:
        vf.rdlen = v & 0xfff80;
        break;
      case R.IXGBE_VFRDH0:
        vf.rdh = vf.rxFetched = v & 0xffff;
        break;
      case R.IXGBE_VFRXDCTL0:
        vf.rxEnabled = (v & R.IXGBE_XDCTL_ENABLE) !== 0;
        break;
      case R.IXGBE_VFRDT0:
        vf.rdt = v & 0xffff;
        this.kickRx(vf);
        break;
      case R.IXGBE_VTEITR0:
        vf.eitr = v & R.IXGBE_MAX_EITR;
        break;
      case R.IXGBE_VTEIMS:
        if ((v & 1) !== 0) {
          vf.irqEnabled = true;
          this.scheduleIrq(vf);
        }
        break;
      case R.IXGBE_VTEIMC:
        if ((v & 1) !== 0) vf.irqEnabled = false;
        break;
      default:
        break; // registers the model does not keep (SRRCTL, VFPSRTYPE…) are accepted and ignored
    }
  }

  // ---- descriptor rings in guest memory ------------------------------------------------------

  /** DMA-reads descriptors [i, i + n) of a ring (wrapping); null on an IOMMU fault. Returns when they arrive. */
  private readDescs(vf: Vf, base: number, count: number, i: number, n: number): { bytes: Uint8Array; at: number } | null {
    const out = new Uint8Array(n * R.DESC_SIZE);
    let at = this.env.now;
    let done = 0;
    while (done < n) {
      const idx = (i + done) % count;
      const k = Math.min(n - done, count - idx);
      const m = this.hv.iommu.translate(vf.bdf, base + idx * R.DESC_SIZE, k * R.DESC_SIZE, false);
      if (isIommuFault(m)) return null;
      let o = done * R.DESC_SIZE;
      for (const p of m.pieces) {
        out.set(p, o);
        o += p.length;
      }
      // The translation delays the DMA; it does not hold the link (requests of other queues go meanwhile).
      at = Math.max(at, this.pcie.read(this.env.now, k * R.DESC_SIZE) + m.ns);
      done += k;
    }
    return { bytes: out, at };
  }

  /**
   * DMA-writes a 16-byte descriptor back at ring index `i` now (behind the posted writes
   * already issued, which PCIe keeps in order); `patch` edits it in place when it lands, then
   * `then` runs. False on a fault.
   */
  private writeDesc(vf: Vf, base: number, i: number, patch: (dv: DataView) => void, then: () => void, notBefore = 0): boolean {
    const m = this.hv.iommu.translate(vf.bdf, base + i * R.DESC_SIZE, R.DESC_SIZE, true);
    if (isIommuFault(m)) return false;
    const t = Math.max(notBefore, this.pcie.write(this.env.now, R.DESC_SIZE) + m.ns);
    const page = m.pieces[0]!;
    this.at(t, () => {
      if (vf.owner === null || vf.owner.dying) return;
      patch(new DataView(page.buffer, page.byteOffset, R.DESC_SIZE));
      then();
    });
    return true;
  }

  // ---- TX --------------------------------------------------------------------------------------

  private kickTx(vf: Vf): void {
    if (vf.txRunning) return;
    vf.txRunning = true;
    this.env.process(this.txEngine(vf), `${this.name}:vf${vf.index}:tx`);
  }

  private stopTx(vf: Vf, why: 'malformed' | 'ring'): void {
    vf.txStopped = true;
    if (why === 'malformed') {
      vf.stats.txMalformed++;
      this.stats.mddEvents++;
    } else vf.stats.ringFaults++;
  }

  private *txEngine(vf: Vf): ProcessGenerator<void> {
    try {
      for (;;) {
        const n = vf.txCount;
        if (!vf.txEnabled || vf.txStopped || n === 0 || vf.owner === null) return;
        const avail = (vf.tdt - vf.tdh + n) % n;
        if (avail === 0) return;
        // Backpressure: while the RX packet buffer is more than half full of frames waiting for
        // their DMA (the link is the bottleneck), the TX engine fetches nothing more.
        if (!this.hasSpace()) {
          const e = new SimEvent<void>(this.env);
          this.spaceWaiters.push(e);
          yield e;
          continue;
        }
        const k = Math.min(avail, TX_FETCH);
        const got = this.readDescs(vf, vf.tdba, n, vf.tdh, k);
        if (got === null) {
          this.stopTx(vf, 'ring');
          return;
        }
        this.busy(k * this.costs.descriptor);
        yield this.waitUntil(got.at);
        const plan: TxPlan[] = [];
        const used = this.txPackets(vf, got.bytes, k, k === avail, plan);
        for (const p of plan) {
          // The DMA engine keeps a bounded number of reads outstanding: a packet's first burst goes
          // out as the previous packet's last completions start to flow.
          if (vf.txDataAt - this.env.now > this.readWindow) yield this.waitUntil(vf.txDataAt - this.readWindow);
          vf.txDataAt = Math.max(vf.txDataAt, yield* this.txOnePacket(vf, p.bufs, p.total, p.ctx, p.tse, p.olinfo, p.last, p.rs));
        }
        if (used < 0) return;
        vf.tdh = (vf.tdh + used) % n;
        if (used === 0) return; // (cannot happen: a partial chain within a full fetch is malformed)
      }
    } finally {
      vf.txRunning = false;
    }
  }

  /**
   * Walks fetched descriptors: each complete packet (an optional context descriptor, data
   * descriptors up to EOP) is read, built and switched. Returns the descriptors consumed, or
   * −1 if a malformed chain stopped the queue.
   */
  private txPackets(vf: Vf, d: Uint8Array, k: number, tailInside: boolean, plan: TxPlan[]): number {
    const dv = new DataView(d.buffer, d.byteOffset, d.length);
    const ringN = vf.txCount;
    let pos = 0;
    while (pos < k) {
      // One packet: [context] data… EOP.
      let j = pos;
      let ctx: { maclen: number; iplen: number; tcp: boolean; mss: number; l4len: number } | null = null;
      const type = (x: number): number => (dv.getUint32(x * 16 + 8, true) >>> R.IXGBE_ADVTXD_DTYP_SHIFT) & 0xf;
      if (type(j) === R.IXGBE_ADVTXD_DTYP_CTXT) {
        const ml = dv.getUint32(j * 16, true);
        const tucmd = dv.getUint32(j * 16 + 8, true);
        const mss = dv.getUint32(j * 16 + 12, true);
        ctx = {
          maclen: (ml >>> R.IXGBE_ADVTXD_MACLEN_SHIFT) & 0x7f,
          iplen: ml & 0x1ff,
          tcp: (tucmd & R.IXGBE_ADVTXD_TUCMD_L4T_TCP) !== 0,
          mss: mss >>> R.IXGBE_ADVTXD_MSS_SHIFT,
          l4len: (mss >>> R.IXGBE_ADVTXD_L4LEN_SHIFT) & 0xff,
        };
        j++;
      }
      const bufs: { addr: number; len: number }[] = [];
      let eop = -1;
      let cmd0 = 0;
      let olinfo = 0;
      let bad = false;
      for (; j < k; j++) {
        const cmd = dv.getUint32(j * 16 + 8, true);
        if (type(j) !== R.IXGBE_ADVTXD_DTYP_DATA || (cmd & R.IXGBE_TXD_CMD_DEXT) === 0) {
          bad = true;
          break;
        }
        const len = cmd & R.IXGBE_ADVTXD_DTALEN_MASK;
        if (len === 0 || len > R.IXGBE_MAX_DATA_PER_TXD) {
          bad = true;
          break;
        }
        if (bufs.length === 0) {
          cmd0 = cmd;
          olinfo = dv.getUint32(j * 16 + 12, true);
        }
        bufs.push({ addr: Number(dv.getBigUint64(j * 16, true)), len });
        if (bufs.length > R.IXGBE_MAX_TX_DESC_PER_PACKET) {
          bad = true;
          break;
        }
        if ((cmd & R.IXGBE_TXD_CMD_EOP) !== 0) {
          eop = j;
          break;
        }
      }
      if (!bad && eop < 0) {
        // The fetch ended inside a chain: fetch again from its start, unless the tail itself is inside it (malformed).
        if (!tailInside && pos > 0) return pos;
        bad = true;
      }
      const tse = (cmd0 & R.IXGBE_ADVTXD_DCMD_TSE) !== 0;
      const total = bufs.reduce((s, b) => s + b.len, 0);
      if (!bad && ((tse && (ctx === null || !ctx.tcp || ctx.mss === 0 || total > 65535 + 128)) || (!tse && total > MAX_FRAME) || total < 14))
        bad = true;
      if (bad) {
        this.stopTx(vf, 'malformed');
        return -1;
      }
      const lastCmd = dv.getUint32(eop * 16 + 8, true);
      const rs = (lastCmd & R.IXGBE_TXD_CMD_RS) !== 0;
      plan.push({ bufs, total, ctx, tse, olinfo, last: (vf.tdh + eop) % ringN, rs });
      pos = eop + 1;
    }
    return pos;
  }

  /** Reads one packet's buffers, builds its frames and hands them to the switch once read; writes DD back on its last descriptor. Returns when the data arrives. */
  private *txOnePacket(
    vf: Vf,
    bufs: { addr: number; len: number }[],
    total: number,
    ctx: { maclen: number; iplen: number; tcp: boolean; mss: number } | null,
    tse: boolean,
    olinfo: number,
    last: number,
    rs: boolean,
  ): ProcessGenerator<number> {
    const now = this.env.now;
    const bytes = new Uint8Array(total);
    let at = now;
    let o = 0;
    let fault = false;
    let iommuNs = 0;
    // Every buffer is translated first: a fault means none of the packet is read.
    for (const b of bufs) {
      const m = this.hv.iommu.translate(vf.bdf, b.addr, b.len, false);
      if (isIommuFault(m)) {
        fault = true;
        break;
      }
      iommuNs += m.ns;
      for (const p of m.pieces) {
        bytes.set(p, o);
        o += p.length;
      }
    }
    if (!fault) {
      // The reads go out in bursts of the engine's outstanding requests; the next burst is
      // issued as the previous one's completions start to flow, so other queues' reads
      // (descriptor fetches) interleave with a large packet's.
      const burst = this.costs.pcie.maxOutstandingReads * this.costs.pcie.maxReadRequest;
      for (let off = 0; off < total; off += burst) {
        const t = this.pcie.read(this.env.now, Math.min(burst, total - off)) + (off === 0 ? iommuNs : 0);
        at = Math.max(at, t);
        if (off + burst < total) yield this.waitUntil(t - this.costs.pcie.readLatency);
      }
    }
    this.busy(bufs.length * this.costs.descriptor);
    const base = vf.tdba;
    // The write-back goes out once the data has been read (the descriptor is done then).
    const wb = (): void => {
      if (!rs) return;
      this.at(at, () => {
        const ok = this.writeDesc(
          vf,
          base,
          last,
          (dv) => dv.setUint32(12, dv.getUint32(12, true) | R.IXGBE_TXD_STAT_DD, true),
          () => this.cause(vf),
        );
        if (!ok) this.stopTx(vf, 'ring');
      });
    };
    if (fault) {
      // The DMA was blocked: nothing read, the packet dropped; the descriptors complete so the ring moves on.
      vf.stats.txIommuFaults++;
      wb();
      return now;
    }
    vf.stats.txPackets++;
    vf.stats.txBytes += total;
    vf.stats.dataReads++;
    const frames = this.buildFrames(bytes, ctx, tse, olinfo);
    this.at(at, () => {
      for (const f of frames) {
        if (readMac(f, 6) !== vf.mac) {
          vf.stats.txSpoofed++;
          continue;
        }
        vf.stats.txFrames++;
        this.switchFrame({ kind: 'vf', vf }, f);
      }
    });
    wb();
    return at;
  }

  /** TSO and checksum offload: the frames a packet makes, with their checksums complete. */
  buildFrames(
    bytes: Uint8Array,
    ctx: { maclen: number; iplen: number; tcp: boolean; mss: number } | null,
    tse: boolean,
    olinfo: number,
  ): Uint8Array[] {
    const txsm = (olinfo & R.IXGBE_ADVTXD_POPTS_TXSM) !== 0 || tse;
    if (ctx === null || !txsm) return [bytes];
    const l4 = ctx.maclen + ctx.iplen;
    if (l4 + (ctx.tcp ? 20 : 8) > bytes.length) return [bytes]; // headers not there: sent as is (the receiver's checksum check catches it)
    if (tse) {
      const p = new Packet(bytes);
      p.l3 = ctx.maclen as typeof p.l3;
      p.csum = CSUM_PARTIAL;
      p.l4 = l4;
      p.csumStart = l4;
      p.csumOffset = 16;
      p.gsoType = GSO_TCPV4;
      p.gsoSize = ctx.mss;
      return gsoSegment(p, false, HEAP_MEMORY).map((s) => {
        const b = s.data.slice();
        s.release();
        return b;
      });
    }
    completeChecksum(bytes, l4, bytes.length, l4 + (ctx.tcp ? 16 : 6), !ctx.tcp);
    return [bytes];
  }

  // ---- the embedded switch ----------------------------------------------------------------------

  /** The VEB: forwards one frame from `src` by destination MAC, one pipeline slot per copy. */
  switchFrame(src: Port, bytes: Uint8Array): void {
    const dst = readMac(bytes, 0);
    const out: Port[] = [];
    if (dst === BROADCAST || (Math.floor(dst / 2 ** 40) & 1) !== 0) {
      this.stats.broadcasts++;
      for (const v of this.vfs) if (v.mac !== null && v.owner !== null && !(src.kind === 'vf' && src.vf === v)) out.push({ kind: 'vf', vf: v });
      if (src.kind !== 'pf') out.push({ kind: 'pf' });
      if (src.kind !== 'wire') out.push({ kind: 'wire' });
    } else {
      const v = this.vfs.find((x) => x.mac === dst && x.owner !== null);
      if (v !== undefined) {
        if (!(src.kind === 'vf' && src.vf === v)) out.push({ kind: 'vf', vf: v });
      } else if (src.kind !== 'pf' && (dst === this.pf.mac || this.pfFilter.has(dst))) out.push({ kind: 'pf' });
      else if (src.kind !== 'wire') out.push({ kind: 'wire' });
      else this.stats.unmatched++;
    }
    for (const p of out) {
      const start = Math.max(this.env.now, this.vebFree);
      this.vebFree = start + this.costs.vebFrame;
      this.busy(this.costs.vebFrame);
      this.stats.vebFrames++;
      const copy = out.length > 1 ? bytes.slice() : bytes;
      this.at(this.vebFree, () => this.deliver(p, copy));
    }
  }

  private deliver(p: Port, bytes: Uint8Array): void {
    if (p.kind === 'vf') {
      const vf = p.vf;
      if (!vf.rxEnabled || vf.rxStopped || vf.owner === null) {
        vf.stats.rxNoDesc++;
        return;
      }
      // SRRCTL.DROP_EN (ixgbevf_configure_srrctl sets it): a frame for a queue with no posted
      // descriptor left for it is dropped at once, so a slow guest never holds up the others.
      const n = vf.rxCount;
      const posted = vf.rxCache.length + (n === 0 ? 0 : (vf.rdt - vf.rxFetched + n) % n);
      if (vf.rxq.length >= posted) {
        vf.stats.rxNoDesc++;
        return;
      }
      // Frames that have a descriptor wait in the RX packet buffer for the DMA engine; one that does not fit is dropped.
      if (this.rxHeld + bytes.length > this.costs.rxBuffer) {
        vf.stats.rxOverflow++;
        return;
      }
      vf.rxq.push({ bytes });
      vf.rxqBytes += bytes.length;
      this.rxHeld += bytes.length;
      this.kickRx(vf);
    } else if (p.kind === 'pf') {
      this.stats.toPf++;
      this.pf.receiveFromVeb(bytes);
    } else {
      if (this.wire.peer === null) {
        this.stats.wireDropped++;
        return;
      }
      const pkt = Packet.alloc(HEAP_MEMORY, bytes.length);
      pkt.data.set(bytes);
      pkt.csum = CSUM_NONE;
      if (!this.wire.xmit(pkt)) {
        pkt.release();
        this.stats.wireDropped++;
        return;
      }
      this.stats.toWire++;
    }
  }

  private fromWire(p: Packet): void {
    const bytes = p.data.slice();
    p.release();
    this.stats.fromWire++;
    this.switchFrame({ kind: 'wire' }, bytes);
  }

  /** A frame the PF sent (Dom0's bridge forwarding through it), read over PCIe from Dom0's memory. */
  fromPf(bytes: Uint8Array): void {
    this.stats.fromPf++;
    this.switchFrame({ kind: 'pf' }, bytes);
  }

  // ---- RX ----------------------------------------------------------------------------------------

  private kickRx(vf: Vf): void {
    if (vf.rxRunning || vf.rxq.length === 0) return;
    vf.rxRunning = true;
    this.env.process(this.rxEngine(vf), `${this.name}:vf${vf.index}:rx`);
  }

  private *rxEngine(vf: Vf): ProcessGenerator<void> {
    try {
      while (vf.rxq.length > 0) {
        const n = vf.rxCount;
        if (!vf.rxEnabled || vf.rxStopped || n === 0 || vf.owner === null) {
          vf.stats.rxNoDesc += vf.rxq.length;
          vf.rxq.clear();
          this.rxHeld -= vf.rxqBytes;
          vf.rxqBytes = 0;
          return;
        }
        if (vf.rxCache.length === 0) {
          const avail = (vf.rdt - vf.rxFetched + n) % n;
          if (avail === 0) {
            // No descriptor posted after all (the queue was reset or re-programmed): dropped, as DROP_EN does.
            for (let f = vf.rxq.shift(); f !== undefined; f = vf.rxq.shift()) {
              vf.rxqBytes -= f.bytes.length;
              this.rxHeld -= f.bytes.length;
              vf.stats.rxNoDesc++;
            }
            this.spaceFreed();
            return;
          }
          const k = Math.min(avail, RX_FETCH);
          const got = this.readDescs(vf, vf.rdba, n, vf.rxFetched, k);
          if (got === null) {
            vf.rxStopped = true;
            vf.stats.ringFaults++;
            continue;
          }
          this.busy(k * this.costs.descriptor);
          const dv = new DataView(got.bytes.buffer);
          for (let x = 0; x < k; x++) vf.rxCache.push({ i: (vf.rxFetched + x) % n, addr: Number(dv.getBigUint64(x * 16, true)) });
          vf.rxFetched = (vf.rxFetched + k) % n;
          yield this.waitUntil(got.at);
          continue;
        }
        // The write engine issues posted writes as the link takes them (a few TLPs queued), so
        // that read requests of other queues, which may not pass queued writes, interleave.
        if (this.pcie.upFreeAt - this.env.now > this.writeAhead) {
          yield this.waitUntil(this.pcie.upFreeAt - this.writeAhead);
          continue;
        }
        const f = vf.rxq.shift()!;
        vf.rxqBytes -= f.bytes.length;
        this.rxHeld -= f.bytes.length;
        this.spaceFreed();
        const d = vf.rxCache.shift()!;
        this.rxOne(vf, f.bytes, d.i, d.addr);
      }
    } finally {
      vf.rxRunning = false;
    }
  }

  /** One frame into one posted buffer: the data DMA, then the descriptor write-back (posted writes stay in order), then the cause. */
  private rxOne(vf: Vf, bytes: Uint8Array, i: number, addr: number): void {
    const m = this.hv.iommu.translate(vf.bdf, addr, bytes.length, true);
    const base = vf.rdba;
    const next = (i + 1) % vf.rxCount;
    if (isIommuFault(m)) {
      vf.stats.rxIommuFaults++;
      const ok = this.writeDesc(
        vf,
        base,
        i,
        (dv) => {
          dv.setUint32(8, (R.IXGBE_RXD_STAT_DD | R.IXGBE_RXD_STAT_EOP | R.IXGBE_RXDADV_ERR_RXE) >>> 0, true);
          dv.setUint16(12, 0, true);
        },
        () => {
          vf.rdh = next;
          this.cause(vf);
        },
      );
      if (!ok) {
        vf.rxStopped = true;
        vf.stats.ringFaults++;
      }
      return;
    }
    this.busy(this.costs.descriptor);
    const tData = this.pcie.write(this.env.now, bytes.length) + m.ns;
    vf.stats.dataWrites++;
    this.at(tData, () => {
      if (vf.owner === null || vf.owner.dying) return;
      let o = 0;
      for (const p of m.pieces) {
        p.set(bytes.subarray(o, o + p.length));
        o += p.length;
      }
    });
    const status = R.IXGBE_RXD_STAT_DD | R.IXGBE_RXD_STAT_EOP | rxChecksumStatus(bytes);
    const ok = this.writeDesc(
      vf,
      base,
      i,
      (dv) => {
        dv.setUint32(8, status >>> 0, true);
        dv.setUint16(12, bytes.length, true);
      },
      () => {
        vf.rdh = next;
        vf.stats.rxFrames++;
        vf.stats.rxBytes += bytes.length;
        this.cause(vf);
      },
      tData,
    );
    if (!ok) {
      vf.rxStopped = true;
      vf.stats.ringFaults++;
    }
  }

  // ---- interrupts ------------------------------------------------------------------------------

  /** An interrupt cause (RX write-back, TX write-back with RS) for the VF's one queue vector. */
  private cause(vf: Vf): void {
    vf.causePending = true;
    this.scheduleIrq(vf);
  }

  /** EITR: the vector fires no sooner than its interval after the last time it fired, and only while enabled. */
  private scheduleIrq(vf: Vf): void {
    if (!vf.causePending || !vf.irqEnabled || vf.irqTimerAt !== null) return;
    const interval = (vf.eitr >>> 3) * R.EITR_UNIT_NS;
    const t = Math.max(this.env.now, vf.lastIrq + interval);
    vf.irqTimerAt = t;
    this.at(t, () => {
      vf.irqTimerAt = null;
      if (!vf.causePending || !vf.irqEnabled) return;
      vf.causePending = false;
      vf.irqEnabled = false; // EIAM: auto-masked until the driver writes VTEIMS
      vf.lastIrq = this.env.now;
      vf.stats.msix++;
      // The MSI-X message is a DMA write of its data to the address the table entry holds.
      const done = this.pcie.write(this.env.now, 4);
      const b = vf.msi;
      this.at(done, () => {
        if (b !== null) this.hv.pt.raise(b);
      });
    });
  }
}

function readMac(b: Uint8Array, off: number): MacAddr {
  let m = 0;
  for (let i = 0; i < 6; i++) m = m * 256 + (b[off + i] ?? 0);
  return m;
}

/** RXCSUM as the 82599 reports it for an IPv4 TCP/UDP frame: checksum computed (L4CS) and, if bad, TCPE. */
export function rxChecksumStatus(d: Uint8Array): number {
  if (d.length < 14 + IP.HEADER_LEN || d[12] !== 0x08 || d[13] !== 0x00) return 0;
  const ip = parseIpv4(d, 14, d.length - 14);
  if (ip instanceof WireError || ip.moreFragments || ip.fragOffset !== 0) return 0;
  if (ip.protocol !== IPPROTO_TCP && ip.protocol !== IPPROTO_UDP) return R.IXGBE_RXD_STAT_IPCS;
  const l4 = 14 + ip.headerLen;
  if (ip.protocol === IPPROTO_UDP && ip.payloadLen >= 8 && d[l4 + 6] === 0 && d[l4 + 7] === 0) return R.IXGBE_RXD_STAT_IPCS;
  const ok = l4ChecksumValid(d, l4, ip.payloadLen, ip.src, ip.dst, ip.protocol);
  return R.IXGBE_RXD_STAT_IPCS | R.IXGBE_RXD_STAT_L4CS | (ok ? 0 : R.IXGBE_RXDADV_ERR_TCPE);
}
