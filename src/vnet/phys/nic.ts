import type { Env } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import { DeviceWrapper, LinkEnd, type DirectLinkOptions, type MacAddr, type Packet } from '../../net/index.js';

/** What a physical NIC port costs its driver and what the wire gives it, read once from the profile. */
export interface PhysicalNicCosts {
  txPacket: number;
  rxPacket: number;
  link: DirectLinkOptions;
}

export function physicalNicCosts(p: Profile): PhysicalNicCosts {
  return {
    txPacket: p.ns('phys.nic.txPacket'),
    rxPacket: p.ns('phys.nic.rxPacket'),
    link: {
      bandwidth: 8e9 / p.nsPerByte('phys.nic.bandwidth'),
      delay: p.ns('phys.nic.latency'),
      frameOverhead: p.bytes('phys.nic.frameOverhead'),
      txRing: p.count('phys.nic.txRing'),
      rxRing: p.count('phys.nic.rxRing'),
      irqCost: p.ns('phys.nic.irq'),
      // What ixgbe offers an 82599 port: checksum offload both ways, scatter-gather, TSO, and
      // receive through napi_gro_receive. Hardware LRO is off on a bridge port (br_add_if →
      // dev_disable_lro) but GRO stays on, and GRO is what the link end's merge is: in-order
      // TCP frames of one flow taken in one NAPI poll become one GSO packet the bridge forwards
      // whole (and netback hands to netfront as one GSO frame).
      features: { txCsum: true, rxCsum: true, sg: true, tso: true, lro: true },
    },
  };
}

/**
 * A physical NIC port in a host's Dom0 (an 82599-class 10 GbE port driven by ixgbe), a port
 * of one of Dom0's bridges. Its rings, line rate, TSO and checksum offload, interrupt and NAPI
 * are the link end's (`LinkEnd`: TX ring drained at line rate, frames DMA'd into buffers of
 * the receiving Dom0's memory, one interrupt on Dom0's CPU then NAPI polls until the ring is
 * empty); this adds the driver's own work per packet on Dom0's CPU. Two ports are joined by
 * `cable`: a host without one has no wire.
 */
export class PhysicalNic extends DeviceWrapper {
  readonly end: LinkEnd;

  constructor(
    env: Env,
    name: string,
    mac: MacAddr,
    /** The stream of the host's random numbers this port may draw (loss, if a wire has it). */
    rng: ReturnType<Env['rng']['fork']>,
    private readonly costs: PhysicalNicCosts,
  ) {
    const end = new LinkEnd(env, name, mac, costs.link, rng);
    super(end);
    this.end = end;
  }

  /** Joined to another port by a cable. */
  get connected(): boolean {
    return this.end.peer !== null;
  }

  override xmit(pkt: Packet): boolean {
    if (this.end.peer === null) throw new Error(`${this.name}: no cable (a physical NIC transmits only once joined to another)`);
    const ok = this.inner.xmit(pkt);
    if (ok) this.upper!.cpu.exec(this.costs.txPacket, 'softirq');
    return ok;
  }

  protected override onReceive(_pkt: Packet): void {
    this.upper!.cpu.exec(this.costs.rxPacket, 'softirq');
  }
}

/** A physical port a cable can join: Dom0's NIC port, or an SR-IOV NIC's wire port (its link end). */
export interface WirePort {
  readonly name: string;
  readonly end: LinkEnd;
  readonly connected: boolean;
}

/** Joins two physical ports with a cable (full duplex, each direction at the ports' line rate). */
export function cable(a: WirePort, b: WirePort): void {
  if (a === b) throw new Error(`${a.name}: a cable needs two ports`);
  if (a.connected || b.connected) throw new Error(`${a.connected ? a.name : b.name}: already has a cable`);
  a.end.peer = b.end;
  b.end.peer = a.end;
}
