import type { Env, Process, ProcessGenerator } from '../../sim/index.js';
import type { TcpOptions } from '../../net/socket/tcp-socket.js';
import { isSocketError } from '../../net/socket/errors.js';
import { IntegrityError, fillPattern, megabitsPerSecond, must, verifyPattern, type Endpoints, type Timing } from './common.js';

export interface TcpStreamOptions {
  /** Bytes per send() call (netperf -m); default 16384. */
  messageSize?: number;
  /** Either a timed run, or a number of bytes to move (the warm-up then counts bytes too). */
  timing?: Timing;
  bytes?: number;
  /** Bytes of the byte-count run excluded from the throughput (warm-up). */
  warmupBytes?: number;
  tcp?: TcpOptions;
  /** Bytes per recv() call; default 65536. */
  recvSize?: number;
}

export interface TcpStreamResult {
  /** 10^6 bits/s of payload over the measured interval, at the receiver. */
  throughputMbps: number;
  bytesMeasured: number;
  measuredNs: number;
  /** Every byte the receiver got, verified against the pattern in order. */
  bytesVerified: number;
  retransmissions: number;
  /** Segments the receiving socket got ahead of a hole (its out-of-order queue), and duplicate ACKs the sender got. */
  outOfOrder: number;
  dupAcks: number;
}

const SALT = 0x5eed1234;

/**
 * netperf TCP_STREAM: the client sends `messageSize` writes as fast as it can; the server
 * reads and verifies every byte in order. Throughput counts bytes received in the measured
 * interval.
 */
export function tcpStream(env: Env, ends: Endpoints, opts: TcpStreamOptions = {}): Process<TcpStreamResult> {
  const port = ends.port ?? 12866;
  const msg = opts.messageSize ?? 16384;
  const recvSize = opts.recvSize ?? 65536;
  const listener = must('listen', ends.server.tcp.listen(port, opts.tcp ?? {}));
  const total = opts.bytes;
  const timing = opts.timing;
  if ((total === undefined) === (timing === undefined)) throw new RangeError('tcpStream: give exactly one of bytes or timing');
  const start = env.now;
  const measureFrom = timing !== undefined ? start + timing.warmup : -1;
  const measureTo = timing !== undefined ? measureFrom + timing.duration : Infinity;
  let received = 0;
  let measured = 0;
  let firstMeasured = -1;
  let lastMeasured = -1;
  let done = false;
  let outOfOrder = 0;
  let dupAcks = 0;

  function* server(): ProcessGenerator<void> {
    const s = must('accept', yield* listener.accept());
    listener.close();
    const buf = new Uint8Array(recvSize);
    for (;;) {
      const got = must('recv', yield* s.recvInto(buf));
      if (got === 0) break;
      const d = buf.subarray(0, got);
      verifyPattern('tcp_stream', d, received, SALT);
      received += d.length;
      const now = env.now;
      const inWindow = timing !== undefined ? now >= measureFrom && now <= measureTo : received > (opts.warmupBytes ?? 0);
      if (inWindow) {
        if (firstMeasured < 0) firstMeasured = now;
        lastMeasured = now;
        measured += d.length;
      }
    }
    outOfOrder = s.stats.ofoSegs;
    yield* s.close();
    done = true;
  }

  function* client(): ProcessGenerator<number> {
    const c = ends.client.tcp.socket(opts.tcp ?? {});
    must('connect', yield* c.connect(ends.serverAddr, port));
    const buf = new Uint8Array(msg);
    let sent = 0;
    for (;;) {
      if (total !== undefined && sent >= total) break;
      if (timing !== undefined && env.now >= measureTo) break;
      const n = total !== undefined ? Math.min(msg, total - sent) : msg;
      const b = n === msg ? buf : buf.subarray(0, n);
      fillPattern(b, sent, SALT);
      must('send', yield* c.send(b));
      sent += n;
    }
    yield* c.close();
    dupAcks = c.stats.dupAcksIn;
    return sent;
  }

  return env.process(
    (function* (): ProcessGenerator<TcpStreamResult> {
      const srv = env.process(server(), 'tcp_stream server');
      const sent = (yield env.process(client(), 'tcp_stream client')) as number;
      yield srv;
      if (!done || received !== sent) throw new IntegrityError(`tcp_stream: sent ${sent} bytes, received ${received}`);
      const ns = timing !== undefined ? timing.duration : lastMeasured - firstMeasured;
      return {
        throughputMbps: megabitsPerSecond(measured, ns),
        bytesMeasured: measured,
        measuredNs: ns,
        bytesVerified: received,
        retransmissions: ends.client.tcp.stats.retransSegs,
        outOfOrder,
        dupAcks,
      };
    })(),
    'tcp_stream',
  );
}

export interface UdpStreamOptions {
  /** Datagram payload bytes (netperf -m); default 1472 (one Ethernet frame). */
  messageSize?: number;
  timing: Timing;
  /**
   * Time after the sender stops during which datagrams still in queues and on the path are
   * counted; default 10 ms of simulated time (a full 256-frame ring drains in 3 ms at 1 Gbit/s).
   */
  drain?: number;
}

export interface UdpStreamResult {
  /** 10^6 bits/s of payload received in the measured interval (netperf reports the receiver's). */
  throughputMbps: number;
  sentMessages: number;
  receivedMessages: number;
  /** Sent in the measured interval but never received. */
  lostMessages: number;
  /** Received out of sequence order (allowed for UDP, counted). */
  reordered: number;
  /** Dropped by the receiving socket for want of buffer (part of lostMessages). */
  socketDrops: number;
}

/**
 * netperf UDP_STREAM: the client sends datagrams as fast as its socket lets it; the server
 * receives and verifies each one (a sequence number in the first 4 bytes salts the pattern).
 */
export function udpStream(env: Env, ends: Endpoints, opts: UdpStreamOptions): Process<UdpStreamResult> {
  const port = ends.port ?? 12867;
  const msg = opts.messageSize ?? 1472;
  if (msg < 4) throw new RangeError('udpStream: messageSize must be at least 4 (sequence number)');
  const srvSock = ends.server.udp.socket();
  must('bind', srvSock.bind(port));
  const start = env.now;
  const from = start + opts.timing.warmup;
  const to = from + opts.timing.duration;
  let firstSeqMeasured = -1;
  let lastSeqMeasured = -1;
  let reordered = 0;
  let highest = -1;
  const seen = new Set<number>();
  let measuredSeqs: number[] = [];

  function* server(): ProcessGenerator<void> {
    for (;;) {
      const d = yield* srvSock.recvFrom();
      if (isSocketError(d)) return;
      if (d.data.length !== msg) throw new IntegrityError(`udp_stream: datagram of ${d.data.length} bytes, sent ${msg}`);
      const seq = ((d.data[0]! << 24) | (d.data[1]! << 16) | (d.data[2]! << 8) | d.data[3]!) >>> 0;
      verifyPattern(`udp_stream message ${seq}`, d.data.subarray(4), 0, seq);
      if (seen.has(seq)) throw new IntegrityError(`udp_stream: message ${seq} delivered twice`);
      seen.add(seq);
      if (seq < highest) reordered++;
      else highest = seq;
      measuredSeqs.push(seq);
    }
  }

  function* client(): ProcessGenerator<number> {
    const s = ends.client.udp.socket();
    const buf = new Uint8Array(msg);
    let seq = 0;
    while (env.now < to) {
      buf[0] = seq >>> 24;
      buf[1] = (seq >>> 16) & 255;
      buf[2] = (seq >>> 8) & 255;
      buf[3] = seq & 255;
      fillPattern(buf.subarray(4), 0, seq);
      if (env.now >= from && firstSeqMeasured < 0) firstSeqMeasured = seq;
      must('sendto', yield* s.sendTo(ends.serverAddr, port, buf));
      if (env.now <= to) lastSeqMeasured = seq;
      seq++;
    }
    s.close();
    return seq;
  }

  return env.process(
    (function* (): ProcessGenerator<UdpStreamResult> {
      const srv = env.process(server(), 'udp_stream server');
      const sent = (yield env.process(client(), 'udp_stream client')) as number;
      yield env.timeout(opts.drain ?? 10_000_000);
      srvSock.close();
      yield srv;
      const lo = firstSeqMeasured < 0 ? sent : firstSeqMeasured;
      const hi = lastSeqMeasured;
      const inRange = measuredSeqs.filter((s) => s >= lo && s <= hi).length;
      measuredSeqs = [];
      const expected = Math.max(0, hi - lo + 1);
      return {
        throughputMbps: megabitsPerSecond(inRange * msg, opts.timing.duration),
        sentMessages: expected,
        receivedMessages: inRange,
        lostMessages: expected - inRange,
        reordered,
        socketDrops: srvSock.drops,
      };
    })(),
    'udp_stream',
  );
}
