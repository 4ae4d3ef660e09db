import type { ExecContext } from '../../sim/index.js';
import type { Interface } from '../stack.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { IP, type Ipv4Repr } from '../wire/ipv4.js';
import { ACK, RST, SYN, TCP, seqGt, seqLeq, type TcpRepr } from '../wire/tcp.js';
import { makeCongestion } from './congestion.js';
import { SocketError, wake } from './errors.js';
import { TCP_MSS_DEFAULT, reset, takeOverTimeWait, type TcpControlBlock } from './tcp-control-block.js';
import { enterQuickAck } from './tcp-delack.js';
import { ackUpdateRtt } from './tcp-input.js';
import type { TcpListener } from './tcp-layer.js';
import { countRetransmit, emit, sendAck, sendControl, startTiming, tsNow, winFromSpace } from './tcp-output.js';

const MAX_WSCALE = 14; // RFC 7323 2.3

/** Active open (RFC 9293 3.10.1; Linux tcp_v4_connect): bind, choose the ISS, send the SYN. */
export function openActive(tcb: TcpControlBlock, addr: Ipv4Addr, port: number): SocketError | undefined {
  const layer = tcb.layer;
  const route = layer.stack.route(addr);
  if (route === undefined) return new SocketError('EHOSTUNREACH', 'no route to host');
  // inet_hash_connect: a bound port, or a search of the ephemeral range; either may take
  // over a TIME_WAIT connection of the same four-tuple (tcp_twsk_unique).
  const found = tcb.boundPort !== 0 ? layer.checkEstablished(tcb.boundPort, addr, port, true) : layer.ephemeralPort(addr, port);
  if (found instanceof SocketError) return found;
  const { lport, tw } = found;
  let iss = layer.rng.nextU32();
  if (tw !== null) {
    iss = takeOverTimeWait(tw);
    layer.stats.timeWaitReused++;
  }
  bindTo(tcb, route.iface, route.nextHop, route.src, lport, addr, port);
  layer.stats.activeOpens++;
  setIss(tcb, iss);
  tcb.rcvWscale = chooseWscale(tcb);
  tcb.state = 'SYN_SENT';
  layer.register(tcb);
  sendSyn(tcb, 'kernel');
  return undefined;
}

/** A SYN reached a listener: become its SYN_RECEIVED child (RFC 9293 3.10.7.2). */
export function openPassive(tcb: TcpControlBlock, listener: TcpListener, r: TcpRepr, ip: Ipv4Repr, iss?: number): void {
  const stack = tcb.layer.stack;
  const route = stack.route(ip.src);
  if (route === undefined) {
    stack.stats.noRoute++;
    listener.aborted();
    return;
  }
  tcb.listener = listener;
  bindTo(tcb, route.iface, route.nextHop, ip.dst, r.dstPort, ip.src, r.srcPort);
  tcb.irs = r.seq;
  tcb.rcvNxt = (r.seq + 1) >>> 0;
  tcb.rcvWup = tcb.rcvNxt;
  negotiate(tcb, r, true);
  setIss(tcb, iss ?? tcb.layer.rng.nextU32());
  tcb.sndWnd = r.window; // RFC 7323 2.2: the window in a SYN is never scaled
  tcb.sndWl1 = r.seq;
  tcb.state = 'SYN_RECEIVED';
  tcb.layer.register(tcb);
  sendSyn(tcb, 'softirq');
}

/** The initial send sequence number, and `recover` with it (RFC 6582 3.2: "initialized to the ISS"). */
function setIss(tcb: TcpControlBlock, iss: number): void {
  tcb.iss = iss;
  tcb.sndUna = iss;
  tcb.sndNxt = iss;
  tcb.sndMax = iss;
  tcb.recover = iss;
}

function bindTo(tcb: TcpControlBlock, iface: Interface, nextHop: Ipv4Addr, src: Ipv4Addr, lport: number, raddr: Ipv4Addr, rport: number): void {
  tcb.iface = iface;
  tcb.nextHop = nextHop;
  tcb.localAddr = src;
  tcb.localPort = lport;
  tcb.remoteAddr = raddr;
  tcb.remotePort = rport;
}

/** RFC 7323 2.3: the smallest shift that lets the largest receive buffer be advertised. */
function chooseWscale(tcb: TcpControlBlock): number {
  if (!tcb.wantWs) return 0;
  let space = Math.max(tcb.layer.stack.costs.rmemMax, tcb.rcvbuf);
  let s = 0;
  while (space > 65535 && s < MAX_WSCALE) {
    space >>>= 1;
    s++;
  }
  return s;
}

/** Options from the peer's SYN or SYN-ACK. */
function negotiate(tcb: TcpControlBlock, r: TcpRepr, passive: boolean): void {
  if (passive) tcb.rcvWscale = chooseWscale(tcb);
  tcb.wsOk = tcb.wantWs && r.wscale !== undefined;
  if (tcb.wsOk) tcb.sndWscale = Math.min(r.wscale!, MAX_WSCALE);
  else {
    tcb.sndWscale = 0;
    tcb.rcvWscale = 0;
  }
  tcb.tsOk = tcb.wantTs && r.tsVal !== undefined;
  if (tcb.tsOk) {
    tcb.tsRecent = r.tsVal!;
    tcb.tsRecentStamp = tcb.layer.stack.env.now;
  }
  const ourMss = advMss(tcb);
  tcb.mss = Math.min(ourMss, r.mss ?? TCP_MSS_DEFAULT) - (tcb.tsOk ? 12 : 0);
  tcb.rcvMss = Math.min(TCP_MSS_DEFAULT, tcb.mss);
  tcb.cc = makeCongestion(tcb.ccName, tcb.mss, tcb.layer.stack.costs.initCwnd);
}

/** MSS we advertise: the device MTU less IP and TCP headers (RFC 9293 3.7.1). */
export function advMss(tcb: TcpControlBlock): number {
  return Math.min(tcb.iface!.dev.mtu, 65535) - IP.HEADER_LEN - TCP.HEADER_LEN;
}

export function sendSyn(tcb: TcpControlBlock, ctx: ExecContext): void {
  const synAck = tcb.state === 'SYN_RECEIVED';
  const flags = synAck ? SYN | ACK : SYN;
  const r = {
    srcPort: tcb.localPort,
    dstPort: tcb.remotePort,
    seq: tcb.iss,
    ack: synAck ? tcb.rcvNxt : 0,
    flags,
    // RFC 7323 2.2: unscaled in SYNs; Linux caps the first window at 10 segments of data.
    window: Math.min(65535, winFromSpace(tcb.rcvbuf), 10 * advMss(tcb)),
    urgent: 0,
    mss: advMss(tcb),
    sackPermitted: false,
    payloadLen: 0,
  } as Omit<TcpRepr, 'headerLen'>;
  if (tcb.wantWs && (!synAck || tcb.wsOk)) r.wscale = tcb.rcvWscale;
  if (tcb.wantTs && (!synAck || tcb.tsOk)) {
    r.tsVal = tsNow(tcb);
    r.tsEcr = synAck ? tcb.tsRecent : 0;
  }
  tcb.rcvWnd = r.window;
  tcb.rcvWup = tcb.rcvNxt;
  if (tcb.sndMax === tcb.iss) {
    tcb.sndMax = (tcb.iss + 1) >>> 0;
    tcb.sndNxt = tcb.sndMax;
    if (tcb.timedSeq < 0 && tcb.backoff === 0) startTiming(tcb, tcb.sndMax);
  } else {
    countRetransmit(tcb);
  }
  emit(tcb, r, 0, 0, ctx);
  if (!tcb.rtoTimer.armed) tcb.rtoTimer.setIn(tcb.rto);
}

/** RFC 9293 3.10.7.3: a segment in SYN_SENT. */
export function synSentArrives(tcb: TcpControlBlock, r: TcpRepr): void {
  const f = r.flags;
  const ackOk = (f & ACK) !== 0 && seqGt(r.ack, tcb.iss) && seqLeq(r.ack, tcb.sndMax);
  if ((f & ACK) !== 0 && !ackOk) {
    if ((f & RST) === 0) sendControl(tcb, RST, r.ack, 'softirq');
    return;
  }
  if ((f & RST) !== 0) {
    if (ackOk) reset(tcb, 'ECONNREFUSED');
    return;
  }
  if ((f & SYN) === 0) return;
  tcb.irs = r.seq;
  tcb.rcvNxt = (r.seq + 1) >>> 0;
  tcb.rcvWup = tcb.rcvNxt;
  negotiate(tcb, r, false);
  if (ackOk) {
    ackUpdateRtt(tcb, r.ack, r.tsEcr);
    tcb.sndUna = r.ack;
    tcb.sndWnd = r.window; // unscaled in a SYN-ACK
    tcb.sndWl1 = r.seq;
    tcb.sndWl2 = r.ack;
    tcb.state = 'ESTABLISHED';
    tcb.rtoTimer.cancel();
    tcb.backoff = 0;
    tcb.retries = 0;
    enterQuickAck(tcb);
    sendAck(tcb, 'softirq');
    tcb.connector = wake(tcb.connector);
    return;
  }
  // Simultaneous open (RFC 9293 3.10.7.3): SYN without ACK.
  tcb.state = 'SYN_RECEIVED';
  tcb.sndWnd = r.window;
  tcb.sndWl1 = r.seq;
  tcb.sndMax = tcb.iss; // resend our SYN as a SYN-ACK
  sendSyn(tcb, 'softirq');
}
