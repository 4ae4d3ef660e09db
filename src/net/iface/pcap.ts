import type { Time } from '../../sim/index.js';
import { DeviceWrapper, type NetDevice } from './device.js';
import type { Packet } from './packet.js';

/** pcap magic for nanosecond timestamps (libpcap's "nsec" format; tshark and Wireshark read it). */
const PCAP_MAGIC_NS = 0xa1b23c4d;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

/**
 * Collects frames as a classic pcap file (little-endian, nanosecond resolution, Ethernet
 * link type) in memory. The model never does file I/O; whoever owns the run writes
 * `bytes()` out.
 */
export class PcapWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;
  private count = 0;

  constructor(snaplen = SNAPLEN) {
    const h = new Uint8Array(24);
    const v = new DataView(h.buffer);
    v.setUint32(0, PCAP_MAGIC_NS, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, snaplen, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    this.push(h);
  }

  get frames(): number {
    return this.count;
  }

  /** Appends one frame captured at virtual time `t` (ns). The bytes are copied. */
  write(t: Time, frame: Uint8Array): void {
    const rec = new Uint8Array(16 + frame.length);
    const v = new DataView(rec.buffer);
    v.setUint32(0, Math.floor(t / 1e9), true);
    v.setUint32(4, t % 1e9, true);
    v.setUint32(8, frame.length, true);
    v.setUint32(12, frame.length, true);
    rec.set(frame, 16);
    this.push(rec);
    this.count++;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  private push(c: Uint8Array): void {
    this.chunks.push(c);
    this.size += c.length;
  }
}

/**
 * A capture point: wraps any device, is a device, and writes every frame the stack sends
 * through it (when the device accepts it) and every frame it delivers up. Frames are written
 * as they are at that boundary: a CSUM_PARTIAL frame shows its unfinished checksum, a GSO
 * frame its full size, as tcpdump shows them on Linux.
 */
export class PcapTap extends DeviceWrapper {
  constructor(
    inner: NetDevice,
    readonly writer: PcapWriter,
    private readonly clock: { readonly now: Time },
  ) {
    super(inner);
  }

  override xmit(pkt: Packet): boolean {
    // Copy before handing over: the device owns the packet once it accepts it.
    const snapshot = pkt.data.slice();
    const ok = this.inner.xmit(pkt);
    if (ok) this.writer.write(this.clock.now, snapshot);
    return ok;
  }

  // Received frames are stamped when the stack takes them, as AF_PACKET taps in
  // __netif_receive_skb see them.
  protected override onReceive(pkt: Packet): void {
    this.writer.write(this.clock.now, pkt.data);
  }
}
