import { Deque, Timer, type SimEvent, type Time } from '../../sim/index.js';
import { CSUM_PARTIAL, type Packet, type PacketBuffer } from '../iface/packet.js';
import type { Stack } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import { IP, IPPROTO_UDP, type Ipv4Repr } from '../wire/ipv4.js';
import { UDP, emitUdp, parseUdp } from '../wire/udp.js';
import { SocketError, sleepOn, syscallCost, wake } from './errors.js';

export interface UdpStats {
  datagramsIn: number;
  datagramsOut: number;
  /** Datagrams for a port nobody has bound (Linux counts them as NoPorts). */
  noPort: number;
  /** Datagrams dropped because the socket's receive buffer was full (RcvbufErrors). */
  rcvbufErrors: number;
}

export interface Datagram {
  data: Uint8Array;
  src: Ipv4Addr;
  srcPort: number;
}

const EPHEMERAL_LOW = 32768; // Linux ip_local_port_range default 32768-61000
const EPHEMERAL_HIGH = 61000;

export class UdpLayer {
  private readonly bound = new Map<number, UdpSocket>();
  readonly stats: UdpStats = { datagramsIn: 0, datagramsOut: 0, noPort: 0, rcvbufErrors: 0 };
  private nextEphemeral = EPHEMERAL_LOW;

  constructor(readonly stack: Stack) {}

  /** A new unbound socket. */
  socket(): UdpSocket {
    return new UdpSocket(this);
  }

  /** @internal */
  bind(sock: UdpSocket, port: number): number | SocketError {
    if (port === 0) {
      for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
        const p = this.nextEphemeral;
        this.nextEphemeral = p >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
        if (!this.bound.has(p)) {
          this.bound.set(p, sock);
          return p;
        }
      }
      return new SocketError('EADDRNOTAVAIL', 'no free ephemeral UDP port');
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) return new SocketError('EINVAL', `port ${port} is not 1..65535`);
    if (this.bound.has(port)) return new SocketError('EADDRINUSE', `UDP port ${port} is in use`);
    this.bound.set(port, sock);
    return port;
  }

  /** @internal */
  unbind(port: number): void {
    this.bound.delete(port);
  }

  input(pkt: Packet, ip: Ipv4Repr): void {
    const r = parseUdp(pkt.data, pkt.l4, ip.payloadLen, ip.src, ip.dst, pkt.csum === 0 ? 'verify' : 'trusted');
    if (r instanceof WireError) {
      this.stack.malformed(r);
      return;
    }
    this.stats.datagramsIn++;
    const sock = this.bound.get(r.dstPort);
    if (sock === undefined) {
      this.stats.noPort++;
      return;
    }
    const start = pkt.l4 + UDP.HEADER_LEN;
    sock.deliver({ data: pkt.data.subarray(start, start + r.payloadLen), src: ip.src, srcPort: r.srcPort }, pkt);
  }
}

/**
 * A UDP socket. `sendTo` blocks while the datagrams it sent and the device has not yet
 * released exceed the send buffer (Linux sock_alloc_send_skb waiting on sk_wmem_alloc);
 * received datagrams beyond the receive buffer are dropped and counted. Both buffers count
 * datagram bytes, not Linux's skb truesize (which adds the sk_buff and whatever buffer the
 * driver allocated: for small datagrams several times their size), so a receive buffer here
 * holds more small datagrams than Linux's would.
 */
export class UdpSocket {
  port = 0;
  sndbuf: number;
  rcvbuf: number;
  private wmemUsed = 0;
  private rmemUsed = 0;
  /** Received datagrams, each still in the buffer it arrived in (held until read). */
  private readonly rxq = new Deque<{ d: Datagram; buf: PacketBuffer | null }>();
  private reader: SimEvent<void> | null = null;
  private writer: SimEvent<void> | null = null;
  private closed = false;
  /** Datagrams this socket dropped for want of receive buffer. */
  drops = 0;
  /** SO_RCVTIMEO: how long recvFrom waits before failing with EAGAIN, ns; 0 waits for ever. */
  rcvTimeout: Time = 0;
  private rcvTimer: Timer | null = null;
  private timedOut = false;

  constructor(private readonly layer: UdpLayer) {
    this.sndbuf = layer.stack.costs.udpWmem;
    this.rcvbuf = layer.stack.costs.udpRmem;
  }

  bind(port = 0): number | SocketError {
    if (this.port !== 0) return new SocketError('EINVAL', `already bound to ${this.port}`);
    const p = this.layer.bind(this, port);
    if (typeof p === 'number') this.port = p;
    return p;
  }

  /** Sends one datagram (copied from `data`); returns the bytes sent. */
  *sendTo(dst: Ipv4Addr, dstPort: number, data: Uint8Array): Generator<SimEvent<unknown>, number | SocketError, unknown> {
    const stack = this.layer.stack;
    if (this.port === 0) {
      const b = this.bind(0);
      if (b instanceof SocketError) return b;
    }
    if (data.length > 65507) return new SocketError('EMSGSIZE', `datagram of ${data.length} bytes exceeds 65507`);
    const route = stack.route(dst);
    if (route === undefined) return new SocketError('EHOSTUNREACH', `no route to ${dst}`);
    yield stack.cpu.exec(syscallCost(stack, data.length), 'kernel');
    const len = UDP.HEADER_LEN + data.length;
    while (this.wmemUsed > 0 && this.wmemUsed + len > this.sndbuf) {
      this.writer = stack.env.event<void>();
      yield* sleepOn(stack, this.writer);
    }
    const pkt = stack.buildIp(route.src, dst, IPPROTO_UDP, len, IP.HEADER_LEN + len <= route.iface.dev.mtu);
    pkt.data.set(data, pkt.l4 + UDP.HEADER_LEN);
    pkt.iface = route.iface;
    pkt.nextHop = route.nextHop;
    // Partial checksum when the device finishes it and no fragmenting is needed; otherwise
    // computed here over the whole datagram (Linux udp_send_skb / ip_append_data).
    const offload = route.iface.features.txCsum && pkt.length - pkt.l3 <= route.iface.dev.mtu;
    emitUdp({ srcPort: this.port, dstPort, payloadLen: data.length }, pkt.data, pkt.l4, route.src, dst, offload ? 'partial' : 'full');
    if (offload) {
      pkt.csum = CSUM_PARTIAL;
      pkt.csumStart = pkt.l4;
      pkt.csumOffset = 6;
    }
    this.wmemUsed += len;
    pkt.destructor = () => this.freeWmem(len);
    this.layer.stats.datagramsOut++;
    stack.ipOutput(pkt, 'kernel', offload ? 0 : Math.round(len * stack.costs.csumPerByte));
    return data.length;
  }

  /** Receives one datagram (blocking, up to `rcvTimeout` if set), copied into a new buffer. */
  *recvFrom(): Generator<SimEvent<unknown>, Datagram | SocketError, unknown> {
    const stack = this.layer.stack;
    if (this.rxq.length === 0 && this.rcvTimeout > 0) {
      this.timedOut = false;
      this.rcvTimer ??= new Timer(stack.env, () => {
        this.timedOut = true;
        this.wakeReader();
      });
      this.rcvTimer.setIn(this.rcvTimeout);
    }
    while (this.rxq.length === 0) {
      if (this.closed) return new SocketError('ENOTCONN', 'socket closed');
      if (this.timedOut) {
        this.timedOut = false;
        return new SocketError('EAGAIN', `no datagram within ${this.rcvTimeout} ns (SO_RCVTIMEO)`);
      }
      this.reader = stack.env.event<void>();
      yield* sleepOn(stack, this.reader);
    }
    this.rcvTimer?.cancel();
    const { d, buf } = this.rxq.shift()!;
    this.rmemUsed -= d.data.length;
    const out = { data: d.data.slice(), src: d.src, srcPort: d.srcPort };
    buf?.put();
    yield stack.cpu.exec(syscallCost(stack, d.data.length), 'kernel');
    return out;
  }

  /** Datagrams waiting to be read. */
  get queued(): number {
    return this.rxq.length;
  }

  close(): void {
    if (this.port !== 0) this.layer.unbind(this.port);
    this.closed = true;
    for (let q = this.rxq.shift(); q !== undefined; q = this.rxq.shift()) q.buf?.put();
    this.rmemUsed = 0;
    this.wakeReader();
  }

  /** @internal Queues a datagram whose bytes are in `pkt` (held while queued). */
  deliver(d: Datagram, pkt: Packet): void {
    if (this.rmemUsed + d.data.length > this.rcvbuf) {
      this.drops++;
      this.layer.stats.rcvbufErrors++;
      return;
    }
    this.rmemUsed += d.data.length;
    this.rxq.push({ d, buf: pkt.hold() });
    this.wakeReader();
  }

  private wakeReader(): void {
    this.reader = wake(this.reader);
  }

  private freeWmem(len: number): void {
    this.wmemUsed -= len;
    this.writer = wake(this.writer);
  }
}
