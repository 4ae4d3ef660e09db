import { FIN, PSH, SYN, TCP, URG } from '../wire/tcp.js';
import { TCP_MSS_DEFAULT, type TcpControlBlock } from './tcp-control-block.js';
import { advMss } from './tcp-handshake.js';
import { sendAck } from './tcp-output.js';

// When to acknowledge: Linux's delayed-ACK policy (inet_connection_sock icsk_ack), with
// quick-ack and pingpong (interactive) modes and an ACK timeout learnt from arrivals.

export const ACK_PUSHED = 1;
export const ACK_PUSHED2 = 2;
const TCP_MIN_MSS = 88; // include/net/tcp.h: minimal accepted MSS
const TCP_REMNANT = FIN | URG | SYN | PSH;
const TCPOLEN_TSTAMP_ALIGNED = 12; // include/net/tcp.h: NOP, NOP, timestamp

/**
 * tcp_measure_rcv_mss, for in-order data: the receive MSS estimate follows full-sized
 * segments (`segSize` is the payload, or the GSO size of a merged packet); a segment
 * smaller than it that is not explained by options marks the pending ACK "pushed", so the
 * reader draining it sends the ACK at once (tcp_cleanup_rbuf).
 */
export function measureRcvMss(tcb: TcpControlBlock, segSize: number, headerLen: number, flags: number): void {
  const lss = tcb.lastSegSize;
  tcb.lastSegSize = 0;
  if (segSize >= tcb.rcvMss) {
    tcb.rcvMss = Math.min(segSize, advMss(tcb));
    return;
  }
  const len = segSize + headerLen;
  if (len >= TCP_MSS_DEFAULT + TCP.HEADER_LEN || (len >= TCP_MIN_MSS + TCP.HEADER_LEN && (flags & TCP_REMNANT) === 0)) {
    // Full-sized but for variable options: the payload less the fixed header is the MSS.
    const mss = len - (TCP.HEADER_LEN + (tcb.tsOk ? TCPOLEN_TSTAMP_ALIGNED : 0));
    tcb.lastSegSize = mss;
    if (mss === lss) {
      tcb.rcvMss = mss;
      return;
    }
  }
  if ((tcb.ackPushed & ACK_PUSHED) !== 0) tcb.ackPushed |= ACK_PUSHED2;
  tcb.ackPushed |= ACK_PUSHED;
}

/** tcp_event_data_recv: quick-ack at start and after idle, ATO from inter-arrival times. */
export function eventDataRecv(tcb: TcpControlBlock): void {
  const c = tcb.layer.stack.costs;
  const now = tcb.layer.stack.env.now;
  tcb.ackPending = true;
  if (tcb.ato === 0) {
    enterQuickAck(tcb);
  } else {
    const m = now - tcb.lrcvtime;
    if (m <= c.delackMin / 2) tcb.ato = tcb.ato / 2 + c.delackMin / 2;
    else if (m < tcb.ato) tcb.ato = Math.min(tcb.ato / 2 + m, tcb.rto);
    else if (m > tcb.rto) incrQuickAck(tcb); // restart after idle
  }
  tcb.lrcvtime = now;
}

export function enterQuickAck(tcb: TcpControlBlock): void {
  incrQuickAck(tcb);
  tcb.pingpong = false;
  tcb.ato = tcb.layer.stack.costs.delackMin;
}

function incrQuickAck(tcb: TcpControlBlock): void {
  // tcp_incr_quickack: enough quick ACKs to open the peer's window, at most 16.
  const q = Math.max(2, Math.floor(tcb.rcvWnd / (2 * tcb.rcvMss)));
  tcb.quick = Math.min(Math.max(tcb.quick, q), tcb.layer.stack.costs.maxQuickAcks);
}

/**
 * __tcp_ack_snd_check: ACK now when more than one full segment is unacknowledged, in
 * quick-ack mode, or when data arrived out of order; otherwise delay. (Linux also asks that
 * the new window not be smaller than the last one; its direct copy to a waiting reader
 * keeps that true in bulk transfers, and since the right edge never retreats here the
 * condition is left out.)
 */
export function ackCheck(tcb: TcpControlBlock, ofo: boolean): void {
  const moreThanOneMss = ((tcb.rcvNxt - tcb.rcvWup) | 0) > tcb.rcvMss;
  if (ofo || moreThanOneMss || (tcb.quick > 0 && !tcb.pingpong)) sendAck(tcb, 'softirq');
  else scheduleDelack(tcb);
}

/** tcp_send_delayed_ack. */
export function scheduleDelack(tcb: TcpControlBlock): void {
  const c = tcb.layer.stack.costs;
  const now = tcb.layer.stack.env.now;
  let ato = tcb.ato;
  if (ato > c.delackMin) {
    let maxAto = tcb.pingpong || (tcb.ackPushed & ACK_PUSHED) !== 0 ? c.delackMax : c.atoMaxBulk;
    if (tcb.srtt > 0) maxAto = Math.min(maxAto, Math.max(tcb.srtt, c.delackMin));
    ato = Math.min(ato, maxAto);
  }
  ato = Math.round(ato);
  const d = tcb.delackTimer.deadline;
  if (d !== undefined) {
    // An ACK already scheduled and nearly due: send it now rather than slip it.
    if (d <= now + (ato >> 2)) {
      sendAck(tcb, 'softirq');
      return;
    }
    if (d < now + ato) return;
  }
  tcb.delackTimer.setIn(ato);
}

export function onDelack(tcb: TcpControlBlock): void {
  if (!tcb.ackPending || tcb.state === 'CLOSED') return;
  tcb.stats.delayedAcks++;
  if (!tcb.pingpong)
    tcb.ato = Math.min(tcb.ato * 2, tcb.rto); // delayed ACK missed: inflate ATO
  else {
    tcb.pingpong = false;
    tcb.ato = tcb.layer.stack.costs.delackMin;
  }
  sendAck(tcb, 'softirq');
}

/** tcp_event_ack_sent: the ACK rode on a segment. */
export function eventAckSent(tcb: TcpControlBlock): void {
  tcb.ackPending = false;
  tcb.ackPushed = 0;
  tcb.delackTimer.cancel();
  if (tcb.quick > 0) tcb.quick--;
}

/** tcp_event_data_sent: replying soon after receiving makes the connection interactive. */
export function eventDataSent(tcb: TcpControlBlock): void {
  if (tcb.layer.stack.env.now - tcb.lrcvtime < tcb.ato) tcb.pingpong = true;
}
