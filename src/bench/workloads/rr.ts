import type { Env, Process, ProcessGenerator } from '../../sim/index.js';
import type { TcpSocket, TcpOptions } from '../../net/socket/tcp-socket.js';
import { isSocketError } from '../../net/socket/errors.js';
import { IntegrityError, LatencyRecorder, fillPattern, must, verifyPattern, type Endpoints, type LatencySummary, type Timing } from './common.js';

export interface RrOptions {
  /** Request and response sizes, bytes (netperf -r req,resp); default 1,1. */
  requestSize?: number;
  responseSize?: number;
  timing: Timing;
  tcp?: TcpOptions;
  /** Write each request in this many pieces (shows Nagle against delayed ACK); default 1. */
  requestWrites?: number;
}

export interface CrrOptions extends RrOptions {
  /**
   * Local ports the client binds its connections to, in turn (netperf's client_port_min /
   * client_port_max, -p's local part; defaults 5000 and 65535 as netperf's netsh.c).
   */
  clientPortMin?: number;
  clientPortMax?: number;
}

export interface RrResult {
  /** Transactions per second over the measured interval. */
  transactionsPerSecond: number;
  transactions: number;
  /** Round-trip latency of a transaction, ns. */
  latency: LatencySummary;
}

const REQ_SALT = 0x0a11ce00;
const RESP_SALT = 0x00b0b000;

function* readExactly(s: TcpSocket, n: number, what: string): ProcessGenerator<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const d = must(what, yield* s.recv(n - got));
    if (d.length === 0) throw new IntegrityError(`${what}: connection closed after ${got} of ${n} bytes`);
    out.set(d, got);
    got += d.length;
  }
  return out;
}

function* sendPieces(s: TcpSocket, buf: Uint8Array, pieces: number): ProcessGenerator<void> {
  const step = Math.ceil(buf.length / pieces);
  for (let off = 0; off < buf.length; off += step) must('send', yield* s.send(buf.subarray(off, Math.min(buf.length, off + step))));
}

/** Runs a server and a client process; the result once both have finished. */
function runPair<R>(env: Env, name: string, server: ProcessGenerator<void>, client: ProcessGenerator<void>, done: () => R): Process<R> {
  return env.process(
    (function* (): ProcessGenerator<R> {
      const srv = env.process(server, `${name} server`);
      yield env.process(client, `${name} client`);
      yield srv;
      return done();
    })(),
    name,
  );
}

function result(rec: LatencyRecorder, timing: Timing): RrResult {
  return { transactionsPerSecond: (rec.count * 1e9) / timing.duration, transactions: rec.count, latency: rec.summary() };
}

/**
 * netperf TCP_RR: one connection, one request and one response per transaction, each
 * verified against a pattern salted by the transaction number.
 */
export function tcpRr(env: Env, ends: Endpoints, opts: RrOptions): Process<RrResult> {
  const port = ends.port ?? 12868;
  const req = opts.requestSize ?? 1;
  const resp = opts.responseSize ?? 1;
  const pieces = opts.requestWrites ?? 1;
  const listener = must('listen', ends.server.tcp.listen(port, opts.tcp ?? {}));
  const from = env.now + opts.timing.warmup;
  const to = from + opts.timing.duration;
  const rec = new LatencyRecorder();

  function* server(): ProcessGenerator<void> {
    const s = must('accept', yield* listener.accept());
    listener.close();
    const out = new Uint8Array(resp);
    for (let t = 0; ; t++) {
      const first = must('recv', yield* s.recv(req));
      if (first.length === 0) break;
      const rest = first.length < req ? yield* readExactly(s, req - first.length, 'tcp_rr request') : new Uint8Array(0);
      verifyPattern(`tcp_rr request ${t}`, first, 0, REQ_SALT ^ t);
      verifyPattern(`tcp_rr request ${t}`, rest, first.length, REQ_SALT ^ t);
      fillPattern(out, 0, RESP_SALT ^ t);
      must('send', yield* s.send(out));
    }
    yield* s.close();
  }

  function* client(): ProcessGenerator<void> {
    const c = ends.client.tcp.socket(opts.tcp ?? {});
    must('connect', yield* c.connect(ends.serverAddr, port));
    const buf = new Uint8Array(req);
    for (let t = 0; env.now < to; t++) {
      const t0 = env.now;
      fillPattern(buf, 0, REQ_SALT ^ t);
      yield* sendPieces(c, buf, pieces);
      const r = yield* readExactly(c, resp, 'tcp_rr response');
      verifyPattern(`tcp_rr response ${t}`, r, 0, RESP_SALT ^ t);
      // netperf counts the transactions completed within the measured interval.
      if (env.now >= from && env.now <= to) rec.record(env.now - t0);
    }
    yield* c.close();
  }

  return runPair(env, 'tcp_rr', server(), client(), () => result(rec, opts.timing));
}

/**
 * netperf TCP_CRR: a new connection for every transaction (connect, request, response, close).
 * As netperf does, the client binds each connection to the next port of its range (from a
 * seeded starting point, skipping the server's port, wrapping at the top), so a port comes
 * round again while its last connection may still be in TIME_WAIT on the client, which closed
 * first; Linux lets a bound connect take that over when timestamps are on (tcp_twsk_unique).
 */
export function tcpCrr(env: Env, ends: Endpoints, opts: CrrOptions): Process<RrResult> {
  const port = ends.port ?? 12869;
  const portMin = opts.clientPortMin ?? 5000;
  const portMax = opts.clientPortMax ?? 65535;
  if (!(Number.isInteger(portMin) && Number.isInteger(portMax) && portMin >= 1 && portMax <= 65535 && portMin < portMax)) {
    throw new RangeError(`tcp_crr: client port range ${portMin}..${portMax} must be 1 <= min < max <= 65535`);
  }
  let myport = portMin + (env.rng.fork('tcp_crr:client-port').nextU32() % (portMax - portMin)) - 1;
  const nextPort = (): number => {
    // netperf pick_next_port_number.
    myport++;
    if (myport === port) myport++;
    if (myport >= portMax) myport = portMin;
    return myport;
  };
  const req = opts.requestSize ?? 1;
  const resp = opts.responseSize ?? 1;
  const listener = must('listen', ends.server.tcp.listen(port, opts.tcp ?? {}));
  const from = env.now + opts.timing.warmup;
  const to = from + opts.timing.duration;
  const rec = new LatencyRecorder();
  let stop = false;

  function* serveOne(s: TcpSocket, t: number): ProcessGenerator<void> {
    const r = yield* readExactly(s, req, 'tcp_crr request');
    verifyPattern(`tcp_crr request ${t}`, r, 0, REQ_SALT ^ t);
    const out = new Uint8Array(resp);
    fillPattern(out, 0, RESP_SALT ^ t);
    must('send', yield* s.send(out));
    const eof = must('recv', yield* s.recv(1));
    if (eof.length !== 0) throw new IntegrityError('tcp_crr: data after the request');
    yield* s.close();
  }

  function* server(): ProcessGenerator<void> {
    for (let t = 0; ; t++) {
      const s = yield* listener.accept();
      if (isSocketError(s)) return; // listener closed at the end
      env.process(serveOne(s, t), 'tcp_crr server connection');
      if (stop) return;
    }
  }

  function* client(): ProcessGenerator<void> {
    const buf = new Uint8Array(req);
    for (let t = 0; env.now < to; t++) {
      const t0 = env.now;
      const c = ends.client.tcp.socket(opts.tcp ?? {});
      must('bind', c.bind(nextPort()));
      must('connect', yield* c.connect(ends.serverAddr, port));
      fillPattern(buf, 0, REQ_SALT ^ t);
      must('send', yield* c.send(buf));
      const r = yield* readExactly(c, resp, 'tcp_crr response');
      verifyPattern(`tcp_crr response ${t}`, r, 0, RESP_SALT ^ t);
      yield* c.close();
      // netperf counts the transactions completed within the measured interval.
      if (env.now >= from && env.now <= to) rec.record(env.now - t0);
    }
    stop = true;
    listener.close();
  }

  return runPair(env, 'tcp_crr', server(), client(), () => result(rec, opts.timing));
}

export interface UdpRrResult extends RrResult {
  /**
   * True when a request or response was lost: as netperf, which does not retransmit, the
   * client then waits for the answer until the test time ends, and only the transactions
   * before the loss count. (A transaction still in flight when the time ends is given as
   * long again as the measured interval to complete before it counts as lost.)
   */
  stalled: boolean;
}

/**
 * netperf UDP_RR: one datagram each way per transaction. Like netperf it assumes a lossless
 * path: a lost datagram stalls the run until the test time is over, and the result says so.
 */
export function udpRr(env: Env, ends: Endpoints, opts: Omit<RrOptions, 'tcp' | 'requestWrites'>): Process<UdpRrResult> {
  const port = ends.port ?? 12870;
  const req = opts.requestSize ?? 1;
  const resp = opts.responseSize ?? 1;
  const srvSock = ends.server.udp.socket();
  must('bind', srvSock.bind(port));
  const from = env.now + opts.timing.warmup;
  const to = from + opts.timing.duration;
  const rec = new LatencyRecorder();
  let stalled = false;

  function* server(): ProcessGenerator<void> {
    const out = new Uint8Array(resp);
    for (let t = 0; ; t++) {
      const d = yield* srvSock.recvFrom();
      if (isSocketError(d)) return;
      if (d.data.length !== req) throw new IntegrityError(`udp_rr: request of ${d.data.length} bytes, sent ${req}`);
      verifyPattern(`udp_rr request ${t}`, d.data, 0, REQ_SALT ^ t);
      fillPattern(out, 0, RESP_SALT ^ t);
      must('sendto', yield* srvSock.sendTo(d.src, d.srcPort, out));
    }
  }

  function* client(): ProcessGenerator<void> {
    const s = ends.client.udp.socket();
    const buf = new Uint8Array(req);
    for (let t = 0; env.now < to; t++) {
      const t0 = env.now;
      fillPattern(buf, 0, REQ_SALT ^ t);
      must('sendto', yield* s.sendTo(ends.serverAddr, port, buf));
      // Wait for the answer until the test is over (netperf's test-length alarm), and as
      // long again, so that only a lost datagram, not one in flight, reads as a stall.
      s.rcvTimeout = to + opts.timing.duration - env.now;
      const got = yield* s.recvFrom();
      if (isSocketError(got) && got.code === 'EAGAIN') {
        stalled = true;
        break;
      }
      const d = must('recvfrom', got);
      if (d.data.length !== resp) throw new IntegrityError(`udp_rr: response of ${d.data.length} bytes, sent ${resp}`);
      verifyPattern(`udp_rr response ${t}`, d.data, 0, RESP_SALT ^ t);
      // netperf counts the transactions completed within the measured interval.
      if (env.now >= from && env.now <= to) rec.record(env.now - t0);
    }
    s.close();
    srvSock.close();
  }

  return runPair(env, 'udp_rr', server(), client(), () => ({ ...result(rec, opts.timing), stalled }));
}
