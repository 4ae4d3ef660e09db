import { Ipv4Packet } from '../wire/ipv4.js';
import { Packet, type PacketMemory } from '../iface/packet.js';

/**
 * Fragments an IPv4 packet whose datagram exceeds `mtu` (RFC 791 section 3.2, "An Example
 * Fragmentation Procedure"): every fragment but the last carries a multiple of 8 payload
 * bytes and MF; offsets are in 8-byte units. The transport checksum must already be complete.
 * Fragments are built in new buffers of `mem`; the original is released (destructor run,
 * buffer freed) when the last fragment is released.
 */
export function fragmentIpv4(pkt: Packet, mtu: number, mem: PacketMemory): Packet[] {
  const d = pkt.data;
  const l3 = pkt.l3;
  const ip = new Ipv4Packet(d, l3);
  const hl = ip.headerLen;
  const payloadStart = l3 + hl;
  const payload = ip.totalLen - hl;
  const chunk = Math.floor((mtu - hl) / 8) * 8;
  const baseFlags = ip.flagsFrag & 0x4000;
  const baseOffset = (ip.flagsFrag & 0x1fff) * 8;
  const baseMf = (ip.flagsFrag & 0x2000) !== 0;
  const out: Packet[] = [];
  const n = Math.ceil(payload / chunk);
  let remaining = n;
  const release = (): void => {
    if (--remaining === 0) pkt.release();
  };
  for (let off = 0; off < payload; off += chunk) {
    const len = Math.min(chunk, payload - off);
    const last = off + len >= payload;
    const p = Packet.alloc(mem, payloadStart + len);
    const buf = p.data;
    buf.set(d.subarray(0, payloadStart), 0);
    buf.set(d.subarray(payloadStart + off, payloadStart + off + len), payloadStart);
    const f = new Ipv4Packet(buf, l3);
    f.totalLen = hl + len;
    f.flagsFrag = baseFlags | (last && !baseMf ? 0 : 0x2000) | ((baseOffset + off) >>> 3);
    f.fillChecksum();
    p.l3 = l3;
    p.l4 = payloadStart;
    p.nextHop = pkt.nextHop;
    p.iface = pkt.iface;
    p.destructor = release;
    out.push(p);
  }
  return out;
}
