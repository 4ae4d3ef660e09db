import type { Env, Timer } from '../../sim/index.js';
import { ETH } from '../wire/ethernet.js';
import { Ipv4Packet, type Ipv4Repr } from '../wire/ipv4.js';
import { Packet, type PacketBuffer, type PacketMemory } from '../iface/packet.js';

export interface ReassemblyStats {
  /** Datagrams reassembled (ReasmOKs). */
  reassembled: number;
  /** Datagrams abandoned because a fragment did not come within the timeout (RFC 1122 3.3.2). */
  timeouts: number;
  /** Incomplete datagrams evicted, oldest first, when fragment memory passed its limit. */
  evicted: number;
  /** Fragments dropped: malformed, overlapping, inconsistent length, or in an evicted datagram. */
  dropped: number;
}

interface Frag {
  off: number;
  end: number;
  data: Uint8Array;
  /** The fragment's buffer, held while it waits. */
  buf: PacketBuffer | null;
}

interface Datagram {
  key: string;
  frags: Frag[];
  /** Payload length, known once the last fragment (MF = 0) arrived; -1 before. */
  total: number;
  bytes: number;
  header: Uint8Array;
  timer: Timer;
}

const IP_MAX_PACKET = 65535;

/**
 * IPv4 reassembly (RFC 791 section 3.2 and RFC 815's idea of holes, kept as a sorted fragment
 * list). Datagrams are keyed by (src, dst, protocol, id) and held at most `timeout` ns (Linux
 * ipfrag_time). Memory is bounded as Linux 3.x ip_defrag does: when the fragments held pass
 * `highThresh` (ipfrag_high_thresh), the least recently fed datagrams are evicted until
 * `lowThresh` (ipfrag_low_thresh) is reached, and reassembly goes on (ip_evictor). Memory
 * counts fragment payload bytes (Linux counts skb truesize, a few hundred bytes more per
 * fragment). Overlapping fragments drop the whole datagram (what Linux does since 4.19 and
 * RFC 5722 requires for IPv6; older kernels trimmed them); an exact duplicate is ignored.
 */
export class Reassembler {
  /** In least-recently-fed order (Map keeps insertion order; a fed datagram moves to the end). */
  private readonly pending = new Map<string, Datagram>();
  private mem = 0;
  readonly stats: ReassemblyStats = { reassembled: 0, timeouts: 0, evicted: 0, dropped: 0 };

  constructor(
    private readonly env: Env,
    private readonly timeout: number,
    private readonly highThresh: number,
    private readonly lowThresh: number,
  ) {}

  get inProgress(): number {
    return this.pending.size;
  }

  /** Payload bytes of the fragments held. */
  get memory(): number {
    return this.mem;
  }

  /**
   * Adds a fragment (its IP header at `pkt.l3`), holding its bytes; returns the whole
   * datagram, in a new buffer of `mem`, when complete.
   */
  add(pkt: Packet, ip: Ipv4Repr, mem: PacketMemory): Packet | null {
    if (this.mem > this.highThresh) this.evict();
    const key = `${ip.src}:${ip.dst}:${ip.protocol}:${ip.ident}`;
    const start = pkt.l3 + ip.headerLen;
    const len = ip.payloadLen;
    // Every fragment but the last carries a multiple of 8 bytes; an empty one carries nothing.
    if ((ip.moreFragments && len % 8 !== 0) || len === 0) {
      this.stats.dropped++;
      return null;
    }
    let dg = this.pending.get(key);
    if (dg === undefined) {
      const d: Datagram = { key, frags: [], total: -1, bytes: 0, header: new Uint8Array(0), timer: this.env.timer(() => this.expire(d)) };
      d.timer.setIn(this.timeout);
      dg = d;
    } else this.pending.delete(key);
    this.pending.set(key, dg); // most recently fed last
    const off = ip.fragOffset;
    if (!ip.moreFragments) {
      if (dg.total >= 0 && dg.total !== off + len) return this.abandon(dg);
      dg.total = off + len;
    }
    if (dg.total >= 0 && off + len > dg.total) return this.abandon(dg);
    // Insert in order; an exact duplicate is ignored, any other overlap abandons the datagram.
    let i = 0;
    const end = off + len;
    while (i < dg.frags.length && dg.frags[i]!.off < off) i++;
    const prev = dg.frags[i - 1];
    const next = dg.frags[i];
    if ((next !== undefined && next.off === off && next.end === end) || (prev !== undefined && prev.off === off && prev.end === end)) {
      this.stats.dropped++;
      return null;
    }
    if ((prev !== undefined && prev.end > off) || (next !== undefined && end > next.off)) return this.abandon(dg);
    const held = pkt.keep(start, len);
    if (off === 0) dg.header = pkt.data.slice(pkt.l3, start);
    dg.frags.splice(i, 0, { off, end, data: held.data, buf: held.buf });
    dg.bytes += len;
    this.mem += len;
    if (dg.total < 0 || dg.header.length === 0 || dg.bytes !== dg.total) return null;
    // ip_frag_reasm: a datagram longer than an IP packet can be is dropped.
    if (dg.header.length + dg.total > IP_MAX_PACKET) return this.abandon(dg);
    return this.complete(dg, mem);
  }

  /** ip_evictor: drop the least recently fed datagrams until memory is at the low threshold. */
  private evict(): void {
    for (const dg of this.pending.values()) {
      if (this.mem <= this.lowThresh) return;
      this.stats.evicted++;
      this.stats.dropped += dg.frags.length;
      this.forget(dg);
    }
  }

  private complete(dg: Datagram, mem: PacketMemory): Packet {
    const hl = dg.header.length;
    const p = Packet.alloc(mem, ETH.HEADER_LEN + hl + dg.total);
    const buf = p.data;
    buf.set(dg.header, ETH.HEADER_LEN);
    for (const f of dg.frags) buf.set(f.data, ETH.HEADER_LEN + hl + f.off);
    this.forget(dg);
    const ip = new Ipv4Packet(buf, ETH.HEADER_LEN);
    ip.totalLen = hl + dg.total;
    ip.flagsFrag = ip.flagsFrag & 0x4000;
    ip.fillChecksum();
    p.l3 = ETH.HEADER_LEN;
    p.l4 = ETH.HEADER_LEN + hl;
    this.stats.reassembled++;
    return p;
  }

  private abandon(dg: Datagram): null {
    this.stats.dropped += dg.frags.length + 1;
    this.forget(dg);
    return null;
  }

  private expire(dg: Datagram): void {
    this.stats.timeouts++;
    this.forget(dg);
  }

  private forget(dg: Datagram): void {
    dg.timer.cancel();
    this.mem -= dg.bytes;
    this.pending.delete(dg.key);
    for (const f of dg.frags) f.buf?.put();
    dg.frags.length = 0;
  }
}
