import type { SimEvent } from '../../sim/index.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { ACK, RST } from '../wire/tcp.js';
import type { CongestionName } from './congestion.js';
import { SocketError, sleepOn, syscallCost } from './errors.js';
import { TcpControlBlock, destroy, purgeReceive } from './tcp-control-block.js';
import { ACK_PUSHED, ACK_PUSHED2 } from './tcp-delack.js';
import { openActive } from './tcp-handshake.js';
import type { TcpLayer } from './tcp-layer.js';
import { output, selectWindow, sendAck, sendControl } from './tcp-output.js';

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN_SENT'
  | 'SYN_RECEIVED'
  | 'ESTABLISHED'
  | 'FIN_WAIT_1'
  | 'FIN_WAIT_2'
  | 'CLOSE_WAIT'
  | 'CLOSING'
  | 'LAST_ACK'
  | 'TIME_WAIT';

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

/**
 * One TCP connection (RFC 9293), with Linux 3.x behaviour where it decides latency and
 * throughput: delayed ACKs with quick-ack and pingpong modes, Nagle with Minshall's
 * variant, RTO per RFC 6298 with Linux's 200 ms floor, NewReno fast recovery (RFC 5681/6582),
 * CUBIC or Reno, window scaling and timestamps (RFC 7323), receive-window advertisement from
 * free buffer, zero-window probing, TCP Small Queues, TIME_WAIT. SACK is not used (SACK-
 * permitted is parsed but never offered, as Linux with tcp_sack = 0).
 *
 * Receive memory counts payload bytes, not skb truesize; the advertised window is half the
 * free buffer (tcp_adv_win_scale = 1), the half Linux sets aside for that overhead. So the
 * window an idle reader offers is Linux's, and a lagging reader's closes more slowly than on
 * Linux (queued payload is charged once, not with its overhead).
 *
 * This is the user's side (Linux tcp.c: connect, sendmsg, recvmsg, close); the connection's
 * state is its TcpControlBlock.
 */
export class TcpSocket {
  /** @internal */
  readonly tcb: TcpControlBlock;

  constructor(layer: TcpLayer, opts: TcpOptions) {
    this.tcb = new TcpControlBlock(layer, opts, this);
  }

  get state(): TcpState {
    return this.tcb.state;
  }

  get localAddr(): Ipv4Addr {
    return this.tcb.localAddr;
  }

  get localPort(): number {
    return this.tcb.localPort;
  }

  get remoteAddr(): Ipv4Addr {
    return this.tcb.remoteAddr;
  }

  get remotePort(): number {
    return this.tcb.remotePort;
  }

  get stats(): TcpSocketStats {
    return this.tcb.stats;
  }

  /** Why the connection failed (reset, refused, timed out), or null. */
  get error(): SocketError | null {
    return this.tcb.error;
  }

  get nodelay(): boolean {
    return this.tcb.nodelay;
  }

  /**
   * bind() to a local port before connect() (with SO_REUSEADDR, as netperf binds its data
   * sockets): the connection then comes from this port even if an old connection of the same
   * four-tuple is in TIME_WAIT, which it takes over when that one used timestamps.
   */
  bind(port: number): SocketError | undefined {
    const tcb = this.tcb;
    if (tcb.state !== 'CLOSED' || tcb.boundPort !== 0) return new SocketError('EINVAL', 'socket is already bound');
    const err = tcb.layer.bindCheck(port);
    if (err !== undefined) return err;
    tcb.boundPort = port;
    return undefined;
  }

  /** Active open (RFC 9293 3.10.1). Returns when ESTABLISHED, or the error. */
  *connect(addr: Ipv4Addr, port: number): Generator<SimEvent<unknown>, void | SocketError, unknown> {
    const tcb = this.tcb;
    const stack = tcb.layer.stack;
    if (tcb.state !== 'CLOSED') return new SocketError('EISCONN', `socket is ${tcb.state}`);
    yield stack.cpu.exec(syscallCost(stack, 0), 'kernel');
    const err = openActive(tcb, addr, port);
    if (err !== undefined) return err;
    tcb.connector = stack.env.event<void>();
    yield* sleepOn(stack, tcb.connector);
    if (tcb.error !== null) return tcb.error;
  }

  /** Writes all of `data` (copied into the send buffer), blocking while it is full. */
  *send(data: Uint8Array): Generator<SimEvent<unknown>, number | SocketError, unknown> {
    const tcb = this.tcb;
    const stack = tcb.layer.stack;
    let off = 0;
    let first = true;
    while (off < data.length) {
      if (tcb.error !== null) return tcb.error;
      if (tcb.finQueued || !(tcb.state === 'ESTABLISHED' || tcb.state === 'CLOSE_WAIT'))
        return new SocketError('EPIPE', `cannot send in ${tcb.state}`);
      const room = tcb.sndbufLimit - tcb.sndBuf.length;
      if (room <= 0) {
        tcb.writer = stack.env.event<void>();
        yield* sleepOn(stack, tcb.writer);
        continue;
      }
      const n = Math.min(room, data.length - off);
      yield stack.cpu.exec((first ? stack.costs.syscall : 0) + Math.round(n * stack.costs.copyPerByte), 'kernel');
      first = false;
      if (tcb.error !== null) return tcb.error;
      tcb.sndBuf.write(data.subarray(off, off + n));
      off += n;
      output(tcb, 'kernel');
    }
    return data.length;
  }

  /**
   * Reads up to `max` bytes, blocking until some are there. An empty result means the peer
   * closed (EOF).
   */
  *recv(max: number): Generator<SimEvent<unknown>, Uint8Array | SocketError, unknown> {
    const r = yield* this.readInto(null, max);
    return typeof r === 'number' ? new Uint8Array(0) : r;
  }

  /**
   * recv into the caller's buffer (a read(2) of `buf.length` bytes at most): the number of
   * bytes read, 0 at end of stream, or the error. The same kernel work as `recv`; it spares
   * a workload moving gigabytes a fresh allocation per call.
   */
  *recvInto(buf: Uint8Array): Generator<SimEvent<unknown>, number | SocketError, unknown> {
    const r = yield* this.readInto(buf, buf.length);
    return r instanceof Uint8Array ? r.length : r;
  }

  private *readInto(into: Uint8Array | null, max: number): Generator<SimEvent<unknown>, Uint8Array | number | SocketError, unknown> {
    const tcb = this.tcb;
    const stack = tcb.layer.stack;
    while (tcb.rcvQueued === 0) {
      if (tcb.error !== null) return tcb.error;
      if (tcb.finReceived || tcb.state === 'CLOSED') {
        yield stack.cpu.exec(stack.costs.syscall, 'kernel');
        return 0;
      }
      tcb.reader = stack.env.event<void>();
      yield* sleepOn(stack, tcb.reader);
    }
    const n = Math.min(max, tcb.rcvQueued);
    const out = into === null ? new Uint8Array(n) : into.subarray(0, n);
    let got = 0;
    while (got < n) {
      const head = tcb.rcvQueue.peek()!;
      const take = Math.min(head.data.length, n - got);
      out.set(take === head.data.length ? head.data : head.data.subarray(0, take), got);
      got += take;
      tcb.rcvQueue.shift();
      if (take === head.data.length) head.buf?.put();
      else tcb.rcvQueue.unshift({ data: head.data.subarray(take), buf: head.buf });
    }
    tcb.rcvQueued -= n;
    yield stack.cpu.exec(syscallCost(stack, n), 'kernel');
    this.afterRead(n);
    return out;
  }

  /** Closes the connection (RFC 9293 3.10.4); data already written is still delivered. */
  *close(): Generator<SimEvent<unknown>, void, unknown> {
    const tcb = this.tcb;
    const stack = tcb.layer.stack;
    yield stack.cpu.exec(stack.costs.syscall, 'kernel');
    tcb.userClosed = true;
    const unread = tcb.rcvQueued;
    purgeReceive(tcb);
    switch (tcb.state) {
      case 'SYN_SENT':
      case 'CLOSED':
        destroy(tcb);
        return;
      case 'SYN_RECEIVED':
      case 'ESTABLISHED':
      case 'CLOSE_WAIT':
        if (unread > 0) {
          // RFC 2525 2.17 / Linux tcp_close: unread data makes close send a reset.
          sendControl(tcb, RST | ACK, tcb.sndNxt, 'kernel');
          destroy(tcb);
          return;
        }
        tcb.state = tcb.state === 'CLOSE_WAIT' ? 'LAST_ACK' : 'FIN_WAIT_1';
        tcb.finQueued = true;
        tcb.finSeq = (tcb.sndUna + tcb.sndBuf.length) >>> 0;
        output(tcb, 'kernel');
        return;
      default:
        return;
    }
  }

  setNoDelay(on: boolean): void {
    this.tcb.nodelay = on;
    if (on) output(this.tcb, 'kernel');
  }

  /** Bytes waiting to be read. */
  get readable(): number {
    return this.tcb.rcvQueued;
  }

  get congestionWindow(): number {
    return this.tcb.cc.cwnd;
  }

  get smoothedRtt(): number {
    return this.tcb.srtt;
  }

  get retransmissionTimeout(): number {
    return this.tcb.rto;
  }

  get sendBufferLimit(): number {
    return this.tcb.sndbufLimit;
  }

  get receiveBufferLimit(): number {
    return this.tcb.rcvbuf;
  }

  /** Effective send MSS. */
  get maxSegment(): number {
    return this.tcb.mss;
  }

  private afterRead(n: number): void {
    const tcb = this.tcb;
    const stack = tcb.layer.stack;
    // DRS-style receive buffer autotuning (tcp_rcv_space_adjust, simplified): per receiver
    // RTT, let the buffer hold twice what the application drained, doubled for overhead.
    if (!tcb.rcvbufFixed && tcb.rcvRtt > 0) {
      tcb.drsCopied += n;
      const now = stack.env.now;
      if (now - tcb.drsStart >= tcb.rcvRtt) {
        const want = Math.min(stack.costs.rmemMax, 4 * tcb.drsCopied);
        if (want > tcb.rcvbuf) tcb.rcvbuf = want;
        tcb.drsCopied = 0;
        tcb.drsStart = now;
      }
    }
    // tcp_cleanup_rbuf: ACK now if a delayed ACK covers more than one full segment, or if
    // this read drained the receive queue of a small pushed segment and the connection is
    // not interactive (or two such segments came: PUSHED2).
    if (tcb.ackPending) {
      const pushed = (tcb.ackPushed & ACK_PUSHED2) !== 0 || ((tcb.ackPushed & ACK_PUSHED) !== 0 && !tcb.pingpong);
      if (((tcb.rcvNxt - tcb.rcvWup) | 0) > tcb.rcvMss || (n > 0 && pushed && tcb.rcvQueued + tcb.ofoBytes === 0)) {
        sendAck(tcb, 'kernel');
        return;
      }
    }
    // Otherwise a window update if reading opened the window a lot.
    if (tcb.state === 'ESTABLISHED' || tcb.state === 'FIN_WAIT_1' || tcb.state === 'FIN_WAIT_2') {
      const cur = Math.max(0, (tcb.rcvWup + tcb.rcvWnd - tcb.rcvNxt) | 0);
      const nw = selectWindow(tcb, false);
      if (nw >= 2 * cur && nw - cur >= tcb.rcvMss) sendAck(tcb, 'kernel');
    }
  }
}
