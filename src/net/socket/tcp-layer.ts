import { Deque, type Rng, type SimEvent } from '../../sim/index.js';
import type { Packet } from '../iface/packet.js';
import type { Stack } from '../stack.js';
import { formatIpv4, type Ipv4Addr } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import type { Ipv4Repr } from '../wire/ipv4.js';
import { ACK, RST, SYN, parseTcp, seqGt, type TcpRepr } from '../wire/tcp.js';
import { SocketError, sleepOn, syscallCost, wake } from './errors.js';
import { takeOverTimeWait, type TcpControlBlock } from './tcp-control-block.js';
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
  /** Duplicate ACKs received, and segments received out of order, over all connections (TcpExtTCP…: the sockets' counts summed). */
  dupAcksIn: number;
  ofoSegs: number;
  /** RSTs sent for segments that matched no connection. */
  rstsOut: number;
  /** Connections opened actively / passively. */
  activeOpens: number;
  passiveOpens: number;
  /** SYNs dropped because the listener's backlog was full. */
  listenDrops: number;
  /** Active opens that took over a TIME_WAIT connection of the same four-tuple (tcp_twsk_unique). */
  timeWaitReused: number;
  /** SYNs that reopened a connection in TIME_WAIT here (tcp_timewait_state_process: TCP_TW_SYN). */
  timeWaitSynReopened: number;
  /** Segments with a bad option, taken with that option ignored (Linux tcp_parse_options). */
  badOptions: number;
}

const EPHEMERAL_LOW = 32768; // Linux ip_local_port_range default
const EPHEMERAL_HIGH = 61000;
/** tcp_twsk_unique with tcp_tw_reuse: get_seconds() - tw_ts_recent_stamp > 1. */
const TW_REUSE_AGE = 1e9;

/** A local port for a new connection, and the TIME_WAIT connection it takes over, if any. */
export interface PortChoice {
  lport: number;
  tw: TcpControlBlock | null;
}

/** Connection demultiplexing, listeners, ports and RSTs for strays (RFC 9293 3.10.7.1). */
export class TcpLayer {
  readonly stats: TcpLayerStats = {
    segsIn: 0,
    segsOut: 0,
    retransSegs: 0,
    fastRetransmits: 0,
    timeouts: 0,
    dupAcksIn: 0,
    ofoSegs: 0,
    rstsOut: 0,
    activeOpens: 0,
    passiveOpens: 0,
    listenDrops: 0,
    timeWaitReused: 0,
    timeWaitSynReopened: 0,
    badOptions: 0,
  };
  /** lport -> (raddr * 65536 + rport) -> connection. */
  private readonly conns = new Map<number, Map<number, TcpControlBlock>>();
  private readonly listeners = new Map<number, TcpListener>();
  private nextEphemeral = EPHEMERAL_LOW;
  readonly rng: Rng;
  /**
   * net.ipv4.tcp_tw_reuse (Linux default 0): whether the ephemeral-port search may take over
   * a TIME_WAIT connection whose last timestamp is over a second old. A port given by bind()
   * may take one over whenever it used timestamps, whatever this says.
   */
  twReuse = false;

  /**
   * The host's timestamp clock offset: Linux 3.x stamps every connection with the same
   * tcp_time_stamp (jiffies), so TIME_WAIT can compare a new connection's timestamps with an
   * old one's (per-connection offsets came with Linux 4.10).
   */
  readonly tsOffset: number;

  constructor(readonly stack: Stack) {
    this.rng = stack.env.rng.fork(`tcp:${stack.name}`);
    this.tsOffset = stack.env.rng.fork(`tcp:${stack.name}:ts`).nextU32();
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

  /** @internal A local port for a connection to (raddr, rport) from the ephemeral range. */
  ephemeralPort(raddr: Ipv4Addr, rport: number): PortChoice | SocketError {
    for (let i = 0; i <= EPHEMERAL_HIGH - EPHEMERAL_LOW; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p >= EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
      if (this.listeners.has(p)) continue;
      const c = this.checkEstablished(p, raddr, rport, false);
      if (!(c instanceof SocketError)) return c;
    }
    return new SocketError('EADDRNOTAVAIL', 'no free ephemeral TCP port (TIME_WAIT holds them all; net.ipv4.tcp_tw_reuse is off)');
  }

  /**
   * @internal Linux __inet_check_established: whether (lport, raddr, rport) is free, or held
   * by a TIME_WAIT connection this one may take over (tcp_twsk_unique: it used timestamps,
   * and the port was bound explicitly or tcp_tw_reuse allows it after a second).
   */
  checkEstablished(lport: number, raddr: Ipv4Addr, rport: number, bound: boolean): PortChoice | SocketError {
    const held = this.conns.get(lport)?.get(raddr * 65536 + rport);
    if (held === undefined) return { lport, tw: null };
    if (
      held.state === 'TIME_WAIT' &&
      held.tsOk &&
      held.tsRecentStamp > 0 &&
      (bound || (this.twReuse && this.stack.env.now - held.tsRecentStamp > TW_REUSE_AGE))
    ) {
      return { lport, tw: held };
    }
    return new SocketError('EADDRNOTAVAIL', `local port ${lport} to ${formatIpv4(raddr)}:${rport} is in use (${held.state})`);
  }

  /** @internal bind() of a socket to connect from: the port must not be listened on. */
  bindCheck(port: number): SocketError | undefined {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return new SocketError('EINVAL', `port ${port} is not 1..65535`);
    if (this.listeners.has(port)) return new SocketError('EADDRINUSE', `TCP port ${port} is in use by a listener`);
    return undefined;
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
    if (r.optionError !== undefined) this.stats.badOptions++;
    const s = this.conns.get(r.dstPort)?.get(ip.src * 65536 + r.srcPort);
    const l = this.listeners.get(r.dstPort);
    if (s !== undefined) {
      // tcp_timewait_state_process: a new SYN for a four-tuple in TIME_WAIT here, beyond the
      // old incarnation's sequence space or timestamps, reopens it (RFC 1122 4.2.2.13).
      if (s.state === 'TIME_WAIT' && l !== undefined && (r.flags & (SYN | ACK | RST)) === SYN && this.synReopens(s, r)) {
        const iss = takeOverTimeWait(s);
        this.stats.timeWaitSynReopened++;
        l.synArrives(r, pkt, ip, iss);
        return;
      }
      segmentArrives(s, r, pkt);
      return;
    }
    if (l !== undefined && (r.flags & (SYN | ACK | RST)) === SYN) {
      l.synArrives(r, pkt, ip);
      return;
    }
    if ((r.flags & RST) === 0) this.sendResetFor(r, ip);
  }

  private synReopens(tw: TcpControlBlock, r: TcpRepr): boolean {
    // PAWS first: a SYN with an older timestamp is an old duplicate.
    if (tw.tsOk && r.tsVal !== undefined && ((r.tsVal - tw.tsRecent) | 0) < 0) return false;
    return seqGt(r.seq, tw.rcvNxt) || (tw.tsOk && r.tsVal !== undefined && ((tw.tsRecent - r.tsVal) | 0) < 0);
  }

  /** RFC 9293 3.10.7.1: the reset answering a segment for no connection. */
  sendResetFor(r: TcpRepr, ip: Ipv4Repr): void {
    const segLen = r.payloadLen + ((r.flags & SYN) !== 0 ? 1 : 0) + ((r.flags & 1) !== 0 ? 1 : 0);
    const hasAck = (r.flags & ACK) !== 0;
    this.stats.rstsOut++;
    sendBare(
      this,
      ip.dst,
      r.dstPort,
      ip.src,
      r.srcPort,
      hasAck ? r.ack : 0,
      hasAck ? 0 : (r.seq + segLen) >>> 0,
      hasAck ? RST : RST | ACK,
      'softirq',
    );
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
  synArrives(r: TcpRepr, pkt: Packet, ip: Ipv4Repr, iss?: number): void {
    if (this.pending >= this.backlog) {
      this.layer.stats.listenDrops++;
      return;
    }
    this.pending++;
    this.layer.stats.passiveOpens++;
    const s = new TcpSocket(this.layer, this.opts);
    openPassive(s.tcb, this, r, ip, iss);
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
