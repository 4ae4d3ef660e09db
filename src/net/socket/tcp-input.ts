import type { Packet } from '../iface/packet.js';
import { ACK, FIN, RST, SYN, seqGeq, seqGt, seqLeq, seqLt, type TcpRepr } from '../wire/tcp.js';
import { wake } from './errors.js';
import { destroy, reset, type TcpControlBlock } from './tcp-control-block.js';
import { ackCheck, eventDataRecv, measureRcvMss, scheduleDelack } from './tcp-delack.js';
import { synSentArrives } from './tcp-handshake.js';
import { output, retransmitHead, sendAck, sendControl, tsNow } from './tcp-output.js';
import type { TcpState } from './tcp-socket.js';
import { enterTimeWait } from './tcp-timers.js';

const SOCKET_WAKE_FRACTION = 3; // sk_stream_write_space: wake writers when a third is free

/** RFC 9293 3.10.7: a segment for this connection. */
export function segmentArrives(tcb: TcpControlBlock, r: TcpRepr, pkt: Packet): void {
  tcb.stats.segsIn++;
  const f = r.flags;
  if (tcb.state === 'SYN_SENT') {
    synSentArrives(tcb, r);
    return;
  }
  if (tcb.state === 'CLOSED') return;
  const payloadOff = pkt.l4 + r.headerLen;
  let payload = r.payloadLen;
  let seq = r.seq;
  const segLen = payload + ((f & SYN) !== 0 ? 1 : 0) + ((f & FIN) !== 0 ? 1 : 0);
  // RFC 7323 5.3 PAWS: a segment with an older timestamp is a duplicate from the past.
  if (tcb.tsOk && r.tsVal !== undefined && (f & RST) === 0 && ((r.tsVal - tcb.tsRecent) | 0) < 0) {
    sendAck(tcb, 'softirq');
    return;
  }
  // RFC 9293 3.10.7.4 first: sequence acceptability.
  const wnd = Math.max(0, (tcb.rcvWup + tcb.rcvWnd - tcb.rcvNxt) | 0);
  let ok: boolean;
  if (segLen === 0) ok = wnd === 0 ? seq === tcb.rcvNxt : seqGeq(seq, tcb.rcvNxt) && seqLt(seq, tcb.rcvNxt + wnd);
  else
    ok =
      wnd > 0 &&
      ((seqGeq(seq, tcb.rcvNxt) && seqLt(seq, tcb.rcvNxt + wnd)) ||
        (seqGeq(seq + segLen - 1, tcb.rcvNxt) && seqLt(seq + segLen - 1, tcb.rcvNxt + wnd)));
  // A retransmitted segment wholly before rcv_nxt still gets an ACK (dupack for the sender).
  if (!ok) {
    if ((f & RST) === 0) {
      if (tcb.state === 'TIME_WAIT' && (f & FIN) !== 0) tcb.closeTimer.setIn(tcb.layer.stack.costs.timeWait);
      sendAck(tcb, 'softirq');
    }
    return;
  }
  // Second: RST (RFC 9293 3.10.7.4; RFC 5961 3.2 accepts it only at exactly rcv_nxt).
  if ((f & RST) !== 0) {
    if (seq !== tcb.rcvNxt) {
      sendAck(tcb, 'softirq'); // challenge ACK
      return;
    }
    reset(tcb, tcb.state === 'SYN_RECEIVED' ? 'ECONNREFUSED' : 'ECONNRESET');
    return;
  }
  // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 4.2).
  if ((f & SYN) !== 0) {
    sendAck(tcb, 'softirq');
    return;
  }
  if ((f & ACK) === 0) return;
  // Fifth: the ACK field.
  if (tcb.state === 'SYN_RECEIVED') {
    if (!(seqGt(r.ack, tcb.sndUna) && seqLeq(r.ack, tcb.sndMax))) {
      sendControl(tcb, RST, r.ack, 'softirq');
      return;
    }
    tcb.state = 'ESTABLISHED';
    tcb.sndWnd = r.window << tcb.sndWscale;
    tcb.sndWl1 = seq;
    tcb.sndWl2 = r.ack;
    const l = tcb.listener;
    tcb.listener = null;
    l?.established(tcb.socket);
  }
  if (seqGt(r.ack, tcb.sndMax)) {
    sendAck(tcb, 'softirq'); // RFC 9293: ACK of something not yet sent
    return;
  }
  // RFC 7323 4.3: remember the timestamp of the segment that covers Last.ACK.sent.
  if (tcb.tsOk && r.tsVal !== undefined && seqLeq(seq, tcb.rcvWup)) {
    tcb.tsRecent = r.tsVal;
    tcb.tsRecentStamp = tcb.layer.stack.env.now;
  }
  if (tcb.tsOk && r.tsEcr !== undefined && r.tsEcr !== 0 && payload > 0) {
    const s = (tsNow(tcb) - r.tsEcr) >>> 0;
    if (s * 1e6 < tcb.layer.stack.costs.rtoMax) tcb.rcvRtt = Math.max(1, s) * 1e6;
  }
  const wasUna = tcb.sndUna;
  ackArrives(tcb, r, seq, payload);
  if ((tcb.state as TcpState) === 'CLOSED') return;
  const finAcked = tcb.finQueued && seqGt(tcb.sndUna, tcb.finSeq);
  if (finAcked) {
    if (tcb.state === 'FIN_WAIT_1') {
      tcb.state = 'FIN_WAIT_2';
      if (tcb.userClosed) tcb.closeTimer.setIn(tcb.layer.stack.costs.finTimeout);
    } else if (tcb.state === 'CLOSING') enterTimeWait(tcb);
    else if (tcb.state === 'LAST_ACK') {
      destroy(tcb);
      return;
    }
  }
  if (tcb.state === 'TIME_WAIT') {
    if ((f & FIN) !== 0) {
      sendAck(tcb, 'softirq');
      tcb.closeTimer.setIn(tcb.layer.stack.costs.timeWait);
    }
    return;
  }
  // Seventh: segment text.
  let ofoSeen = false;
  if (payload > 0 && (tcb.state === 'ESTABLISHED' || tcb.state === 'FIN_WAIT_1' || tcb.state === 'FIN_WAIT_2')) {
    let data = pkt.data.subarray(payloadOff, payloadOff + payload);
    if (seqLt(seq, tcb.rcvNxt)) {
      const skip = (tcb.rcvNxt - seq) | 0;
      data = data.subarray(skip);
      seq = tcb.rcvNxt;
      payload -= skip;
    }
    const edge = (tcb.rcvWup + tcb.rcvWnd) >>> 0;
    if (seqGt(seq + payload, edge)) {
      payload = Math.max(0, (edge - seq) | 0);
      data = data.subarray(0, payload);
    }
    if (payload > 0) ofoSeen = dataArrives(tcb, seq, data, pkt, pkt.gsoSize > 0 ? pkt.gsoSize : payload, r.headerLen, f);
  }
  // Eighth: FIN.
  if ((f & FIN) !== 0) {
    const finAt = (r.seq + r.payloadLen) >>> 0;
    if (finAt === tcb.rcvNxt) finArrives(tcb);
    else if (seqGt(finAt, tcb.rcvNxt)) {
      tcb.ofoFin = finAt;
      ofoSeen = true;
    }
  }
  const after = tcb.state as TcpState;
  if (after === 'CLOSED' || after === 'TIME_WAIT') return;
  if (tcb.ackPending || ofoSeen) ackCheck(tcb, ofoSeen);
  if (tcb.sndUna !== wasUna || tcb.sndBuf.length > 0 || tcb.finQueued) output(tcb, 'softirq');
}

function ackArrives(tcb: TcpControlBlock, r: TcpRepr, seq: number, payload: number): void {
  const ack = r.ack;
  if (seqLt(ack, tcb.sndUna)) return; // old duplicate ACK: ignore the ACK field
  const win = r.window << tcb.sndWscale;
  const windowChanged = win !== tcb.sndWnd;
  // RFC 9293 3.10.7.4: update the send window from the freshest segment.
  if (seqLt(tcb.sndWl1, seq) || (tcb.sndWl1 === seq && seqLeq(tcb.sndWl2, ack))) {
    tcb.sndWnd = win;
    tcb.sndWl1 = seq;
    tcb.sndWl2 = ack;
    if (win > 0) {
      if (tcb.persistTimer.armed) {
        tcb.persistTimer.cancel();
        tcb.backoff = 0;
      }
    }
  }
  if (seqGt(ack, tcb.sndUna)) {
    newAck(tcb, ack, r.tsEcr);
    return;
  }
  // RFC 5681 2: a duplicate ACK carries no data, no SYN/FIN, the same window, and
  // arrives while data is outstanding.
  if (payload === 0 && (r.flags & (SYN | FIN)) === 0 && !windowChanged && tcb.sndMax !== tcb.sndUna) dupAck(tcb);
}

function newAck(tcb: TcpControlBlock, ack: number, tsEcr: number | undefined): void {
  const stack = tcb.layer.stack;
  const acked = (ack - tcb.sndUna) | 0;
  const dataAcked = Math.min(acked, tcb.sndBuf.length);
  tcb.sndBuf.consume(dataAcked);
  tcb.stats.bytesSent += dataAcked;
  ackUpdateRtt(tcb, ack, tsEcr);
  tcb.sndUna = ack;
  if (seqLt(tcb.sndNxt, ack)) tcb.sndNxt = ack;
  tcb.backoff = 0;
  tcb.retries = 0;
  if (tcb.sndUna === tcb.sndMax) tcb.rtoTimer.cancel();
  else tcb.rtoTimer.setIn(tcb.rto); // RFC 6298 5.3
  const flight = (tcb.sndMax - tcb.sndUna) | 0;
  if (tcb.inLoss && seqGeq(ack, tcb.highSeq)) tcb.inLoss = false; // back to Open
  if (tcb.inRecovery) {
    if (seqGt(ack, tcb.recover)) {
      // RFC 6582 3.2 step 3: full acknowledgment ends recovery.
      tcb.inRecovery = false;
      tcb.dupAcks = 0;
      tcb.cc.cwnd = Math.min(tcb.cc.ssthresh, Math.max(flight, tcb.mss) + tcb.mss);
    } else {
      // Step 4: partial acknowledgment: retransmit the next hole, deflate cwnd.
      retransmitHead(tcb, 'softirq');
      tcb.cc.cwnd = Math.max(tcb.mss, tcb.cc.cwnd - acked + (acked >= tcb.mss ? tcb.mss : 0));
    }
  } else {
    tcb.dupAcks = 0;
    // Grow only when the window was the limit (Linux tcp_is_cwnd_limited; RFC 7661).
    const before = flight + acked;
    const cwnd = tcb.cc.cwnd;
    if (cwnd < tcb.cc.ssthresh ? cwnd < 2 * before : before + tcb.mss >= cwnd) tcb.cc.onAck(acked, stack.env.now, tcb.srtt);
  }
  if (!tcb.sndbufFixed) tcb.sndbufLimit = Math.max(tcb.sndbufLimit, Math.min(stack.costs.wmemMax, 2 * tcb.cc.cwnd));
  const free = tcb.sndbufLimit - tcb.sndBuf.length;
  if (tcb.writer !== null && free >= tcb.sndBuf.length / 2 && free >= tcb.sndbufLimit / SOCKET_WAKE_FRACTION) tcb.writer = wake(tcb.writer);
}

function dupAck(tcb: TcpControlBlock): void {
  tcb.stats.dupAcksIn++;
  tcb.layer.stats.dupAcksIn++;
  tcb.dupAcks++;
  const c = tcb.layer.stack.costs;
  if (tcb.inRecovery) {
    tcb.cc.cwnd += tcb.mss; // RFC 5681 3.2 step 4: inflate for each further dupack
    return;
  }
  // RFC 6582 3.2 step 1 / 4.1: only if the ACK covers more than `recover` (no false
  // fast retransmit after a timeout).
  if (tcb.dupAcks === c.reordering && seqGeq(tcb.sndUna - 1, tcb.recover)) {
    const flight = (tcb.sndMax - tcb.sndUna) | 0;
    tcb.cc.onCongestion(flight, tcb.layer.stack.env.now);
    tcb.recover = (tcb.sndMax - 1) >>> 0;
    tcb.highSeq = tcb.sndMax;
    tcb.inRecovery = true;
    tcb.stats.fastRetransmits++;
    tcb.layer.stats.fastRetransmits++;
    retransmitHead(tcb, 'softirq');
    tcb.cc.cwnd = tcb.cc.ssthresh + 3 * tcb.mss;
  }
}

/**
 * Linux tcp_ack_update_rtt, for an ACK of new data. With timestamps, the sample is the age
 * of the echoed TSval (RFC 7323 4.1, tcp_ack_saw_tstamp), which is valid for the first ACK
 * after a retransmission too, so the backed-off RTO is recomputed at once; it is in the TS
 * clock's unit (1 ms: Linux 3.x measures every RTT in jiffies, and a sample of 0 counts as
 * 1 jiffy, as tcp_rtt_estimator does). Without timestamps, the timed segment (RFC 6298
 * with Karn's rule: no sample across a retransmission).
 */
export function ackUpdateRtt(tcb: TcpControlBlock, ack: number, tsEcr: number | undefined): void {
  if (tcb.tsOk && tsEcr !== undefined && tsEcr !== 0) {
    tcb.timedSeq = -1;
    const ms = (tsNow(tcb) - tsEcr) | 0;
    if (ms >= 0) rttEstimate(tcb, Math.max(1, ms) * 1e6);
    return;
  }
  if (tcb.timedSeq < 0 || seqLt(ack, tcb.timedSeq)) return;
  const r = tcb.layer.stack.env.now - tcb.timedAt;
  tcb.timedSeq = -1;
  rttEstimate(tcb, r);
}

function rttEstimate(tcb: TcpControlBlock, r: number): void {
  const c = tcb.layer.stack.costs;
  // RFC 6298 2.2 / 2.3.
  if (tcb.srtt === 0) {
    tcb.srtt = r;
    tcb.rttvar = r / 2;
  } else {
    tcb.rttvar = 0.75 * tcb.rttvar + 0.25 * Math.abs(tcb.srtt - r);
    tcb.srtt = 0.875 * tcb.srtt + 0.125 * r;
  }
  // Linux's floor (tcp_rtt_estimator/tcp_set_rto): the variance term is at least
  // TCP_RTO_MIN, so RTO >= SRTT + 200 ms; capped at TCP_RTO_MAX (RFC 6298 2.5).
  tcb.rto = Math.min(c.rtoMax, Math.round(tcb.srtt + Math.max(4 * tcb.rttvar, c.rtoMin)));
}

/**
 * Queues in-order text for recv, or keeps it out of order. Either way the bytes stay where
 * they arrived (the segment's buffer is held, as Linux queues the skb itself).
 */
function dataArrives(tcb: TcpControlBlock, seq: number, data: Uint8Array, pkt: Packet, segSize: number, headerLen: number, flags: number): boolean {
  const len = data.length;
  if (seq !== tcb.rcvNxt) {
    tcb.stats.ofoSegs++;
    tcb.layer.stats.ofoSegs++;
    ofoInsert(tcb, seq, data, pkt);
    return true;
  }
  const hadOfo = tcb.ofo.length > 0;
  tcb.rcvQueue.push({ data, buf: pkt.hold() });
  tcb.rcvQueued += len;
  tcb.rcvNxt = (tcb.rcvNxt + len) >>> 0;
  tcb.stats.bytesReceived += len;
  // Pull what is now in order from the out-of-order queue.
  while (tcb.ofo.length > 0) {
    const h = tcb.ofo[0]!;
    if (seqGt(h.seq, tcb.rcvNxt)) break;
    tcb.ofo.shift();
    tcb.ofoBytes -= h.data.length;
    if (seqGt(h.end, tcb.rcvNxt)) {
      const part = h.data.subarray((tcb.rcvNxt - h.seq) | 0);
      tcb.rcvQueue.push({ data: part, buf: h.buf }); // the hold moves to the receive queue
      tcb.rcvQueued += part.length;
      tcb.stats.bytesReceived += part.length;
      tcb.rcvNxt = h.end;
    } else h.buf?.put();
  }
  measureRcvMss(tcb, segSize, headerLen, flags);
  eventDataRecv(tcb);
  if (tcb.ofoFin >= 0 && tcb.ofoFin === tcb.rcvNxt) {
    tcb.ofoFin = -1;
    finArrives(tcb);
  }
  tcb.reader = wake(tcb.reader);
  return hadOfo; // Linux acks at once when a hole is being filled
}

function ofoInsert(tcb: TcpControlBlock, seq: number, data: Uint8Array, pkt: Packet): void {
  let s = seq;
  let d = data;
  const end = (seq + data.length) >>> 0;
  let i = 0;
  while (i < tcb.ofo.length && seqLeq(tcb.ofo[i]!.end, s)) i++;
  // Trim against the neighbours; a segment wholly covered is dropped.
  const prev = tcb.ofo[i];
  if (prev !== undefined && seqLeq(prev.seq, s)) {
    if (seqGeq(prev.end, end)) return;
    d = d.subarray((prev.end - s) | 0);
    s = prev.end;
    i++;
  }
  let e = end;
  const next = tcb.ofo[i];
  if (next !== undefined && seqLt(next.seq, e)) {
    if (seqGeq(e, next.end)) {
      // Covers the next one entirely: replace it (keep it simple, it is rare).
      tcb.ofoBytes -= next.data.length;
      tcb.ofo.splice(i, 1);
      next.buf?.put();
      ofoInsert(tcb, s, d, pkt);
      return;
    }
    d = d.subarray(0, (next.seq - s) | 0);
    e = next.seq;
  }
  if (d.length === 0) return;
  tcb.ofo.splice(i, 0, { seq: s, end: e, data: d, buf: pkt.hold() });
  tcb.ofoBytes += d.length;
}

function finArrives(tcb: TcpControlBlock): void {
  tcb.rcvNxt = (tcb.rcvNxt + 1) >>> 0;
  tcb.finReceived = true;
  tcb.reader = wake(tcb.reader);
  switch (tcb.state) {
    case 'ESTABLISHED':
      tcb.state = 'CLOSE_WAIT';
      // Linux tcp_fin: delay the ACK hoping to send it with our own FIN.
      tcb.pingpong = true;
      tcb.ackPending = true;
      scheduleDelack(tcb);
      return;
    case 'FIN_WAIT_1':
      // Simultaneous close (RFC 9293 3.6): our FIN is not yet acknowledged.
      tcb.state = 'CLOSING';
      sendAck(tcb, 'softirq');
      return;
    case 'FIN_WAIT_2':
      sendAck(tcb, 'softirq');
      enterTimeWait(tcb);
      return;
    default:
      sendAck(tcb, 'softirq');
  }
}
