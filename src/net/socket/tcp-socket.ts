import { Deque, type ExecContext, type SimEvent, type Timer } from '../../sim/index.js';
import { CSUM_PARTIAL, GSO_TCPV4, type Packet } from '../iface/packet.js';
import type { Interface } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { IP, IPPROTO_TCP, type Ipv4Repr } from '../wire/ipv4.js';
import { ACK, FIN, PSH, RST, SYN, TCP, emitTcp, seqGeq, seqGt, seqLeq, seqLt, tcpOptionsLen, type TcpRepr } from '../wire/tcp.js';
import { ByteRing } from './byte-ring.js';
import { makeCongestion, type CongestionControl, type CongestionName } from './congestion.js';
import { SocketError, sleepOn, syscallCost, wake } from './errors.js';
import type { TcpLayer, TcpListener } from './tcp-layer.js';

export type TcpState = 'CLOSED' | 'LISTEN' | 'SYN_SENT' | 'SYN_RECEIVED' | 'ESTABLISHED' | 'FIN_WAIT_1' | 'FIN_WAIT_2' | 'CLOSE_WAIT' | 'CLOSING' | 'LAST_ACK' | 'TIME_WAIT';

export interface TcpOptions {
  /** TCP_NODELAY: disable Nagle's algorithm. */
  nodelay?: boolean;
  /** Congestion control; Linux's default is CUBIC. */
  congestion?: CongestionName;
  /** SO_SNDBUF / SO_RCVBUF in bytes of payload; setting one disables its autotuning. */
  sndbuf?: number;
  rcvbuf?: number;
  /** RFC 7323 timestamps and window scaling (Linux defaults: on). */
  timestamps?: boolean;
  windowScaling?: boolean;
}

export interface TcpSocketStats {
  segsOut: number;
  segsIn: number;
  retransSegs: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcksIn: number;
  ofoSegs: number;
  zeroWindowProbes: number;
  delayedAcks: number;
  bytesSent: number;
  bytesReceived: number;
}

const MAX_WSCALE = 14; // RFC 7323 2.3
const TCP_MSS_DEFAULT = 536; // RFC 9293 3.7.1 default send MSS
const SOCKET_WAKE_FRACTION = 3; // sk_stream_write_space: wake writers when a third is free

/**
 * One TCP connection (RFC 9293), with Linux 3.x behaviour where it decides latency and
 * throughput: delayed ACKs with quick-ack and pingpong modes, Nagle with Minshall's
 * variant, RTO per RFC 6298 with Linux's 200 ms floor, NewReno fast recovery (RFC 5681/6582),
 * CUBIC or Reno, window scaling and timestamps (RFC 7323), receive-window advertisement from
 * free buffer, zero-window probing, TCP Small Queues, TIME_WAIT. SACK is not used (SACK-
 * permitted is parsed but never offered, as Linux with tcp_sack = 0).
 */
export class TcpSocket {
  state: TcpState = 'CLOSED';
  localAddr: Ipv4Addr = 0;
  localPort = 0;
  remoteAddr: Ipv4Addr = 0;
  remotePort = 0;
  readonly stats: TcpSocketStats = { segsOut: 0, segsIn: 0, retransSegs: 0, fastRetransmits: 0, timeouts: 0, dupAcksIn: 0, ofoSegs: 0, zeroWindowProbes: 0, delayedAcks: 0, bytesSent: 0, bytesReceived: 0 };
  error: SocketError | null = null;
  nodelay: boolean;

  private iface: Interface | null = null;
  private nextHop: Ipv4Addr = 0;
  private listener: TcpListener | null = null;
  // Send sequence space (RFC 9293 3.3.1); sndMax is the highest sequence sent (BSD snd_max).
  private iss = 0;
  private sndUna = 0;
  private sndNxt = 0;
  private sndMax = 0;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private sndWscale = 0;
  private mss = TCP_MSS_DEFAULT;
  private readonly sndBuf: ByteRing;
  private sndbufLimit: number;
  private readonly sndbufFixed: boolean;
  private finQueued = false;
  private finSeq = 0;
  private sndSml = 0;
  private tsqBytes = 0;
  private tsqThrottled = false;
  // Receive sequence space.
  private irs = 0;
  private rcvNxt = 0;
  private rcvWup = 0;
  private rcvWnd = 0;
  private rcvWscale = 0;
  private rcvMss = TCP_MSS_DEFAULT;
  private readonly rcvQueue = new Deque<Uint8Array>();
  private rcvQueued = 0;
  private ofo: { seq: number; end: number; data: Uint8Array }[] = [];
  private ofoBytes = 0;
  private ofoFin = -1;
  private finReceived = false;
  private rcvbuf: number;
  private readonly rcvbufFixed: boolean;
  private drsCopied = 0;
  private drsStart = 0;
  private rcvRtt = 0;
  // Options.
  private readonly wantTs: boolean;
  private readonly wantWs: boolean;
  private tsOk = false;
  private wsOk = false;
  private tsRecent = 0;
  private tsOffset: number;
  // RTT and retransmission (RFC 6298).
  private srtt = 0;
  private rttvar = 0;
  private rto: number;
  private backoff = 0;
  private retries = 0;
  private timedSeq = -1;
  private timedAt = 0;
  private readonly rtoTimer: Timer;
  private readonly persistTimer: Timer;
  // Congestion and recovery (RFC 5681, 6582).
  private cc: CongestionControl;
  private readonly ccName: CongestionName;
  private inRecovery = false;
  private recover = 0;
  private dupAcks = 0;
  // Delayed ACK (Linux inet_connection_sock icsk_ack).
  private readonly delackTimer: Timer;
  private ackPending = false;
  private quick = 0;
  private pingpong = false;
  private ato = 0;
  private lrcvtime = 0;
  // TIME_WAIT and FIN_WAIT_2 timeout.
  private readonly closeTimer: Timer;
  private userClosed = false;
  // Blocked callers.
  private reader: SimEvent<void> | null = null;
  private writer: SimEvent<void> | null = null;
  private connector: SimEvent<void> | null = null;

  constructor(
    private readonly layer: TcpLayer,
    opts: TcpOptions,
  ) {
    const c = layer.stack.costs;
    const env = layer.stack.env;
    this.nodelay = opts.nodelay ?? false;
    this.ccName = opts.congestion ?? 'cubic';
    this.sndbufFixed = opts.sndbuf !== undefined;
    this.rcvbufFixed = opts.rcvbuf !== undefined;
    this.sndbufLimit = opts.sndbuf ?? c.wmemDefault;
    this.rcvbuf = opts.rcvbuf ?? c.rmemDefault;
    this.sndBuf = new ByteRing(Math.min(this.sndbufLimit, 1 << 16));
    this.wantTs = opts.timestamps ?? true;
    this.wantWs = opts.windowScaling ?? true;
    this.rto = c.rtoInit;
    this.tsOffset = layer.rng.nextU32();
    this.cc = makeCongestion(this.ccName, this.mss, c.initCwnd);
    this.rtoTimer = env.timer(() => this.onRto());
    this.persistTimer = env.timer(() => this.onPersist());
    this.delackTimer = env.timer(() => this.onDelack());
    this.closeTimer = env.timer(() => this.onCloseTimer());
  }

  // ---------------------------------------------------------------- user API

  /** Active open (RFC 9293 3.10.1). Returns when ESTABLISHED, or the error. */
  *connect(addr: Ipv4Addr, port: number): Generator<SimEvent<unknown>, void | SocketError, unknown> {
    const stack = this.layer.stack;
    if (this.state !== 'CLOSED') return new SocketError('EISCONN', `socket is ${this.state}`);
    yield stack.cpu.exec(syscallCost(stack, 0), 'kernel');
    const route = stack.route(addr);
    if (route === undefined) return new SocketError('EHOSTUNREACH', 'no route to host');
    const lport = this.layer.ephemeralPort(addr, port);
    if (lport instanceof SocketError) return lport;
    this.bindTo(route.iface, route.nextHop, route.src, lport, addr, port);
    this.layer.stats.activeOpens++;
    this.iss = this.layer.rng.nextU32();
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.rcvWscale = this.chooseWscale();
    this.state = 'SYN_SENT';
    this.layer.register(this);
    this.sendSyn('kernel');
    this.connector = stack.env.event<void>();
    yield* sleepOn(stack, this.connector);
    if (this.error !== null) return this.error;
  }

  /** Writes all of `data` (copied into the send buffer), blocking while it is full. */
  *send(data: Uint8Array): Generator<SimEvent<unknown>, number | SocketError, unknown> {
    const stack = this.layer.stack;
    let off = 0;
    let first = true;
    while (off < data.length) {
      if (this.error !== null) return this.error;
      if (this.finQueued || !(this.state === 'ESTABLISHED' || this.state === 'CLOSE_WAIT')) return new SocketError('EPIPE', `cannot send in ${this.state}`);
      const room = this.sndbufLimit - this.sndBuf.length;
      if (room <= 0) {
        this.writer = stack.env.event<void>();
        yield* sleepOn(stack, this.writer);
        continue;
      }
      const n = Math.min(room, data.length - off);
      yield stack.cpu.exec((first ? stack.costs.syscall : 0) + Math.round(n * stack.costs.copyPerByte), 'kernel');
      first = false;
      if (this.error !== null) return this.error;
      this.sndBuf.write(data.subarray(off, off + n));
      off += n;
      this.output('kernel');
    }
    return data.length;
  }

  /**
   * Reads up to `max` bytes, blocking until some are there. An empty result means the peer
   * closed (EOF).
   */
  *recv(max: number): Generator<SimEvent<unknown>, Uint8Array | SocketError, unknown> {
    const stack = this.layer.stack;
    while (this.rcvQueued === 0) {
      if (this.error !== null) return this.error;
      if (this.finReceived || this.state === 'CLOSED') {
        yield stack.cpu.exec(stack.costs.syscall, 'kernel');
        return new Uint8Array(0);
      }
      this.reader = stack.env.event<void>();
      yield* sleepOn(stack, this.reader);
    }
    const n = Math.min(max, this.rcvQueued);
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const head = this.rcvQueue.peek()!;
      const take = Math.min(head.length, n - got);
      out.set(take === head.length ? head : head.subarray(0, take), got);
      got += take;
      if (take === head.length) this.rcvQueue.shift();
      else {
        this.rcvQueue.shift();
        this.rcvQueue.unshift(head.subarray(take));
      }
    }
    this.rcvQueued -= n;
    yield stack.cpu.exec(syscallCost(stack, n), 'kernel');
    this.afterRead(n);
    return out;
  }

  /** Closes the connection (RFC 9293 3.10.4); data already written is still delivered. */
  *close(): Generator<SimEvent<unknown>, void, unknown> {
    const stack = this.layer.stack;
    yield stack.cpu.exec(stack.costs.syscall, 'kernel');
    this.userClosed = true;
    switch (this.state) {
      case 'SYN_SENT':
      case 'CLOSED':
        this.destroy();
        return;
      case 'SYN_RECEIVED':
      case 'ESTABLISHED':
      case 'CLOSE_WAIT':
        if (this.rcvQueued > 0) {
          // RFC 2525 2.17 / Linux tcp_close: unread data makes close send a reset.
          this.sendControl(RST | ACK, this.sndNxt, 'kernel');
          this.destroy();
          return;
        }
        this.state = this.state === 'CLOSE_WAIT' ? 'LAST_ACK' : 'FIN_WAIT_1';
        this.finQueued = true;
        this.finSeq = (this.sndUna + this.sndBuf.length) >>> 0;
        this.output('kernel');
        return;
      default:
        return;
    }
  }

  setNoDelay(on: boolean): void {
    this.nodelay = on;
    if (on) this.output('kernel');
  }

  /** Bytes waiting to be read. */
  get readable(): number {
    return this.rcvQueued;
  }

  get congestionWindow(): number {
    return this.cc.cwnd;
  }

  get smoothedRtt(): number {
    return this.srtt;
  }

  get retransmissionTimeout(): number {
    return this.rto;
  }

  get sendBufferLimit(): number {
    return this.sndbufLimit;
  }

  get receiveBufferLimit(): number {
    return this.rcvbuf;
  }

  /** Effective send MSS. */
  get maxSegment(): number {
    return this.mss;
  }

  // ---------------------------------------------------------------- opening

  private bindTo(iface: Interface, nextHop: Ipv4Addr, src: Ipv4Addr, lport: number, raddr: Ipv4Addr, rport: number): void {
    this.iface = iface;
    this.nextHop = nextHop;
    this.localAddr = src;
    this.localPort = lport;
    this.remoteAddr = raddr;
    this.remotePort = rport;
  }

  /** RFC 7323 2.3: the smallest shift that lets the largest receive buffer be advertised. */
  private chooseWscale(): number {
    if (!this.wantWs) return 0;
    let space = Math.max(this.layer.stack.costs.rmemMax, this.rcvbuf);
    let s = 0;
    while (space > 65535 && s < MAX_WSCALE) {
      space >>>= 1;
      s++;
    }
    return s;
  }

  /** @internal A SYN reached a listener: become its SYN_RECEIVED child (RFC 9293 3.10.7.2). */
  openPassive(listener: TcpListener, r: TcpRepr, ip: Ipv4Repr): void {
    const stack = this.layer.stack;
    const route = stack.route(ip.src);
    if (route === undefined) {
      stack.stats.noRoute++;
      listener.aborted();
      return;
    }
    this.listener = listener;
    this.bindTo(route.iface, route.nextHop, ip.dst, r.dstPort, ip.src, r.srcPort);
    this.irs = r.seq;
    this.rcvNxt = (r.seq + 1) >>> 0;
    this.rcvWup = this.rcvNxt;
    this.negotiate(r, true);
    this.iss = this.layer.rng.nextU32();
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.sndWnd = r.window; // RFC 7323 2.2: the window in a SYN is never scaled
    this.sndWl1 = r.seq;
    this.state = 'SYN_RECEIVED';
    this.layer.register(this);
    this.sendSyn('softirq');
  }

  /** Options from the peer's SYN or SYN-ACK. */
  private negotiate(r: TcpRepr, passive: boolean): void {
    if (passive) this.rcvWscale = this.chooseWscale();
    this.wsOk = this.wantWs && r.wscale !== undefined;
    if (this.wsOk) this.sndWscale = Math.min(r.wscale!, MAX_WSCALE);
    else {
      this.sndWscale = 0;
      this.rcvWscale = 0;
    }
    this.tsOk = this.wantTs && r.tsVal !== undefined;
    if (this.tsOk) this.tsRecent = r.tsVal!;
    const ourMss = this.advMss();
    this.mss = Math.min(ourMss, r.mss ?? TCP_MSS_DEFAULT) - (this.tsOk ? 12 : 0);
    this.rcvMss = Math.min(TCP_MSS_DEFAULT, this.mss);
    this.cc = makeCongestion(this.ccName, this.mss, this.layer.stack.costs.initCwnd);
  }

  /** MSS we advertise: the device MTU less IP and TCP headers (RFC 9293 3.7.1). */
  private advMss(): number {
    return Math.min(this.iface!.dev.mtu, 65535) - IP.HEADER_LEN - TCP.HEADER_LEN;
  }

  private sendSyn(ctx: ExecContext): void {
    const synAck = this.state === 'SYN_RECEIVED';
    const flags = synAck ? SYN | ACK : SYN;
    const r = {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq: this.iss,
      ack: synAck ? this.rcvNxt : 0,
      flags,
      // RFC 7323 2.2: unscaled in SYNs; Linux caps the first window at 10 segments of data.
      window: Math.min(65535, this.winFromSpace(this.rcvbuf), 10 * this.advMss()),
      urgent: 0,
      mss: this.advMss(),
      sackPermitted: false,
      payloadLen: 0,
    } as Omit<TcpRepr, 'headerLen'>;
    if (this.wantWs && (!synAck || this.wsOk)) r.wscale = this.rcvWscale;
    if (this.wantTs && (!synAck || this.tsOk)) {
      r.tsVal = this.tsNow();
      r.tsEcr = synAck ? this.tsRecent : 0;
    }
    this.rcvWnd = r.window;
    this.rcvWup = this.rcvNxt;
    if (this.sndMax === this.iss) {
      this.sndMax = (this.iss + 1) >>> 0;
      this.sndNxt = this.sndMax;
      if (this.timedSeq < 0 && this.backoff === 0) this.startTiming(this.sndMax);
    } else {
      this.countRetransmit();
    }
    this.emit(r, 0, 0, ctx);
    if (!this.rtoTimer.armed) this.rtoTimer.setIn(this.rto);
  }

  // ---------------------------------------------------------------- segment arrival

  /** @internal RFC 9293 3.10.7: a segment for this connection. */
  segmentArrives(r: TcpRepr, pkt: Packet, _ip: Ipv4Repr): void {
    this.stats.segsIn++;
    const f = r.flags;
    if (this.state === 'SYN_SENT') {
      this.synSentArrives(r);
      return;
    }
    if (this.state === 'CLOSED') return;
    const payloadOff = pkt.l4 + r.headerLen;
    let payload = r.payloadLen;
    let seq = r.seq;
    const segLen = payload + ((f & SYN) !== 0 ? 1 : 0) + ((f & FIN) !== 0 ? 1 : 0);
    // RFC 7323 5.3 PAWS: a segment with an older timestamp is a duplicate from the past.
    if (this.tsOk && r.tsVal !== undefined && (f & RST) === 0 && ((r.tsVal - this.tsRecent) | 0) < 0) {
      this.sendAck('softirq');
      return;
    }
    // RFC 9293 3.10.7.4 first: sequence acceptability.
    const wnd = Math.max(0, (this.rcvWup + this.rcvWnd - this.rcvNxt) | 0);
    let ok: boolean;
    if (segLen === 0) ok = wnd === 0 ? seq === this.rcvNxt : seqGeq(seq, this.rcvNxt) && seqLt(seq, this.rcvNxt + wnd);
    else ok = wnd > 0 && ((seqGeq(seq, this.rcvNxt) && seqLt(seq, this.rcvNxt + wnd)) || (seqGeq(seq + segLen - 1, this.rcvNxt) && seqLt(seq + segLen - 1, this.rcvNxt + wnd)));
    // A retransmitted segment wholly before rcv_nxt still gets an ACK (dupack for the sender).
    if (!ok) {
      if ((f & RST) === 0) {
        if (this.state === 'TIME_WAIT' && (f & FIN) !== 0) this.closeTimer.setIn(this.layer.stack.costs.timeWait);
        this.sendAck('softirq');
      }
      return;
    }
    // Second: RST (RFC 9293 3.10.7.4; RFC 5961 3.2 accepts it only at exactly rcv_nxt).
    if ((f & RST) !== 0) {
      if (seq !== this.rcvNxt) {
        this.sendAck('softirq'); // challenge ACK
        return;
      }
      this.reset(this.state === 'SYN_RECEIVED' ? 'ECONNREFUSED' : 'ECONNRESET');
      return;
    }
    // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 4.2).
    if ((f & SYN) !== 0) {
      this.sendAck('softirq');
      return;
    }
    if ((f & ACK) === 0) return;
    // Fifth: the ACK field.
    if (this.state === 'SYN_RECEIVED') {
      if (!(seqGt(r.ack, this.sndUna) && seqLeq(r.ack, this.sndMax))) {
        this.sendControl(RST, r.ack, 'softirq');
        return;
      }
      this.state = 'ESTABLISHED';
      this.sndWnd = r.window << this.sndWscale;
      this.sndWl1 = seq;
      this.sndWl2 = r.ack;
      const l = this.listener;
      this.listener = null;
      l?.established(this);
    }
    if (seqGt(r.ack, this.sndMax)) {
      this.sendAck('softirq'); // RFC 9293: ACK of something not yet sent
      return;
    }
    // RFC 7323 4.3: remember the timestamp of the segment that covers Last.ACK.sent.
    if (this.tsOk && r.tsVal !== undefined && seqLeq(seq, this.rcvWup)) this.tsRecent = r.tsVal;
    if (this.tsOk && r.tsEcr !== undefined && r.tsEcr !== 0 && payload > 0) {
      const s = (this.tsNow() - r.tsEcr) >>> 0;
      if (s * 1e6 < this.layer.stack.costs.rtoMax) this.rcvRtt = Math.max(1, s) * 1e6;
    }
    const wasUna = this.sndUna;
    this.ackArrives(r, seq, payload);
    if ((this.state as TcpState) === 'CLOSED') return;
    const finAcked = this.finQueued && seqGt(this.sndUna, this.finSeq);
    if (finAcked) {
      if (this.state === 'FIN_WAIT_1') {
        this.state = 'FIN_WAIT_2';
        if (this.userClosed) this.closeTimer.setIn(this.layer.stack.costs.finTimeout);
      } else if (this.state === 'CLOSING') this.enterTimeWait();
      else if (this.state === 'LAST_ACK') {
        this.destroy();
        return;
      }
    }
    if (this.state === 'TIME_WAIT') {
      if ((f & FIN) !== 0) {
        this.sendAck('softirq');
        this.closeTimer.setIn(this.layer.stack.costs.timeWait);
      }
      return;
    }
    // Seventh: segment text.
    let ofoSeen = false;
    if (payload > 0 && (this.state === 'ESTABLISHED' || this.state === 'FIN_WAIT_1' || this.state === 'FIN_WAIT_2')) {
      let data = pkt.data.subarray(payloadOff, payloadOff + payload);
      if (seqLt(seq, this.rcvNxt)) {
        const skip = (this.rcvNxt - seq) | 0;
        data = data.subarray(skip);
        seq = this.rcvNxt;
        payload -= skip;
      }
      const edge = (this.rcvWup + this.rcvWnd) >>> 0;
      if (seqGt(seq + payload, edge)) {
        payload = Math.max(0, (edge - seq) | 0);
        data = data.subarray(0, payload);
      }
      if (payload > 0) ofoSeen = this.dataArrives(seq, data, pkt.gsoSize > 0 ? pkt.gsoSize : payload);
    }
    // Eighth: FIN.
    if ((f & FIN) !== 0) {
      const finAt = (r.seq + r.payloadLen) >>> 0;
      if (finAt === this.rcvNxt) this.finArrives();
      else if (seqGt(finAt, this.rcvNxt)) {
        this.ofoFin = finAt;
        ofoSeen = true;
      }
    }
    const after = this.state as TcpState;
    if (after === 'CLOSED' || after === 'TIME_WAIT') return;
    if (this.ackPending || ofoSeen) this.ackCheck(ofoSeen);
    if (this.sndUna !== wasUna || this.sndBuf.length > 0 || this.finQueued) this.output('softirq');
  }

  private synSentArrives(r: TcpRepr): void {
    const f = r.flags;
    const ackOk = (f & ACK) !== 0 && seqGt(r.ack, this.iss) && seqLeq(r.ack, this.sndMax);
    if ((f & ACK) !== 0 && !ackOk) {
      if ((f & RST) === 0) this.sendControl(RST, r.ack, 'softirq');
      return;
    }
    if ((f & RST) !== 0) {
      if (ackOk) this.reset('ECONNREFUSED');
      return;
    }
    if ((f & SYN) === 0) return;
    this.irs = r.seq;
    this.rcvNxt = (r.seq + 1) >>> 0;
    this.rcvWup = this.rcvNxt;
    this.negotiate(r, false);
    if (ackOk) {
      this.sampleRtt(r.ack);
      this.sndUna = r.ack;
      this.sndWnd = r.window; // unscaled in a SYN-ACK
      this.sndWl1 = r.seq;
      this.sndWl2 = r.ack;
      this.state = 'ESTABLISHED';
      this.rtoTimer.cancel();
      this.backoff = 0;
      this.retries = 0;
      this.enterQuickAck();
      this.sendAck('softirq');
      this.wakeConnector();
      return;
    }
    // Simultaneous open (RFC 9293 3.10.7.3): SYN without ACK.
    this.state = 'SYN_RECEIVED';
    this.sndWnd = r.window;
    this.sndWl1 = r.seq;
    this.sndMax = this.iss; // resend our SYN as a SYN-ACK
    this.sendSyn('softirq');
  }

  private ackArrives(r: TcpRepr, seq: number, payload: number): void {
    const ack = r.ack;
    if (seqLt(ack, this.sndUna)) return; // old duplicate ACK: ignore the ACK field
    const win = r.window << this.sndWscale;
    const windowChanged = win !== this.sndWnd;
    // RFC 9293 3.10.7.4: update the send window from the freshest segment.
    if (seqLt(this.sndWl1, seq) || (this.sndWl1 === seq && seqLeq(this.sndWl2, ack))) {
      this.sndWnd = win;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
      if (win > 0) {
        if (this.persistTimer.armed) {
          this.persistTimer.cancel();
          this.backoff = 0;
        }
      }
    }
    if (seqGt(ack, this.sndUna)) {
      this.newAck(ack);
      return;
    }
    // RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, and
    // arrives while data is outstanding.
    if (payload === 0 && (r.flags & (SYN | FIN)) === 0 && !windowChanged && this.sndMax !== this.sndUna) this.dupAck();
  }

  private newAck(ack: number): void {
    const stack = this.layer.stack;
    const acked = (ack - this.sndUna) | 0;
    const dataAcked = Math.min(acked, this.sndBuf.length);
    this.sndBuf.consume(dataAcked);
    this.stats.bytesSent += dataAcked;
    this.sampleRtt(ack);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.backoff = 0;
    this.retries = 0;
    if (this.sndUna === this.sndMax) this.rtoTimer.cancel();
    else this.rtoTimer.setIn(this.rto); // RFC 6298 5.3
    const flight = (this.sndMax - this.sndUna) | 0;
    if (this.inRecovery) {
      if (seqGt(ack, this.recover)) {
        // RFC 6582 3.2 step 3: full acknowledgment ends recovery.
        this.inRecovery = false;
        this.dupAcks = 0;
        this.cc.cwnd = Math.min(this.cc.ssthresh, Math.max(flight, this.mss) + this.mss);
      } else {
        // Step 4: partial acknowledgment: retransmit the next hole, deflate cwnd.
        this.retransmitHead('softirq');
        this.cc.cwnd = Math.max(this.mss, this.cc.cwnd - acked + (acked >= this.mss ? this.mss : 0));
      }
    } else {
      this.dupAcks = 0;
      // Grow only when the window was the limit (Linux tcp_is_cwnd_limited; RFC 7661).
      const before = flight + acked;
      const cwnd = this.cc.cwnd;
      if (cwnd < this.cc.ssthresh ? cwnd < 2 * before : before + this.mss >= cwnd) this.cc.onAck(acked, stack.env.now, this.srtt);
    }
    if (!this.sndbufFixed) this.sndbufLimit = Math.max(this.sndbufLimit, Math.min(stack.costs.wmemMax, 2 * this.cc.cwnd));
    const free = this.sndbufLimit - this.sndBuf.length;
    if (this.writer !== null && free >= this.sndBuf.length / 2 && free >= this.sndbufLimit / SOCKET_WAKE_FRACTION) this.wakeWriter();
  }

  private dupAck(): void {
    this.stats.dupAcksIn++;
    this.dupAcks++;
    const c = this.layer.stack.costs;
    if (this.inRecovery) {
      this.cc.cwnd += this.mss; // RFC 5681 3.2 step 4: inflate for each further dupack
      return;
    }
    // RFC 6582 3.2 step 1 / 4.1: only if the ACK covers more than `recover` (no false
    // fast retransmit after a timeout).
    if (this.dupAcks === c.reordering && seqGeq(this.sndUna - 1, this.recover)) {
      const flight = (this.sndMax - this.sndUna) | 0;
      this.cc.onCongestion(flight, this.layer.stack.env.now);
      this.recover = (this.sndMax - 1) >>> 0;
      this.inRecovery = true;
      this.stats.fastRetransmits++;
      this.layer.stats.fastRetransmits++;
      this.retransmitHead('softirq');
      this.cc.cwnd = this.cc.ssthresh + 3 * this.mss;
    }
  }

  private sampleRtt(ack: number): void {
    if (this.timedSeq < 0 || seqLt(ack, this.timedSeq)) return;
    const c = this.layer.stack.costs;
    const r = this.layer.stack.env.now - this.timedAt;
    this.timedSeq = -1;
    // RFC 6298 2.2 / 2.3.
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    // Linux's floor (tcp_rtt_estimator/tcp_set_rto): the variance term is at least
    // TCP_RTO_MIN, so RTO >= SRTT + 200 ms; capped at TCP_RTO_MAX (RFC 6298 2.5).
    this.rto = Math.min(c.rtoMax, Math.round(this.srtt + Math.max(4 * this.rttvar, c.rtoMin)));
  }

  private startTiming(endSeq: number): void {
    this.timedSeq = endSeq;
    this.timedAt = this.layer.stack.env.now;
  }

  private dataArrives(seq: number, data: Uint8Array, segSize: number): boolean {
    const len = data.length;
    // tcp_measure_rcv_mss: the receive MSS estimate follows full-sized segments.
    if (segSize >= this.rcvMss) this.rcvMss = Math.min(segSize, this.advMss());
    if (seq !== this.rcvNxt) {
      this.stats.ofoSegs++;
      this.ofoInsert(seq, data);
      return true;
    }
    const hadOfo = this.ofo.length > 0;
    this.rcvQueue.push(data);
    this.rcvQueued += len;
    this.rcvNxt = (this.rcvNxt + len) >>> 0;
    this.stats.bytesReceived += len;
    // Pull what is now in order from the out-of-order queue.
    while (this.ofo.length > 0) {
      const h = this.ofo[0]!;
      if (seqGt(h.seq, this.rcvNxt)) break;
      this.ofo.shift();
      this.ofoBytes -= h.data.length;
      if (seqGt(h.end, this.rcvNxt)) {
        const part = h.data.subarray((this.rcvNxt - h.seq) | 0);
        this.rcvQueue.push(part);
        this.rcvQueued += part.length;
        this.stats.bytesReceived += part.length;
        this.rcvNxt = h.end;
      }
    }
    this.eventDataRecv();
    if (this.ofoFin >= 0 && this.ofoFin === this.rcvNxt) {
      this.ofoFin = -1;
      this.finArrives();
    }
    this.wakeReader();
    return hadOfo; // Linux acks at once when a hole is being filled
  }

  private ofoInsert(seq: number, data: Uint8Array): void {
    let s = seq;
    let d = data;
    const end = (seq + data.length) >>> 0;
    let i = 0;
    while (i < this.ofo.length && seqLeq(this.ofo[i]!.end, s)) i++;
    // Trim against the neighbours; a segment wholly covered is dropped.
    const prev = this.ofo[i];
    if (prev !== undefined && seqLeq(prev.seq, s)) {
      if (seqGeq(prev.end, end)) return;
      d = d.subarray((prev.end - s) | 0);
      s = prev.end;
      i++;
    }
    let e = end;
    const next = this.ofo[i];
    if (next !== undefined && seqLt(next.seq, e)) {
      if (seqGeq(e, next.end)) {
        // Covers the next one entirely: replace it (keep it simple, it is rare).
        this.ofoBytes -= next.data.length;
        this.ofo.splice(i, 1);
        this.ofoInsert(s, d);
        return;
      }
      d = d.subarray(0, (next.seq - s) | 0);
      e = next.seq;
    }
    if (d.length === 0) return;
    this.ofo.splice(i, 0, { seq: s, end: e, data: d });
    this.ofoBytes += d.length;
  }

  private finArrives(): void {
    this.rcvNxt = (this.rcvNxt + 1) >>> 0;
    this.finReceived = true;
    this.wakeReader();
    switch (this.state) {
      case 'ESTABLISHED':
        this.state = 'CLOSE_WAIT';
        // Linux tcp_fin: delay the ACK hoping to send it with our own FIN.
        this.pingpong = true;
        this.ackPending = true;
        this.scheduleDelack();
        return;
      case 'FIN_WAIT_1':
        // Simultaneous close (RFC 9293 3.6): our FIN is not yet acknowledged.
        this.state = 'CLOSING';
        this.sendAck('softirq');
        return;
      case 'FIN_WAIT_2':
        this.sendAck('softirq');
        this.enterTimeWait();
        return;
      default:
        this.sendAck('softirq');
    }
  }

  // ---------------------------------------------------------------- ACK policy (Linux)

  /** tcp_event_data_recv: quick-ack at start and after idle, ATO from inter-arrival times. */
  private eventDataRecv(): void {
    const c = this.layer.stack.costs;
    const now = this.layer.stack.env.now;
    this.ackPending = true;
    if (this.ato === 0) {
      this.enterQuickAck();
    } else {
      const m = now - this.lrcvtime;
      if (m <= c.delackMin / 2) this.ato = this.ato / 2 + c.delackMin / 2;
      else if (m < this.ato) this.ato = Math.min(this.ato / 2 + m, this.rto);
      else if (m > this.rto) this.incrQuickAck(); // restart after idle
    }
    this.lrcvtime = now;
  }

  private enterQuickAck(): void {
    this.incrQuickAck();
    this.pingpong = false;
    this.ato = this.layer.stack.costs.delackMin;
  }

  private incrQuickAck(): void {
    // tcp_incr_quickack: enough quick ACKs to open the peer's window, at most 16.
    const q = Math.max(2, Math.floor(this.rcvWnd / (2 * this.rcvMss)));
    this.quick = Math.min(Math.max(this.quick, q), this.layer.stack.costs.maxQuickAcks);
  }

  /**
   * __tcp_ack_snd_check: ACK now when more than one full segment is unacknowledged, in
   * quick-ack mode, or when data arrived out of order; otherwise delay. (Linux also asks that
   * the new window not be smaller than the last one; its direct copy to a waiting reader
   * keeps that true in bulk transfers, and since the right edge never retreats here the
   * condition is left out.)
   */
  private ackCheck(ofo: boolean): void {
    const moreThanOneMss = ((this.rcvNxt - this.rcvWup) | 0) > this.rcvMss;
    if (ofo || moreThanOneMss || (this.quick > 0 && !this.pingpong)) this.sendAck('softirq');
    else this.scheduleDelack();
  }

  /** tcp_send_delayed_ack. */
  private scheduleDelack(): void {
    const c = this.layer.stack.costs;
    const now = this.layer.stack.env.now;
    let ato = this.ato;
    if (ato > c.delackMin) {
      let maxAto = this.pingpong ? c.delackMax : c.atoMaxBulk;
      if (this.srtt > 0) maxAto = Math.min(maxAto, Math.max(this.srtt, c.delackMin));
      ato = Math.min(ato, maxAto);
    }
    ato = Math.round(ato);
    const d = this.delackTimer.deadline;
    if (d !== undefined) {
      // An ACK already scheduled and nearly due: send it now rather than slip it.
      if (d <= now + (ato >> 2)) {
        this.sendAck('softirq');
        return;
      }
      if (d < now + ato) return;
    }
    this.delackTimer.setIn(ato);
  }

  private onDelack(): void {
    if (!this.ackPending || this.state === 'CLOSED') return;
    this.stats.delayedAcks++;
    if (!this.pingpong) this.ato = Math.min(this.ato * 2, this.rto); // delayed ACK missed: inflate ATO
    else {
      this.pingpong = false;
      this.ato = this.layer.stack.costs.delackMin;
    }
    this.sendAck('softirq');
  }

  private afterRead(n: number): void {
    const stack = this.layer.stack;
    // DRS-style receive buffer autotuning (tcp_rcv_space_adjust, simplified): per receiver
    // RTT, let the buffer hold twice what the application drained, doubled for overhead.
    if (!this.rcvbufFixed && this.rcvRtt > 0) {
      this.drsCopied += n;
      const now = stack.env.now;
      if (now - this.drsStart >= this.rcvRtt) {
        const want = Math.min(stack.costs.rmemMax, 4 * this.drsCopied);
        if (want > this.rcvbuf) this.rcvbuf = want;
        this.drsCopied = 0;
        this.drsStart = now;
      }
    }
    // tcp_cleanup_rbuf: send a window update if reading opened the window a lot.
    if (this.state === 'ESTABLISHED' || this.state === 'FIN_WAIT_1' || this.state === 'FIN_WAIT_2') {
      const cur = Math.max(0, (this.rcvWup + this.rcvWnd - this.rcvNxt) | 0);
      const nw = this.selectWindow(false);
      if (nw >= 2 * cur && nw - cur >= this.rcvMss) this.sendAck('kernel');
    }
  }

  // ---------------------------------------------------------------- output

  /** tcp_write_xmit: send what the windows, Nagle and TSQ allow. */
  private output(ctx: ExecContext): void {
    const st = this.state;
    if (!(st === 'ESTABLISHED' || st === 'CLOSE_WAIT' || st === 'FIN_WAIT_1' || st === 'LAST_ACK' || st === 'CLOSING')) return;
    const c = this.layer.stack.costs;
    const dev = this.iface!.dev;
    const gsoGoal = dev.features.sg ? Math.max(this.mss, Math.floor((Math.min(dev.features.gsoMaxSize, 65536) - 1 - IP.HEADER_LEN - TCP.MAX_HEADER_LEN) / this.mss) * this.mss) : this.mss;
    for (;;) {
      if (this.tsqBytes >= c.limitOutputBytes) {
        this.tsqThrottled = true;
        return;
      }
      const off = (this.sndNxt - this.sndUna) | 0;
      const left = this.sndBuf.length - off;
      const finNow = this.finQueued && this.sndNxt === this.finSeq;
      if (left <= 0 && !finNow) return;
      const flight = (this.sndMax - this.sndUna) | 0;
      const wndEnd = this.sndUna + Math.min(this.sndWnd, Math.floor(this.cc.cwnd));
      const usable = (wndEnd - this.sndNxt) | 0;
      let len = Math.min(left, gsoGoal);
      if (left > 0) {
        if (usable <= 0 || (usable < len && usable < this.mss && flight > 0)) {
          // Window-limited; with nothing in flight and a zero window, probe (RFC 9293 3.8.6.1).
          if (this.sndWnd === 0 && flight === 0 && !this.persistTimer.armed) this.persistTimer.setIn(this.probeInterval());
          return;
        }
        len = Math.min(len, usable);
        if (len > this.mss) len -= len % this.mss;
        // Nagle (RFC 896, RFC 9293 3.7.4) with Minshall's rule (Linux tcp_nagle_check):
        // hold a final partial segment of new data while an earlier small segment is
        // unacknowledged (retransmissions are never held).
        if (len < this.mss && len === left && !this.nodelay && !this.finQueued && flight > 0 && this.sndNxt === this.sndMax && seqGt(this.sndSml, this.sndUna)) return;
      }
      const fin = this.finQueued && ((this.sndNxt + len) >>> 0) === this.finSeq;
      let flags = ACK;
      if (len > 0 && len === left) flags |= PSH;
      if (fin) flags |= FIN;
      const seq = this.sndNxt;
      const retrans = seqLt(seq, this.sndMax);
      this.sendData(seq, len, flags, ctx);
      if (retrans) this.countRetransmit();
      if (len > 0 && len < this.mss) this.sndSml = (seq + len) >>> 0;
      this.sndNxt = (seq + len + (fin ? 1 : 0)) >>> 0;
      if (seqGt(this.sndNxt, this.sndMax)) {
        if (this.timedSeq < 0 && !retrans) this.startTiming(this.sndNxt);
        this.sndMax = this.sndNxt;
      }
      if (!this.rtoTimer.armed) this.rtoTimer.setIn(this.rto);
      // tcp_event_data_sent: replying soon after receiving makes the connection interactive.
      if (len > 0 && this.layer.stack.env.now - this.lrcvtime < this.ato) this.pingpong = true;
      if (fin) return;
    }
  }

  private retransmitHead(ctx: ExecContext): void {
    const len = Math.min(this.mss, this.sndBuf.length);
    const fin = this.finQueued && ((this.sndUna + len) >>> 0) === this.finSeq;
    if (len === 0 && !fin) return;
    if (this.timedSeq >= 0) this.timedSeq = -1; // Karn: no sample across a retransmission
    this.sendData(this.sndUna, len, ACK | (fin ? FIN : 0), ctx);
    this.countRetransmit();
  }

  private countRetransmit(): void {
    this.stats.retransSegs++;
    this.layer.stats.retransSegs++;
    this.timedSeq = -1;
  }

  private probeInterval(): number {
    const c = this.layer.stack.costs;
    return Math.min(c.rtoMax, this.rto * 2 ** this.backoff);
  }

  private onPersist(): void {
    if (this.state === 'CLOSED' || this.sndWnd > 0 || this.sndBuf.length - ((this.sndNxt - this.sndUna) | 0) <= 0) return;
    // Linux tcp_xmit_probe_skb: an empty segment with an old sequence number draws an ACK
    // carrying the current window.
    this.stats.zeroWindowProbes++;
    this.sendControl(ACK, (this.sndUna - 1) >>> 0, 'softirq');
    this.backoff++;
    this.persistTimer.setIn(this.probeInterval());
  }

  private onRto(): void {
    const c = this.layer.stack.costs;
    if (this.state === 'CLOSED' || this.state === 'TIME_WAIT' || this.sndUna === this.sndMax) return;
    this.stats.timeouts++;
    this.layer.stats.timeouts++;
    this.retries++;
    const synState = this.state === 'SYN_SENT' || this.state === 'SYN_RECEIVED';
    if (this.retries > (synState ? c.synRetries : c.retries2)) {
      if (!synState) this.sendControl(RST | ACK, this.sndNxt, 'softirq');
      this.reset('ETIMEDOUT');
      return;
    }
    // RFC 6298 5.5-5.6: back off, and retransmit the earliest unacknowledged segment.
    this.backoff++;
    this.rto = Math.min(c.rtoMax, this.rto * 2);
    this.timedSeq = -1;
    if (synState) {
      this.sendSyn('softirq');
      this.rtoTimer.setIn(this.rto);
      return;
    }
    const flight = (this.sndMax - this.sndUna) | 0;
    this.cc.onTimeout(flight);
    this.inRecovery = false;
    this.dupAcks = 0;
    this.recover = (this.sndMax - 1) >>> 0; // RFC 6582 4.1
    this.sndNxt = this.sndUna; // go back N: resend from the first unacknowledged byte
    this.rtoTimer.setIn(this.rto);
    this.output('softirq');
  }

  /** Sends a data/FIN segment `len` bytes from `seq`, as a GSO packet when longer than the MSS. */
  private sendData(seq: number, len: number, flags: number, ctx: ExecContext): void {
    const r = this.header(seq, flags, len);
    this.emit(r, (seq - this.sndUna) | 0, len, ctx);
  }

  private header(seq: number, flags: number, len: number): Omit<TcpRepr, 'headerLen'> {
    const r: Omit<TcpRepr, 'headerLen'> = { srcPort: this.localPort, dstPort: this.remotePort, seq, ack: this.rcvNxt, flags, window: 0, urgent: 0, sackPermitted: false, payloadLen: len };
    if (this.tsOk) {
      r.tsVal = this.tsNow();
      r.tsEcr = this.tsRecent;
    }
    return r;
  }

  /** Sends a segment without data (ACK, RST, probe). */
  private sendControl(flags: number, seq: number, ctx: ExecContext): void {
    this.emit(this.header(seq, flags, 0), 0, 0, ctx);
  }

  private sendAck(ctx: ExecContext): void {
    if (this.state === 'CLOSED' || this.state === 'SYN_SENT') return;
    this.sendControl(ACK, this.sndNxt, ctx);
  }

  /** Builds, checksums (per device offload) and sends one segment; every segment carries the current ACK and window. */
  private emit(r: Omit<TcpRepr, 'headerLen'>, dataOff: number, len: number, ctx: ExecContext): Packet {
    const stack = this.layer.stack;
    const iface = this.iface!;
    const syn = (r.flags & SYN) !== 0;
    if (!syn) r.window = this.selectWindow(true) >>> this.rcvWscale;
    const hl = TCP.HEADER_LEN + tcpOptionsLen(r);
    const pkt = stack.buildIp(this.localAddr, this.remoteAddr, IPPROTO_TCP, hl + len);
    if (len > 0) this.sndBuf.copyOut(dataOff, len, pkt.data, pkt.l4 + hl);
    const offload = iface.dev.features.txCsum;
    emitTcp(r, pkt.data, pkt.l4, this.localAddr, this.remoteAddr, offload ? 'partial' : 'full');
    if (offload) {
      pkt.csum = CSUM_PARTIAL;
      pkt.csumStart = pkt.l4;
      pkt.csumOffset = TCP.CHECKSUM;
    }
    if (len > this.mss) {
      pkt.gsoType = GSO_TCPV4;
      pkt.gsoSize = this.mss;
    }
    pkt.iface = iface;
    pkt.nextHop = this.nextHop;
    // TCP Small Queues: account the bytes until the device releases them.
    const size = pkt.length;
    this.tsqBytes += size;
    pkt.destructor = () => this.txDone(size);
    this.stats.segsOut++;
    stack.tcp.stats.segsOut++;
    // The ACK rides on this segment (tcp_event_ack_sent).
    if ((r.flags & ACK) !== 0) {
      this.ackPending = false;
      this.delackTimer.cancel();
      if (this.quick > 0) this.quick--;
    }
    stack.ipOutput(pkt, ctx, offload ? 0 : Math.round((hl + len) * stack.costs.csumPerByte));
    return pkt;
  }

  private txDone(size: number): void {
    this.tsqBytes -= size;
    if (this.tsqThrottled && this.tsqBytes < this.layer.stack.costs.limitOutputBytes) {
      this.tsqThrottled = false;
      this.output('softirq');
    }
  }

  /** tcp_win_from_space with tcp_adv_win_scale = 1: half the buffer is for overhead. */
  private winFromSpace(space: number): number {
    return space - (space >> 1);
  }

  /**
   * __tcp_select_window + tcp_select_window: the window from free receive buffer, with
   * receiver-side silly window avoidance (RFC 9293 3.8.6.2.2), rounded to the scale, and
   * never shrinking the right edge already offered (RFC 9293 3.8.6.2.2 / RFC 7323 2.4).
   */
  private selectWindow(commit: boolean): number {
    const free = Math.max(0, this.rcvbuf - this.rcvQueued - this.ofoBytes);
    let win = this.winFromSpace(free);
    if (win < this.rcvMss && win < this.winFromSpace(this.rcvbuf) / 4) win = 0;
    win = Math.min(win, 65535 * 2 ** this.rcvWscale);
    win -= win % 2 ** this.rcvWscale;
    const cur = Math.max(0, (this.rcvWup + this.rcvWnd - this.rcvNxt) | 0);
    if (win < cur) win = cur + ((2 ** this.rcvWscale - (cur % 2 ** this.rcvWscale)) % 2 ** this.rcvWscale);
    if (commit) {
      this.rcvWnd = win;
      this.rcvWup = this.rcvNxt;
    }
    return win;
  }

  private tsNow(): number {
    // Linux 3.x tcp_time_stamp: jiffies at HZ = 1000, i.e. a millisecond clock.
    return (Math.floor(this.layer.stack.env.now / 1e6) + this.tsOffset) >>> 0;
  }

  // ---------------------------------------------------------------- endings

  private enterTimeWait(): void {
    this.state = 'TIME_WAIT';
    this.rtoTimer.cancel();
    this.persistTimer.cancel();
    this.delackTimer.cancel();
    this.closeTimer.setIn(this.layer.stack.costs.timeWait);
  }

  private onCloseTimer(): void {
    if (this.state === 'TIME_WAIT' || this.state === 'FIN_WAIT_2') this.destroy();
  }

  private reset(code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT'): void {
    this.error = new SocketError(code, code === 'ETIMEDOUT' ? 'connection timed out' : code === 'ECONNREFUSED' ? 'connection refused' : 'connection reset by peer');
    if (this.listener !== null) this.listener.aborted();
    this.destroy();
  }

  private destroy(): void {
    this.state = 'CLOSED';
    this.rtoTimer.cancel();
    this.persistTimer.cancel();
    this.delackTimer.cancel();
    this.closeTimer.cancel();
    this.layer.unregister(this);
    this.wakeReader();
    this.wakeWriter();
    this.wakeConnector();
  }

  private wakeReader(): void {
    this.reader = wake(this.reader);
  }

  private wakeWriter(): void {
    this.writer = wake(this.writer);
  }

  private wakeConnector(): void {
    this.connector = wake(this.connector);
  }

  /** @internal A segment from nowhere: answer with a bare RST (no socket state). */
  static sendBare(layer: TcpLayer, src: Ipv4Addr, sport: number, dst: Ipv4Addr, dport: number, seq: number, ack: number, flags: number, ctx: ExecContext): void {
    const stack = layer.stack;
    const route = stack.route(dst);
    if (route === undefined) return;
    const r: Omit<TcpRepr, 'headerLen'> = { srcPort: sport, dstPort: dport, seq, ack, flags, window: 0, urgent: 0, sackPermitted: false, payloadLen: 0 };
    const pkt = stack.buildIp(src, dst, IPPROTO_TCP, TCP.HEADER_LEN);
    emitTcp(r, pkt.data, pkt.l4, src, dst, 'full');
    pkt.iface = route.iface;
    pkt.nextHop = route.nextHop;
    layer.stats.segsOut++;
    stack.ipOutput(pkt, ctx);
  }
}
