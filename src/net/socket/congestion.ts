/**
 * Congestion control, in bytes (RFC 5681 counts cwnd in bytes; RFC 9438 in segments, so
 * CUBIC converts through the MSS). The connection calls `onAck` for every ACK of new data
 * outside loss recovery, `onCongestion` on entering fast recovery, and `onTimeout` on a
 * retransmission timeout; it owns the recovery phase itself (RFC 6582).
 */
export interface CongestionControl {
  readonly name: 'reno' | 'cubic';
  cwnd: number;
  ssthresh: number;
  /** New data acknowledged: `acked` bytes, at `now` ns, with smoothed RTT `srtt` ns (0 if unknown). */
  onAck(acked: number, now: number, srtt: number): void;
  /** Loss detected by duplicate ACKs: sets and returns ssthresh (cwnd is set by recovery). */
  onCongestion(flight: number, now: number): number;
  /**
   * Retransmission timeout: cwnd to one segment; ssthresh from the flight (RFC 5681 eq. 4)
   * only if `reduce` (the first timeout of a window: Linux tcp_enter_loss).
   */
  onTimeout(flight: number, reduce: boolean): void;
}

export type CongestionName = 'reno' | 'cubic';

export function makeCongestion(name: CongestionName, mss: number, initCwnd: number): CongestionControl {
  return name === 'cubic' ? new Cubic(mss, initCwnd) : new Reno(mss, initCwnd);
}

const INFINITE_SSTHRESH = 0x7fffffff;

/** RFC 5681 with appropriate byte counting (RFC 3465, L = 2 SMSS in slow start). */
export class Reno implements CongestionControl {
  readonly name: 'reno' | 'cubic' = 'reno';
  cwnd: number;
  ssthresh = INFINITE_SSTHRESH;
  protected bytesAcked = 0;

  constructor(
    protected readonly mss: number,
    initCwnd: number,
  ) {
    this.cwnd = initCwnd * mss;
  }

  onAck(acked: number, now: number, srtt: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, 2 * this.mss); // RFC 5681 eq. 2 with RFC 3465 L = 2
      return;
    }
    this.congestionAvoidance(acked, now, srtt);
  }

  protected congestionAvoidance(acked: number, _now: number, _srtt: number): void {
    // RFC 5681 3.1: one SMSS per cwnd of data acknowledged (byte counting, RFC 3465 2.1).
    this.bytesAcked += acked;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  onCongestion(flight: number, _now: number): number {
    this.ssthresh = Math.max(flight / 2, 2 * this.mss); // RFC 5681 eq. 4
    this.bytesAcked = 0;
    return this.ssthresh;
  }

  onTimeout(flight: number, reduce: boolean): void {
    if (reduce) this.ssthresh = Math.max(flight / 2, 2 * this.mss);
    this.cwnd = this.mss;
    this.bytesAcked = 0;
  }
}

/** CUBIC (RFC 9438; Linux's default), without HyStart. */
export class Cubic extends Reno {
  override readonly name: 'reno' | 'cubic' = 'cubic';
  static readonly BETA = 0.7; // RFC 9438 4.6 beta_cubic
  static readonly C = 0.4; // RFC 9438 5 C
  private wMax = 0; // segments
  private wLastMax = 0;
  private k = 0; // seconds
  private epoch = -1; // ns; -1 until congestion avoidance starts after an event
  private cwndEpoch = 0;
  private wEst = 0; // segments, Reno-friendly estimate (RFC 9438 4.3)

  protected override congestionAvoidance(acked: number, now: number, srtt: number): void {
    const mss = this.mss;
    const cwndSeg = this.cwnd / mss;
    if (this.epoch < 0) {
      this.epoch = now;
      this.cwndEpoch = cwndSeg;
      if (this.wMax <= cwndSeg) {
        // No recorded maximum above us (start, or after growing past it): plateau here.
        this.wMax = cwndSeg;
        this.k = 0;
      } else {
        this.k = Math.cbrt((this.wMax - cwndSeg) / Cubic.C); // RFC 9438 eq. 2 with cwnd_epoch
      }
      this.wEst = cwndSeg;
    }
    const t = (now - this.epoch) / 1e9;
    const rtt = srtt / 1e9;
    const wCubic = (x: number): number => Cubic.C * (x - this.k) ** 3 + this.wMax; // eq. 1
    // RFC 9438 4.3: Reno-friendly estimate, alpha = 3 (1 - beta) / (1 + beta).
    const alpha = (3 * (1 - Cubic.BETA)) / (1 + Cubic.BETA);
    this.wEst += (alpha * (acked / mss)) / cwndSeg;
    const cubicNow = wCubic(t);
    let target: number;
    if (cubicNow < this.wEst) {
      target = this.wEst; // Reno-friendly region
      this.cwnd = Math.max(this.cwnd, Math.floor(target) * mss);
      return;
    }
    // RFC 9438 4.4/4.5: target = W_cubic(t + RTT), bounded to [cwnd, 1.5 cwnd].
    target = Math.min(Math.max(wCubic(t + rtt), cwndSeg), 1.5 * cwndSeg);
    this.cwnd += ((target - cwndSeg) / cwndSeg) * acked;
  }

  override onCongestion(flight: number, _now: number): number {
    const cwndSeg = this.cwnd / this.mss;
    // RFC 9438 4.7 fast convergence.
    this.wMax = cwndSeg < this.wLastMax ? (cwndSeg * (1 + Cubic.BETA)) / 2 : cwndSeg;
    this.wLastMax = cwndSeg;
    this.epoch = -1;
    void flight;
    this.ssthresh = Math.max(Math.floor(this.cwnd * Cubic.BETA), 2 * this.mss); // RFC 9438 4.6
    this.bytesAcked = 0;
    return this.ssthresh;
  }

  override onTimeout(flight: number, reduce: boolean): void {
    // RFC 9438 4.8: as a congestion event, then cwnd = 1 segment. A further timeout in the
    // same window changes neither ssthresh nor W_max (cwnd is 1 by then: recomputing would
    // cut ssthresh to 2 segments).
    if (reduce) this.onCongestion(flight, 0);
    this.epoch = -1;
    this.bytesAcked = 0;
    this.cwnd = this.mss;
  }
}
