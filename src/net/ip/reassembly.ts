import type { Env, Timer } from '../../sim/index.js';
import { ETH } from '../wire/ethernet.js';
import { Ipv4Packet, type Ipv4Repr } from '../wire/ipv4.js';
import { Packet } from '../iface/packet.js';

export interface ReassemblyStats {
  /** Datagrams reassembled. */
  reassembled: number;
  /** Datagrams abandoned because a fragment did not come within the timeout (RFC 1122 3.3.2). */
  timeouts: number;
  /** Fragments dropped: overlap, memory limit, inconsistent length. */
  dropped: number;
}

interface Frag {
  off: number;
  end: number;
  data: Uint8Array;
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

/**
 * IPv4 reassembly (RFC 791 section 3.2 and RFC 815's idea of holes, kept as a sorted fragment
 * list). Datagrams are keyed by (src, dst, protocol, id), held at most `timeout` ns (Linux
 * ipfrag_time) and within `highThresh` bytes overall (ipfrag_high_thresh). Overlapping
 * fragments drop the whole datagram (what Linux does since 4.19 and RFC 5722 requires for
 * IPv6; older kernels trimmed them).
 */
export class Reassembler {
  private readonly pending = new Map<string, Datagram>();
  private memory = 0;
  readonly stats: ReassemblyStats = { reassembled: 0, timeouts: 0, dropped: 0 };

  constructor(
    private readonly env: Env,
    private readonly timeout: number,
    private readonly highThresh: number,
  ) {}

  get inProgress(): number {
    return this.pending.size;
  }

  /** Adds a fragment (its IP header at `pkt.l3`); returns the whole datagram when complete. */
  add(pkt: Packet, ip: Ipv4Repr): Packet | null {
    const key = `${ip.src}:${ip.dst}:${ip.protocol}:${ip.ident}`;
    const start = pkt.l3 + ip.headerLen;
    const len = ip.payloadLen;
    if (ip.moreFragments && len % 8 !== 0) {
      this.stats.dropped++;
      return null;
    }
    if (this.memory + len > this.highThresh) {
      this.stats.dropped++;
      return null;
    }
    let dg = this.pending.get(key);
    if (dg === undefined) {
      const d: Datagram = { key, frags: [], total: -1, bytes: 0, header: new Uint8Array(0), timer: this.env.timer(() => this.expire(d)) };
      d.timer.setIn(this.timeout);
      this.pending.set(key, d);
      dg = d;
    }
    const frag: Frag = { off: ip.fragOffset, end: ip.fragOffset + len, data: pkt.data.subarray(start, start + len) };
    if (ip.fragOffset === 0) dg.header = pkt.data.slice(pkt.l3, start);
    if (!ip.moreFragments) {
      if (dg.total >= 0 && dg.total !== frag.end) return this.abandon(dg);
      dg.total = frag.end;
    }
    if (dg.total >= 0 && frag.end > dg.total) return this.abandon(dg);
    // Insert in order; an exact duplicate is ignored, any other overlap abandons the datagram.
    let i = 0;
    while (i < dg.frags.length && dg.frags[i]!.off < frag.off) i++;
    const prev = dg.frags[i - 1];
    const next = dg.frags[i];
    if ((next !== undefined && next.off === frag.off && next.end === frag.end) || (prev !== undefined && prev.off === frag.off && prev.end === frag.end)) return null;
    if ((prev !== undefined && prev.end > frag.off) || (next !== undefined && frag.end > next.off)) return this.abandon(dg);
    dg.frags.splice(i, 0, frag);
    dg.bytes += len;
    this.memory += len;
    if (dg.total < 0 || dg.header.length === 0 || dg.bytes !== dg.total) return null;
    return this.complete(dg);
  }

  private complete(dg: Datagram): Packet {
    this.forget(dg);
    const hl = dg.header.length;
    const buf = new Uint8Array(ETH.HEADER_LEN + hl + dg.total);
    buf.set(dg.header, ETH.HEADER_LEN);
    for (const f of dg.frags) buf.set(f.data, ETH.HEADER_LEN + hl + f.off);
    const ip = new Ipv4Packet(buf, ETH.HEADER_LEN);
    ip.totalLen = hl + dg.total;
    ip.flagsFrag = ip.flagsFrag & 0x4000;
    ip.fillChecksum();
    const p = new Packet(buf);
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
    this.memory -= dg.bytes;
    this.pending.delete(dg.key);
  }
}

