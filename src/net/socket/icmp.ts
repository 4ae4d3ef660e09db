import { Deque, type SimEvent } from '../../sim/index.js';
import type { Packet, PacketBuffer } from '../iface/packet.js';
import type { Stack } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import { ICMP, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, emitIcmp, parseIcmp } from '../wire/icmp.js';
import { IP, IPPROTO_ICMP, type Ipv4Repr } from '../wire/ipv4.js';
import { SocketError, sleepOn, syscallCost, wake } from './errors.js';

export interface IcmpStats {
  echoRequestsIn: number;
  echoRepliesOut: number;
  echoRepliesIn: number;
  /** Replies no ping socket was waiting for. */
  unmatched: number;
}

export interface EchoReply {
  src: Ipv4Addr;
  seq: number;
  data: Uint8Array;
}

/** ICMP: answers echo requests in softirq (icmp_echo) and delivers replies to ping sockets. */
export class IcmpLayer {
  readonly stats: IcmpStats = { echoRequestsIn: 0, echoRepliesOut: 0, echoRepliesIn: 0, unmatched: 0 };
  private readonly sockets = new Map<number, PingSocket>();
  private nextIdent = 1;

  constructor(readonly stack: Stack) {}

  /** A ping socket (Linux's SOCK_DGRAM/IPPROTO_ICMP) with its own echo identifier. */
  openPing(): PingSocket {
    while (this.sockets.has(this.nextIdent)) this.nextIdent = (this.nextIdent % 0xffff) + 1;
    const s = new PingSocket(this, this.nextIdent);
    this.sockets.set(s.ident, s);
    this.nextIdent = (this.nextIdent % 0xffff) + 1;
    return s;
  }

  /** @internal */
  close(s: PingSocket): void {
    this.sockets.delete(s.ident);
  }

  input(pkt: Packet, ip: Ipv4Repr): void {
    const r = parseIcmp(pkt.data, pkt.l4, ip.payloadLen);
    if (r instanceof WireError) {
      this.stack.malformed(r);
      return;
    }
    if (r.type === ICMP_ECHO_REQUEST && r.code === 0) {
      this.stats.echoRequestsIn++;
      // RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence and data.
      this.send(ip.dst, ip.src, ICMP_ECHO_REPLY, r.ident, r.seq, pkt.data.subarray(r.dataOff, r.dataOff + r.dataLen), 'softirq');
      this.stats.echoRepliesOut++;
    } else if (r.type === ICMP_ECHO_REPLY && r.code === 0) {
      this.stats.echoRepliesIn++;
      const s = this.sockets.get(r.ident);
      if (s === undefined) this.stats.unmatched++;
      else s.deliver({ src: ip.src, seq: r.seq, data: pkt.data.subarray(r.dataOff, r.dataOff + r.dataLen) }, pkt);
    }
  }

  /** @internal Builds and sends an ICMP message; false if there is no route. */
  send(src: Ipv4Addr, dst: Ipv4Addr, type: number, ident: number, seq: number, data: Uint8Array, ctx: 'kernel' | 'softirq'): boolean {
    const route = this.stack.route(dst);
    if (route === undefined) {
      this.stack.stats.noRoute++;
      return false;
    }
    // Echo replies come from the kernel's ICMP socket (IP_PMTUDISC_DONT); requests from a
    // ping socket set DF when they fit (IP_PMTUDISC_WANT).
    const len = ICMP.HEADER_LEN + data.length;
    const df = type === ICMP_ECHO_REQUEST && IP.HEADER_LEN + len <= route.iface.dev.mtu;
    const pkt = this.stack.buildIp(src === 0 ? route.src : src, dst, IPPROTO_ICMP, len, df);
    pkt.data.set(data, pkt.l4 + ICMP.HEADER_LEN);
    emitIcmp({ type, code: 0, ident, seq, dataLen: data.length }, pkt.data, pkt.l4);
    pkt.iface = route.iface;
    pkt.nextHop = route.nextHop;
    this.stack.ipOutput(pkt, ctx, Math.round((ICMP.HEADER_LEN + data.length) * this.stack.costs.csumPerByte));
    return true;
  }
}

/** Sends echo requests and receives the replies addressed to its identifier. */
export class PingSocket {
  /** Replies, each still in the buffer it arrived in (held until read). */
  private readonly replies = new Deque<{ r: EchoReply; buf: PacketBuffer | null }>();
  private reader: SimEvent<void> | null = null;

  constructor(
    private readonly layer: IcmpLayer,
    readonly ident: number,
  ) {}

  *send(dst: Ipv4Addr, seq: number, data: Uint8Array): Generator<SimEvent<unknown>, void | SocketError, unknown> {
    const stack = this.layer.stack;
    yield stack.cpu.exec(syscallCost(stack, data.length), 'kernel');
    if (!this.layer.send(0, dst, ICMP_ECHO_REQUEST, this.ident, seq, data, 'kernel')) return new SocketError('EHOSTUNREACH', 'no route');
  }

  *recv(): Generator<SimEvent<unknown>, EchoReply, unknown> {
    const stack = this.layer.stack;
    while (this.replies.length === 0) {
      this.reader = stack.env.event<void>();
      yield* sleepOn(stack, this.reader);
    }
    const { r, buf } = this.replies.shift()!;
    const out = { src: r.src, seq: r.seq, data: r.data.slice() };
    buf?.put();
    yield stack.cpu.exec(syscallCost(stack, r.data.length), 'kernel');
    return out;
  }

  /** Replies waiting, and the event a blocked recv waits on (for workloads that time out). */
  get queued(): number {
    return this.replies.length;
  }

  close(): void {
    for (let q = this.replies.shift(); q !== undefined; q = this.replies.shift()) q.buf?.put();
    this.layer.close(this);
  }

  /** @internal Queues a reply whose bytes are in `pkt` (held while queued). */
  deliver(r: EchoReply, pkt: Packet): void {
    this.replies.push({ r, buf: pkt.hold() });
    this.reader = wake(this.reader);
  }
}
