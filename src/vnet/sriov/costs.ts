import type { Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import type { DirectLinkOptions } from '../../net/index.js';
import { physicalNicCosts } from '../phys/index.js';

/** What the SR-IOV path's pieces cost, from the profile (`pcie.*`, `sriov.*`, `phys.nic.*`; see src/profile/entries.ts). */
export interface SriovCosts {
  pcie: PcieCosts;
  vebFrame: Time;
  /** Bytes of frames one VF's RX queue may hold in the NIC waiting for descriptors. */
  rxBuffer: number;
  descriptor: Time;
  regWrite: Time;
  mailbox: Time;
  xmitFrame: Time;
  cleanTx: Time;
  cleanRx: Time;
  /** The guest's per-interrupt handler cost (net.irq): ixgbevf_msix_clean_rings' native part. */
  driverIrq: Time;
  /** The PF's driver in Dom0 is ixgbe: its per-packet and interrupt costs are the physical NIC's. */
  pfTxPacket: Time;
  pfRxPacket: Time;
  pfIrq: Time;
  /** The wire port: the 82599 port's line rate, rings and latency (phys.nic.*); no CPU behind it. */
  wire: DirectLinkOptions;
}

export interface PcieCosts {
  /** ns per byte on the link, each direction. */
  nsPerByte: number;
  tlpOverhead: number;
  maxPayload: number;
  maxReadRequest: number;
  maxOutstandingReads: number;
  readLatency: Time;
  writeLatency: Time;
}

export function sriovCosts(p: Profile): SriovCosts {
  const phys = physicalNicCosts(p);
  return {
    pcie: {
      nsPerByte: p.nsPerByte('pcie.bandwidth'),
      tlpOverhead: p.bytes('pcie.tlpOverhead'),
      maxPayload: p.bytes('pcie.maxPayload'),
      maxReadRequest: p.bytes('pcie.maxReadRequest'),
      maxOutstandingReads: p.count('pcie.maxOutstandingReads'),
      readLatency: p.ns('pcie.readLatency'),
      writeLatency: p.ns('pcie.writeLatency'),
    },
    vebFrame: p.ns('sriov.veb.frame'),
    rxBuffer: p.bytes('sriov.nic.rxBuffer'),
    descriptor: p.ns('sriov.nic.descriptor'),
    regWrite: p.ns('sriov.vf.regWrite'),
    mailbox: p.ns('sriov.pf.mailbox'),
    xmitFrame: p.ns('sriov.ixgbevf.xmitFrame'),
    cleanTx: p.ns('sriov.ixgbevf.cleanTx'),
    cleanRx: p.ns('sriov.ixgbevf.cleanRx'),
    driverIrq: p.ns('net.irq'),
    pfTxPacket: phys.txPacket,
    pfRxPacket: phys.rxPacket,
    pfIrq: phys.link.irqCost,
    // The VEB takes frames from its wire port as they arrive: no CPU interrupt, no LRO.
    wire: { ...phys.link, irqCost: 0, features: { txCsum: true, rxCsum: true, sg: true, tso: true, lro: false } },
  };
}
