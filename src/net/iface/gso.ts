import { readU32, writeU16, writeU32 } from '../wire/addr.js';
import { fold, pseudoHeaderSum, sumBytes } from '../wire/checksum.js';
import { IPPROTO_TCP, Ipv4Packet } from '../wire/ipv4.js';
import { CWR, FIN, PSH, TCP } from '../wire/tcp.js';
import { CSUM_NONE, CSUM_PARTIAL, GSO_NONE, Packet, type PacketMemory } from './packet.js';

/**
 * Software GSO for TCP over IPv4 (Linux skb_segment + tcp_gso_segment): cuts a GSO packet
 * into `gsoSize`-byte segments, each with its own copy of the headers, consecutive sequence
 * numbers and IP ids, FIN/PSH only on the last and CWR only on the first (RFC 3168 6.1.2),
 * and a checksum left partial (`txCsum`) or computed, in new buffers of `mem`. The original
 * is released (its destructor run, its buffer freed) when the last segment is released.
 */
export function gsoSegment(pkt: Packet, txCsum: boolean, mem: PacketMemory): Packet[] {
  const d = pkt.data;
  const l3 = pkt.l3;
  const l4 = pkt.l4;
  const ip = new Ipv4Packet(d, l3);
  const thl = (d[l4 + TCP.DATA_OFF]! >>> 4) * 4;
  const hdrEnd = l4 + thl;
  const payload = d.length - hdrEnd;
  const mss = pkt.gsoSize;
  const n = Math.max(1, Math.ceil(payload / mss));
  const seq0 = readU32(d, l4 + TCP.SEQ);
  const flags = d[l4 + TCP.FLAGS]!;
  const id0 = ip.ident;
  const src = ip.src;
  const dst = ip.dst;
  const out: Packet[] = [];
  let remaining = n;
  const release = (): void => {
    if (--remaining === 0) pkt.release();
  };
  for (let i = 0; i < n; i++) {
    const off = i * mss;
    const len = Math.min(mss, payload - off);
    const seg = Packet.alloc(mem, hdrEnd + len);
    const buf = seg.data;
    buf.set(d.subarray(0, hdrEnd), 0);
    buf.set(d.subarray(hdrEnd + off, hdrEnd + off + len), hdrEnd);
    const sip = new Ipv4Packet(buf, l3);
    sip.totalLen = hdrEnd - l3 + len;
    sip.ident = (id0 + i) & 0xffff;
    sip.fillChecksum();
    writeU32(buf, l4 + TCP.SEQ, (seq0 + off) >>> 0);
    let f = flags;
    if (i !== n - 1) f &= ~(FIN | PSH);
    if (i !== 0) f &= ~CWR;
    buf[l4 + TCP.FLAGS] = f;
    const pseudo = pseudoHeaderSum(src, dst, IPPROTO_TCP, thl + len);
    seg.l3 = l3;
    seg.l4 = l4;
    seg.nextHop = pkt.nextHop;
    seg.iface = pkt.iface;
    seg.gsoType = GSO_NONE;
    if (txCsum) {
      writeU16(buf, l4 + TCP.CHECKSUM, fold(pseudo));
      seg.csum = CSUM_PARTIAL;
      seg.csumStart = l4;
      seg.csumOffset = TCP.CHECKSUM;
    } else {
      writeU16(buf, l4 + TCP.CHECKSUM, 0);
      writeU16(buf, l4 + TCP.CHECKSUM, ~fold(sumBytes(buf, l4, thl + len, pseudo)) & 0xffff);
      seg.csum = CSUM_NONE;
    }
    seg.destructor = release;
    out.push(seg);
  }
  return out;
}

/** Header bytes before the TCP payload of a packet (Ethernet + IP + TCP). */
export function tcpHeaderEnd(pkt: Packet): number {
  return pkt.l4 + (pkt.data[pkt.l4 + TCP.DATA_OFF]! >>> 4) * 4;
}
