import { Deque, type SimEvent, type Timer } from '../../sim/index.js';
import type { HeldBytes, PacketBuffer } from '../iface/packet.js';
import type { Interface } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { ByteRing } from './byte-ring.js';
import { makeCongestion, type CongestionControl, type CongestionName } from './congestion.js';
import { SocketError, wake } from './errors.js';
import { onDelack } from './tcp-delack.js';
import type { TcpLayer, TcpListener } from './tcp-layer.js';
import type { TcpOptions, TcpSocket, TcpSocketStats, TcpState } from './tcp-socket.js';
import { onCloseTimer, onPersist, onRto } from './tcp-timers.js';

export const TCP_MSS_DEFAULT = 536; // RFC 9293 3.7.1 default send MSS

/**
 * @internal The state of one TCP connection (RFC 9293 3.2's Transmission Control Block;
 * Linux's struct tcp_sock), held by the user's TcpSocket. The handshake, the input and
 * output paths, the delayed-ACK policy and the timers are functions over it, in the files
 * named after them, as Linux's tcp_input.c, tcp_output.c and tcp_timer.c are over one
 * struct sock.
 */
export class TcpControlBlock {
  state: TcpState = 'CLOSED';
  localAddr: Ipv4Addr = 0;
  localPort = 0;
  remoteAddr: Ipv4Addr = 0;
  remotePort = 0;
  readonly stats: TcpSocketStats = {
    segsOut: 0,
    segsIn: 0,
    retransSegs: 0,
    fastRetransmits: 0,
    timeouts: 0,
    dupAcksIn: 0,
    ofoSegs: 0,
    zeroWindowProbes: 0,
    delayedAcks: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
  error: SocketError | null = null;
  nodelay: boolean;

  iface: Interface | null = null;
  nextHop: Ipv4Addr = 0;
  listener: TcpListener | null = null;
  // Send sequence space (RFC 9293 3.3.1); sndMax is the highest sequence sent (BSD snd_max).
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  sndWscale = 0;
  mss = TCP_MSS_DEFAULT;
  readonly sndBuf: ByteRing;
  sndbufLimit: number;
  readonly sndbufFixed: boolean;
  finQueued = false;
  finSeq = 0;
  sndSml = 0;
  tsqBytes = 0;
  tsqThrottled = false;
  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  rcvWup = 0;
  rcvWnd = 0;
  rcvWscale = 0;
  rcvMss = TCP_MSS_DEFAULT;
  /** In-order bytes waiting for recv, each in the received buffer it arrived in (held). */
  readonly rcvQueue = new Deque<HeldBytes>();
  rcvQueued = 0;
  ofo: { seq: number; end: number; data: Uint8Array; buf: PacketBuffer | null }[] = [];
  ofoBytes = 0;
  ofoFin = -1;
  finReceived = false;
  rcvbuf: number;
  readonly rcvbufFixed: boolean;
  drsCopied = 0;
  drsStart = 0;
  rcvRtt = 0;
  // Options.
  readonly wantTs: boolean;
  readonly wantWs: boolean;
  tsOk = false;
  wsOk = false;
  tsRecent = 0;
  /** When tsRecent was last updated (ns; Linux ts_recent_stamp), 0 if never. */
  tsRecentStamp = 0;
  /** Local port given by bind() before connect, 0 for an ephemeral one. */
  boundPort = 0;
  tsOffset: number;
  // RTT and retransmission (RFC 6298).
  srtt = 0;
  rttvar = 0;
  rto: number;
  backoff = 0;
  retries = 0;
  timedSeq = -1;
  timedAt = 0;
  readonly rtoTimer: Timer;
  readonly persistTimer: Timer;
  // Congestion and recovery (RFC 5681, 6582).
  cc: CongestionControl;
  readonly ccName: CongestionName;
  inRecovery = false;
  /** When data was last sent (Linux lsndtime), for the restart after idle. */
  lsndtime = 0;
  /** Linux TCP_CA_Loss: after a timeout, until everything sent before it is acknowledged. */
  inLoss = false;
  /** snd_nxt when recovery or loss began (Linux high_seq). */
  highSeq = 0;
  recover = 0;
  dupAcks = 0;
  // Delayed ACK (Linux inet_connection_sock icsk_ack).
  readonly delackTimer: Timer;
  ackPending = false;
  /** ICSK_ACK_PUSHED / ICSK_ACK_PUSHED2: small pushed segments arrived since the last ACK. */
  ackPushed = 0;
  /** Payload of the last segment that looked full-sized but for options (icsk_ack.last_seg_size). */
  lastSegSize = 0;
  quick = 0;
  pingpong = false;
  ato = 0;
  lrcvtime = 0;
  // TIME_WAIT and FIN_WAIT_2 timeout.
  readonly closeTimer: Timer;
  userClosed = false;
  // Blocked callers.
  reader: SimEvent<void> | null = null;
  writer: SimEvent<void> | null = null;
  connector: SimEvent<void> | null = null;

  constructor(
    readonly layer: TcpLayer,
    opts: TcpOptions,
    /** The user's handle on this connection (Linux sk->sk_socket). */
    readonly socket: TcpSocket,
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
    this.tsOffset = layer.tsOffset;
    this.cc = makeCongestion(this.ccName, this.mss, c.initCwnd);
    this.rtoTimer = env.timer(() => onRto(this));
    this.persistTimer = env.timer(() => onPersist(this));
    this.delackTimer = env.timer(() => onDelack(this));
    this.closeTimer = env.timer(() => onCloseTimer(this));
  }
}

export function reset(tcb: TcpControlBlock, code: 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT'): void {
  tcb.error = new SocketError(
    code,
    code === 'ETIMEDOUT' ? 'connection timed out' : code === 'ECONNREFUSED' ? 'connection refused' : 'connection reset by peer',
  );
  if (tcb.listener !== null) tcb.listener.aborted();
  destroy(tcb);
}

/**
 * Ends a connection in TIME_WAIT so a new one may take its four-tuple, and returns the ISS for
 * the new one: beyond anything the old incarnation may still have in flight (Linux
 * tcp_twsk_unique and tcp_timewait_state_process: tw_snd_nxt + 65535 + 2).
 */
export function takeOverTimeWait(tw: TcpControlBlock): number {
  const iss = (tw.sndNxt + 65535 + 2) >>> 0;
  destroy(tw);
  return iss;
}

/** Lets go of every received buffer still queued (tcp_close's purge of the receive queues). */
export function purgeReceive(tcb: TcpControlBlock): void {
  for (let h = tcb.rcvQueue.shift(); h !== undefined; h = tcb.rcvQueue.shift()) h.buf?.put();
  tcb.rcvQueued = 0;
  for (const o of tcb.ofo) o.buf?.put();
  tcb.ofo = [];
  tcb.ofoBytes = 0;
}

export function destroy(tcb: TcpControlBlock): void {
  tcb.state = 'CLOSED';
  // Nobody will read what is queued once the user has closed: let the buffers go.
  if (tcb.userClosed) purgeReceive(tcb);
  tcb.rtoTimer.cancel();
  tcb.persistTimer.cancel();
  tcb.delackTimer.cancel();
  tcb.closeTimer.cancel();
  tcb.layer.unregister(tcb);
  tcb.reader = wake(tcb.reader);
  tcb.writer = wake(tcb.writer);
  tcb.connector = wake(tcb.connector);
}
