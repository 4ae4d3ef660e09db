import { NO_OFFLOADS, type DeviceFeatures, type DeviceUpper, type NetDevice } from './device.js';
import type { Packet } from './packet.js';

/**
 * `lo`: what a guest sends to itself. Like Linux's loopback_xmit it hands the packet straight
 * back up (netif_rx), keeping its checksum state and GSO metadata, so partial checksums are
 * trusted and 64 KiB GSO packets arrive whole. The stack's per-packet and per-byte costs are
 * still charged on both sides. MTU 65536 as Linux's loopback.
 */
export class LoopbackDevice implements NetDevice {
  readonly name = 'lo';
  readonly mac = 0;
  readonly mtu = 65536;
  readonly features: DeviceFeatures = { ...NO_OFFLOADS, txCsum: true, rxCsum: true, sg: true, tso: true, gsoMaxSize: 65536, noArp: true };
  private upper: DeviceUpper | null = null;
  packets = 0;

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  xmit(pkt: Packet): boolean {
    if (this.upper === null) throw new Error('lo: transmit before attach');
    this.packets++;
    // loopback_xmit: skb_orphan (the sender's buffer space comes back now), then netif_rx of
    // the same skb, whose bytes the receive side releases when it is done with them.
    pkt.orphan();
    this.upper.receive(pkt);
    return true;
  }
}
