import type { ExecContext } from '../../sim/index.js';
import { CSUM_PARTIAL, GSO_TCPV4, type Packet } from '../iface/packet.js';
import type { Ipv4Addr } from '../wire/addr.js';
import { IP, IPPROTO_TCP } from '../wire/ipv4.js';
import { ACK, FIN, PSH, SYN, TCP, emitTcp, seqGt, seqLt, tcpOptionsLen, type TcpRepr } from '../wire/tcp.js';
import type { TcpControlBlock } from './tcp-control-block.js';
import { eventAckSent, eventDataSent } from './tcp-delack.js';
import type { TcpLayer } from './tcp-layer.js';
import { probeInterval } from './tcp-timers.js';

/** tcp_write_xmit: send what the windows, Nagle and TSQ allow. */
export function output(tcb: TcpControlBlock, ctx: ExecContext): void {
  const st = tcb.state;
  if (!(st === 'ESTABLISHED' || st === 'CLOSE_WAIT' || st === 'FIN_WAIT_1' || st === 'LAST_ACK' || st === 'CLOSING')) return;
  const c = tcb.layer.stack.costs;
  const f = tcb.iface!.features;
  const gsoGoal = f.sg
    ? Math.max(tcb.mss, Math.floor((Math.min(f.gsoMaxSize, 65536) - 1 - IP.HEADER_LEN - TCP.MAX_HEADER_LEN) / tcb.mss) * tcb.mss)
    : tcb.mss;
  for (;;) {
    if (tcb.tsqBytes >= c.limitOutputBytes) {
      tcb.tsqThrottled = true;
      return;
    }
    const off = (tcb.sndNxt - tcb.sndUna) | 0;
    const left = tcb.sndBuf.length - off;
    const finNow = tcb.finQueued && tcb.sndNxt === tcb.finSeq;
    if (left <= 0 && !finNow) return;
    const flight = (tcb.sndMax - tcb.sndUna) | 0;
    const wndEnd = tcb.sndUna + Math.min(tcb.sndWnd, Math.floor(tcb.cc.cwnd));
    const usable = (wndEnd - tcb.sndNxt) | 0;
    let len = Math.min(left, gsoGoal);
    if (left > 0) {
      if (usable <= 0 || (usable < len && usable < tcb.mss && flight > 0)) {
        // Window-limited; with nothing in flight and a zero window, probe (RFC 9293 3.8.6.1).
        if (tcb.sndWnd === 0 && flight === 0 && !tcb.persistTimer.armed) tcb.persistTimer.setIn(probeInterval(tcb));
        return;
      }
      len = Math.min(len, usable);
      if (len > tcb.mss) len -= len % tcb.mss;
      // Nagle (RFC 896, RFC 9293 3.7.4) with Minshall's rule (Linux tcp_nagle_check):
      // hold a final partial segment of new data while an earlier small segment is
      // unacknowledged (retransmissions are never held).
      if (len < tcb.mss && len === left && !tcb.nodelay && !tcb.finQueued && flight > 0 && tcb.sndNxt === tcb.sndMax && seqGt(tcb.sndSml, tcb.sndUna))
        return;
    }
    const fin = tcb.finQueued && (tcb.sndNxt + len) >>> 0 === tcb.finSeq;
    let flags = ACK;
    if (len > 0 && len === left) flags |= PSH;
    if (fin) flags |= FIN;
    const seq = tcb.sndNxt;
    const retrans = seqLt(seq, tcb.sndMax);
    sendData(tcb, seq, len, flags, ctx);
    if (len > 0) {
      if (flight === 0) restartAfterIdle(tcb);
      tcb.lsndtime = tcb.layer.stack.env.now;
    }
    if (retrans) countRetransmit(tcb);
    if (len > 0 && len < tcb.mss) tcb.sndSml = (seq + len) >>> 0;
    tcb.sndNxt = (seq + len + (fin ? 1 : 0)) >>> 0;
    if (seqGt(tcb.sndNxt, tcb.sndMax)) {
      if (tcb.timedSeq < 0 && !retrans) startTiming(tcb, tcb.sndNxt);
      tcb.sndMax = tcb.sndNxt;
    }
    if (!tcb.rtoTimer.armed) tcb.rtoTimer.setIn(tcb.rto);
    if (len > 0) eventDataSent(tcb);
    if (fin) return;
  }
}

/**
 * tcp_cwnd_restart (tcp_slow_start_after_idle = 1, RFC 5681 4.1): data sent with nothing in
 * flight after more than an RTO of silence finds the congestion window halved for every RTO
 * of idle time, down to the initial window at least, with ssthresh remembering 3/4 of it.
 */
function restartAfterIdle(tcb: TcpControlBlock): void {
  const now = tcb.layer.stack.env.now;
  let idle = now - tcb.lsndtime;
  if (tcb.lsndtime === 0 || idle <= tcb.rto) return;
  const cc = tcb.cc;
  const restart = Math.min(tcb.layer.stack.costs.initCwnd * tcb.mss, cc.cwnd);
  if (!tcb.inRecovery) cc.ssthresh = Math.max(cc.ssthresh, 0.75 * cc.cwnd);
  let cwnd = cc.cwnd;
  while ((idle -= tcb.rto) > 0 && cwnd > restart) cwnd /= 2;
  cc.cwnd = Math.max(Math.floor(cwnd / tcb.mss) * tcb.mss, restart);
}

export function retransmitHead(tcb: TcpControlBlock, ctx: ExecContext): void {
  const len = Math.min(tcb.mss, tcb.sndBuf.length);
  const fin = tcb.finQueued && (tcb.sndUna + len) >>> 0 === tcb.finSeq;
  if (len === 0 && !fin) return;
  if (tcb.timedSeq >= 0) tcb.timedSeq = -1; // Karn: no sample across a retransmission
  sendData(tcb, tcb.sndUna, len, ACK | (fin ? FIN : 0), ctx);
  countRetransmit(tcb);
}

export function countRetransmit(tcb: TcpControlBlock): void {
  tcb.stats.retransSegs++;
  tcb.layer.stats.retransSegs++;
  tcb.timedSeq = -1;
}

export function startTiming(tcb: TcpControlBlock, endSeq: number): void {
  tcb.timedSeq = endSeq;
  tcb.timedAt = tcb.layer.stack.env.now;
}

/** Sends a data/FIN segment `len` bytes from `seq`, as a GSO packet when longer than the MSS. */
function sendData(tcb: TcpControlBlock, seq: number, len: number, flags: number, ctx: ExecContext): void {
  const r = header(tcb, seq, flags, len);
  emit(tcb, r, (seq - tcb.sndUna) | 0, len, ctx);
}

function header(tcb: TcpControlBlock, seq: number, flags: number, len: number): Omit<TcpRepr, 'headerLen'> {
  const r: Omit<TcpRepr, 'headerLen'> = {
    srcPort: tcb.localPort,
    dstPort: tcb.remotePort,
    seq,
    ack: tcb.rcvNxt,
    flags,
    window: 0,
    urgent: 0,
    sackPermitted: false,
    payloadLen: len,
  };
  if (tcb.tsOk) {
    r.tsVal = tsNow(tcb);
    r.tsEcr = tcb.tsRecent;
  }
  return r;
}

/** Sends a segment without data (ACK, RST, probe). */
export function sendControl(tcb: TcpControlBlock, flags: number, seq: number, ctx: ExecContext): void {
  emit(tcb, header(tcb, seq, flags, 0), 0, 0, ctx);
}

export function sendAck(tcb: TcpControlBlock, ctx: ExecContext): void {
  if (tcb.state === 'CLOSED' || tcb.state === 'SYN_SENT') return;
  sendControl(tcb, ACK, tcb.sndNxt, ctx);
}

/** Builds, checksums (per device offload) and sends one segment; every segment carries the current ACK and window. */
export function emit(tcb: TcpControlBlock, r: Omit<TcpRepr, 'headerLen'>, dataOff: number, len: number, ctx: ExecContext): Packet {
  const stack = tcb.layer.stack;
  const iface = tcb.iface!;
  const syn = (r.flags & SYN) !== 0;
  if (!syn) r.window = selectWindow(tcb, true) >>> tcb.rcvWscale;
  const hl = TCP.HEADER_LEN + tcpOptionsLen(r);
  const pkt = stack.buildIp(tcb.localAddr, tcb.remoteAddr, IPPROTO_TCP, hl + len, true);
  if (len > 0) tcb.sndBuf.copyOut(dataOff, len, pkt.data, pkt.l4 + hl);
  const offload = iface.features.txCsum;
  emitTcp(r, pkt.data, pkt.l4, tcb.localAddr, tcb.remoteAddr, offload ? 'partial' : 'full');
  if (offload) {
    pkt.csum = CSUM_PARTIAL;
    pkt.csumStart = pkt.l4;
    pkt.csumOffset = TCP.CHECKSUM;
  }
  if (len > tcb.mss) {
    pkt.gsoType = GSO_TCPV4;
    pkt.gsoSize = tcb.mss;
  }
  pkt.iface = iface;
  pkt.nextHop = tcb.nextHop;
  // TCP Small Queues: account the bytes until the device releases them.
  const size = pkt.length;
  tcb.tsqBytes += size;
  pkt.destructor = () => txDone(tcb, size);
  tcb.stats.segsOut++;
  stack.tcp.stats.segsOut++;
  if ((r.flags & ACK) !== 0) eventAckSent(tcb);
  stack.ipOutput(pkt, ctx, offload ? 0 : Math.round((hl + len) * stack.costs.csumPerByte));
  return pkt;
}

function txDone(tcb: TcpControlBlock, size: number): void {
  tcb.tsqBytes -= size;
  if (tcb.tsqThrottled && tcb.tsqBytes < tcb.layer.stack.costs.limitOutputBytes) {
    tcb.tsqThrottled = false;
    output(tcb, 'softirq');
  }
}

/** tcp_win_from_space with tcp_adv_win_scale = 1: half the buffer is for overhead. */
export function winFromSpace(space: number): number {
  return space - (space >> 1);
}

/**
 * __tcp_select_window + tcp_select_window: the window from free receive buffer, with
 * receiver-side silly window avoidance (RFC 9293 3.8.6.2.2), rounded to the scale, and
 * never shrinking the right edge already offered (RFC 9293 3.8.6.2.2 / RFC 7323 2.4).
 */
export function selectWindow(tcb: TcpControlBlock, commit: boolean): number {
  const free = Math.max(0, tcb.rcvbuf - tcb.rcvQueued - tcb.ofoBytes);
  let win = winFromSpace(free);
  if (win < tcb.rcvMss && win < winFromSpace(tcb.rcvbuf) / 4) win = 0;
  win = Math.min(win, 65535 * 2 ** tcb.rcvWscale);
  win -= win % 2 ** tcb.rcvWscale;
  const cur = Math.max(0, (tcb.rcvWup + tcb.rcvWnd - tcb.rcvNxt) | 0);
  if (win < cur) win = cur + ((2 ** tcb.rcvWscale - (cur % 2 ** tcb.rcvWscale)) % 2 ** tcb.rcvWscale);
  if (commit) {
    tcb.rcvWnd = win;
    tcb.rcvWup = tcb.rcvNxt;
  }
  return win;
}

export function tsNow(tcb: TcpControlBlock): number {
  // Linux 3.x tcp_time_stamp: jiffies at HZ = 1000, i.e. a millisecond clock.
  return (Math.floor(tcb.layer.stack.env.now / 1e6) + tcb.tsOffset) >>> 0;
}

/** A segment from nowhere: answer with a bare RST (no socket state). */
export function sendBare(
  layer: TcpLayer,
  src: Ipv4Addr,
  sport: number,
  dst: Ipv4Addr,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  ctx: ExecContext,
): void {
  const stack = layer.stack;
  const route = stack.route(dst);
  if (route === undefined) return;
  const r: Omit<TcpRepr, 'headerLen'> = {
    srcPort: sport,
    dstPort: dport,
    seq,
    ack,
    flags,
    window: 0,
    urgent: 0,
    sackPermitted: false,
    payloadLen: 0,
  };
  const pkt = stack.buildIp(src, dst, IPPROTO_TCP, TCP.HEADER_LEN, true);
  emitTcp(r, pkt.data, pkt.l4, src, dst, 'full');
  pkt.iface = route.iface;
  pkt.nextHop = route.nextHop;
  layer.stats.segsOut++;
  stack.ipOutput(pkt, ctx);
}
