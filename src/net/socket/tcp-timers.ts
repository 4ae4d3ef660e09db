import { ACK } from '../wire/tcp.js';
import { destroy, reset, type TcpControlBlock } from './tcp-control-block.js';
import { sendSyn } from './tcp-handshake.js';
import { output, sendControl } from './tcp-output.js';

// The retransmission, zero-window probe and TIME_WAIT / FIN_WAIT_2 timers (Linux
// tcp_timer.c); the delayed-ACK timer is with the rest of the ACK policy in tcp-delack.ts.

/** tcp_retransmit_timer. */
export function onRto(tcb: TcpControlBlock): void {
  const c = tcb.layer.stack.costs;
  if (tcb.state === 'CLOSED' || tcb.state === 'TIME_WAIT' || tcb.sndUna === tcb.sndMax) return;
  tcb.stats.timeouts++;
  tcb.layer.stats.timeouts++;
  const retransmitsBefore = tcb.retries;
  tcb.retries++;
  const synState = tcb.state === 'SYN_SENT' || tcb.state === 'SYN_RECEIVED';
  if (tcb.retries > (synState ? c.synRetries : c.retries2)) {
    // tcp_write_err: the connection is dropped silently (the peer is unreachable anyway).
    reset(tcb, 'ETIMEDOUT');
    return;
  }
  // RFC 6298 5.5-5.6: back off, and retransmit the earliest unacknowledged segment.
  tcb.backoff++;
  tcb.rto = Math.min(c.rtoMax, tcb.rto * 2);
  tcb.timedSeq = -1;
  if (synState) {
    sendSyn(tcb, 'softirq');
    tcb.rtoTimer.setIn(tcb.rto);
    return;
  }
  const flight = (tcb.sndMax - tcb.sndUna) | 0;
  // Linux tcp_enter_loss (RFC 5681 3.1's note): ssthresh is reduced once per window of data.
  // Not again in Loss while the retransmitted head is still unacknowledged, nor when fast
  // recovery already reduced it for this window.
  const reduce = !(tcb.inRecovery || tcb.inLoss) || tcb.sndUna === tcb.highSeq || (tcb.inLoss && retransmitsBefore === 0);
  tcb.cc.onTimeout(flight, reduce);
  tcb.inLoss = true;
  tcb.highSeq = tcb.sndMax;
  tcb.inRecovery = false;
  tcb.dupAcks = 0;
  tcb.recover = (tcb.sndMax - 1) >>> 0; // RFC 6582 4.1
  tcb.sndNxt = tcb.sndUna; // go back N: resend from the first unacknowledged byte
  tcb.rtoTimer.setIn(tcb.rto);
  output(tcb, 'softirq');
}

export function probeInterval(tcb: TcpControlBlock): number {
  const c = tcb.layer.stack.costs;
  return Math.min(c.rtoMax, tcb.rto * 2 ** tcb.backoff);
}

export function onPersist(tcb: TcpControlBlock): void {
  if (tcb.state === 'CLOSED' || tcb.sndWnd > 0 || tcb.sndBuf.length - ((tcb.sndNxt - tcb.sndUna) | 0) <= 0) return;
  // Linux tcp_xmit_probe_skb: an empty segment with an old sequence number draws an ACK
  // carrying the current window.
  tcb.stats.zeroWindowProbes++;
  sendControl(tcb, ACK, (tcb.sndUna - 1) >>> 0, 'softirq');
  tcb.backoff++;
  tcb.persistTimer.setIn(probeInterval(tcb));
}

export function enterTimeWait(tcb: TcpControlBlock): void {
  tcb.state = 'TIME_WAIT';
  tcb.rtoTimer.cancel();
  tcb.persistTimer.cancel();
  tcb.delackTimer.cancel();
  tcb.closeTimer.setIn(tcb.layer.stack.costs.timeWait);
}

export function onCloseTimer(tcb: TcpControlBlock): void {
  if (tcb.state === 'TIME_WAIT' || tcb.state === 'FIN_WAIT_2') destroy(tcb);
}
