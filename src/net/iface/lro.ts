import type { Deque } from '../../sim/index.js';
import { readU16, readU32, writeU16 } from '../wire/addr.js';
import { IP, IPPROTO_TCP, Ipv4Packet } from '../wire/ipv4.js';
import { ACK, CWR, ECE, FIN, PSH, RST, SYN, TCP, URG } from '../wire/tcp.js';
import { CSUM_NONE, CSUM_UNNECESSARY, GSO_TCPV4, Packet, type PacketMemory } from './packet.js';

const IP_MAX_PACKET = 65535;
/** Flags after which nothing more is merged (tcp_gro_receive flushes on them). */
const FLUSH_FLAGS = URG | PSH | RST | SYN | FIN;

interface Seg {
  hl: number;
  thl: number;
  seq: number;
  flags: number;
  payload: number;
}

/** The TCP segment in a frame, if it is one LRO may merge: IPv4 without options or fragmentation, a checksum validated by the NIC, payload. */
function tcpSeg(p: Packet): Seg | null {
  const d = p.data;
  const l3 = p.l3;
  if (p.csum === CSUM_NONE || d.length < l3 + IP.HEADER_LEN + TCP.HEADER_LEN || d[12] !== 0x08 || d[13] !== 0x00) return null;
  if (d[l3] !== 0x45 || d[l3 + IP.PROTOCOL] !== IPPROTO_TCP || (readU16(d, l3 + IP.FLAGS_FRAG) & 0x3fff) !== 0) return null;
  const total = readU16(d, l3 + IP.LENGTH);
  const l4 = l3 + IP.HEADER_LEN;
  const thl = (d[l4 + TCP.DATA_OFF]! >>> 4) * 4;
  if (thl < TCP.HEADER_LEN || total > d.length - l3 || total < IP.HEADER_LEN + thl) return null;
  const payload = total - IP.HEADER_LEN - thl;
  if (payload === 0) return null;
  return { hl: IP.HEADER_LEN, thl, seq: readU32(d, l4 + TCP.SEQ), flags: d[l4 + TCP.FLAGS]!, payload };
}

/** Same flow, same ACK, same options (so the same timestamps), flags equal but for PSH/FIN. */
function sameHeaders(a: Packet, b: Packet, thl: number): boolean {
  const da = a.data;
  const db = b.data;
  const ia = a.l3;
  const ib = b.l3;
  for (let i = IP.SRC; i < IP.HEADER_LEN; i++) if (da[ia + i] !== db[ib + i]) return false;
  const ta = ia + IP.HEADER_LEN;
  const tb = ib + IP.HEADER_LEN;
  for (let i = 0; i < 4; i++) if (da[ta + i] !== db[tb + i]) return false; // ports
  for (let i = TCP.ACK; i < TCP.ACK + 4; i++) if (da[ta + i] !== db[tb + i]) return false;
  if (((da[ta + TCP.FLAGS]! ^ db[tb + TCP.FLAGS]!) & ~(PSH | FIN)) !== 0) return false;
  for (let i = TCP.HEADER_LEN; i < thl; i++) if (da[ta + i] !== db[tb + i]) return false;
  return true;
}

/**
 * Large receive offload as a NIC does it on the frames waiting in its RX ring, with the
 * merge rules of Linux's tcp_gro_receive: `first` absorbs the following frames of
 * `ring` that continue its TCP flow in sequence with the same ACK, options and flags (PSH
 * or FIN only on the last), each no longer than the first; a shorter frame, or PSH, FIN or
 * URG, ends the merge, as does reaching 64 KiB. The result is one packet with the first
 * frame's headers (the last one's window and flags), marked GSO TCPv4 with the first
 * frame's payload as gsoSize (which the receiver uses as the sender's MSS) and the
 * checksum validated, in a new buffer of `mem` (the merged frames are released). Frames that
 * cannot be merged are left in the ring.
 */
export function lroMerge(first: Packet, ring: Deque<Packet>, mem: PacketMemory): Packet {
  const h = tcpSeg(first);
  if (h === null || (h.flags & (FLUSH_FLAGS | CWR | ECE)) !== 0 || (h.flags & ACK) === 0) return first;
  const mss = h.payload;
  const parts: Packet[] = [first];
  let total = IP.HEADER_LEN + h.thl + h.payload;
  let next = (h.seq + h.payload) >>> 0;
  for (let c = ring.peek(); c !== undefined; c = ring.peek()) {
    const s = tcpSeg(c);
    if (s === null || s.thl !== h.thl || s.seq !== next || s.payload > mss || (s.flags & (CWR | ECE | RST | SYN | URG)) !== 0) break;
    if (total + s.payload > IP_MAX_PACKET || !sameHeaders(first, c, h.thl)) break;
    ring.shift();
    parts.push(c);
    total += s.payload;
    next = (next + s.payload) >>> 0;
    if (s.payload < mss || (s.flags & (PSH | FIN)) !== 0) break;
  }
  if (parts.length === 1) return first;
  const l3 = first.l3;
  const l4 = l3 + IP.HEADER_LEN;
  const hdrEnd = l4 + h.thl;
  const out = Packet.alloc(mem, l3 + total);
  const buf = out.data;
  buf.set(first.data.subarray(0, hdrEnd), 0);
  let at = hdrEnd;
  for (const p of parts) {
    const start = p.l3 + IP.HEADER_LEN + h.thl;
    const len = readU16(p.data, p.l3 + IP.LENGTH) - IP.HEADER_LEN - h.thl;
    buf.set(p.data.subarray(start, start + len), at);
    at += len;
  }
  const last = parts[parts.length - 1]!;
  const lastL4 = last.l3 + IP.HEADER_LEN;
  buf[l4 + TCP.FLAGS] = h.flags | (last.data[lastL4 + TCP.FLAGS]! & (PSH | FIN));
  writeU16(buf, l4 + TCP.WINDOW, readU16(last.data, lastL4 + TCP.WINDOW));
  const ip = new Ipv4Packet(buf, l3);
  ip.totalLen = total;
  ip.fillChecksum();
  for (const p of parts) p.release();
  out.l3 = l3;
  out.l4 = l4;
  out.csum = CSUM_UNNECESSARY;
  out.gsoType = GSO_TCPV4;
  out.gsoSize = mss;
  return out;
}
