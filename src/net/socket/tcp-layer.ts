import { Deque, type Rng, type SimEvent } from '../../sim/index.js';
import type { Packet } from '../iface/packet.js';
import type { Stack } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import type { Ipv4Repr } from '../wire/ipv4.js';
import { ACK, RST, SYN, parseTcp, type TcpRepr } from '../wire/tcp.js';
import { SocketError, sleepOn, syscallCost, wake } from './errors.js';
import type { TcpControlBlock } from './tcp-control-block.js';
import { openPassive } from './tcp-handshake.js';
import { segmentArrives } from './tcp-input.js';
import { sendBare } from './tcp-output.js';
import { TcpSocket, type TcpOptions } from './tcp-socket.js';

export interface TcpLayerStats {
  segsIn: number;
  segsOut: number;
  /** Segments sent again (timeouts, fast retransmit, partial ACKs, go-back-N after RTO). */
  retransSegs: number;
  fastRetransmits: number;
  timeouts: number;
  /** RSTs sent for segments that matched no connection. */
  rstsOut: number;
  /** Connections opened actively / passively. */
  activeOpens: number;
  passiveOpens: number;
  /** SYNs dropped because the listener's backlog was full. */
  listenDrops: number;
}

const EPHEMERAL_LOW = 32768; // Linux ip_local_port_range default
const EPHEMERAL_HIGH = 61000;

/** Connection demultiplexing, listeners, ports and RSTs for strays (RFC 9293 3.10.7.1). */
export class TcpLayer {
  readonly stats: TcpLayerStats = { segsIn: 0, segsOut: 0, retransSegs: 0, fastRetransmits: 0, timeouts: 0, rstsOut: 0, activeOpens: 0, passiveOpens: 0, listenDrops: 0 };
  /** lport -> (raddr * 65536 + rport) -> connection. */
  private readonly conns = new Map<number, Map<number, TcpControlBlock>>();
  private readonly listeners = new Map<number, TcpListener>();
  private nextEphemeral = EPHEMERAL_LOW;
  readonly rng: Rng;

  constructor(readonly stack: Stack) {
    this.rng = stack.env.rng.fork(`tcp:${stack.name}`);
  }

  /** A new socket, to connect. */
  socket(opts: TcpOptions = {}): TcpSocket {
    return new TcpSocket(this, opts);
  }

  /** Listens on `port` (bind + listen). */
  listen(port: number, opts: TcpOptions & { backlog?: number } = {}): TcpListener | SocketError {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return new SocketError('EINVAL', `port ${port} is not 1..65535`);
    if (this.listeners.has(port)) return new SocketError('EADDRINUSE', `TCP port ${port} is in use`);
    const l = new TcpListener(this, port, Math.min(opts.backlog ?? this.stack.costs.backlog, this.stack.costs.backlog), opts);
    this.listeners.set(port, l);
    return l;
  }

  /** Connections currently in the table (any state but CLOSED). */
  get connections(): number {
    let n = 0;
    for (const m of this.conns.values()) n += m.size;
    return n;
  }

  /** @internal */
  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  /** @internal An unused local port for a connection to (raddr, rport). */
  ephemeralPort(raddr: Ipv4Addr, rport: number): number | SocketError {
    const key = raddr * 65536 + rport;
    for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
      if (this.listeners.has(p)) continue;
      if (this.conns.get(p)?.has(key) === true) continue;
      return p;
    }
    return new SocketError('EADDRNOTAVAIL', 'no free ephemeral TCP port (TIME_WAIT holds them all?)');
  }

  /** @internal */
  register(s: TcpControlBlock): void {
    let m = this.conns.get(s.localPort);
    if (m === undefined) this.conns.set(s.localPort, (m = new Map<number, TcpControlBlock>()));
    m.set(s.remoteAddr * 65536 + s.remotePort, s);
  }

  /** @internal */
  unregister(s: TcpControlBlock): void {
    const m = this.conns.get(s.localPort);
    if (m === undefined) return;
    const k = s.remoteAddr * 65536 + s.remotePort;
    if (m.get(k) === s) m.delete(k);
    if (m.size === 0) this.conns.delete(s.localPort);
  }

  input(pkt: Packet, ip: Ipv4Repr): void {
    const r = parseTcp(pkt.data, pkt.l4, ip.payloadLen, ip.src, ip.dst, pkt.csum === 0 ? 'verify' : 'trusted');
    if (r instanceof WireError) {
      this.stack.malformed(r);
      return;
    }
    this.stats.segsIn++;
    const s = this.conns.get(r.dstPort)?.get(ip.src * 65536 + r.srcPort);
    if (s !== undefined) {
      segmentArrives(s, r, pkt);
      return;
    }
    const l = this.listeners.get(r.dstPort);
    if (l !== undefined && (r.flags & (SYN | ACK | RST)) === SYN) {
      l.synArrives(r, pkt, ip);
      return;
    }
    if ((r.flags & RST) === 0) this.sendResetFor(r, ip);
  }

  /** RFC 9293 3.10.7.1: the reset answering a segment for no connection. */
  sendResetFor(r: TcpRepr, ip: Ipv4Repr): void {
    const segLen = r.payloadLen + ((r.flags & SYN) !== 0 ? 1 : 0) + ((r.flags & 1) !== 0 ? 1 : 0);
    const hasAck = (r.flags & ACK) !== 0;
    this.stats.rstsOut++;
    sendBare(this, ip.dst, r.dstPort, ip.src, r.srcPort, hasAck ? r.ack : 0, hasAck ? 0 : (r.seq + segLen) >>> 0, hasAck ? RST : RST | ACK, 'softirq');
  }
}

/** A listening socket: completed connections wait in its accept queue. */
export class TcpListener {
  private readonly acceptQueue = new Deque<TcpSocket>();
  private waiter: SimEvent<void> | null = null;
  /** Connections not yet accepted (SYN_RECEIVED or queued). */
  pending = 0;
  private closed = false;

  constructor(
    private readonly layer: TcpLayer,
    readonly port: number,
    readonly backlog: number,
    private readonly opts: TcpOptions,
  ) {}

  /** Waits for a connection and returns it. */
  *accept(): Generator<SimEvent<unknown>, TcpSocket | SocketError, unknown> {
    const stack = this.layer.stack;
    yield stack.cpu.exec(syscallCost(stack, 0), 'kernel');
    while (this.acceptQueue.length === 0) {
      if (this.closed) return new SocketError('EINVAL', 'listener closed');
      this.waiter = stack.env.event<void>();
      yield* sleepOn(stack, this.waiter);
    }
    this.pending--;
    return this.acceptQueue.shift()!;
  }

  close(): void {
    this.closed = true;
    this.layer.unlisten(this.port);
    this.wake();
  }

  /** @internal */
  synArrives(r: TcpRepr, pkt: Packet, ip: Ipv4Repr): void {
    if (this.pending >= this.backlog) {
      this.layer.stats.listenDrops++;
      return;
    }
    this.pending++;
    this.layer.stats.passiveOpens++;
    const s = new TcpSocket(this.layer, this.opts);
    openPassive(s.tcb, this, r, ip);
    void pkt;
  }

  /** @internal The handshake of a child completed. */
  established(s: TcpSocket): void {
    this.acceptQueue.push(s);
    this.wake();
  }

  /** @internal A child died before being accepted. */
  aborted(): void {
    this.pending--;
  }

  private wake(): void {
    this.waiter = wake(this.waiter);
  }
}
