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
  /**
   * New data acknowledged while the window was the limit: `acked` bytes, at `now` ns, with
   * smoothed RTT `srtt` ns (0 if unknown), the ACK's sequence number and snd_nxt (Linux
   * cong_avoid).
   */
  onAck(acked: number, now: number, srtt: number, ack: number, sndNxt: number): void;
  /**
   * Every ACK of new data whose newest acknowledged segment was sent once: its RTT in ns
   * (Linux pkts_acked with a valid sample), before `onAck`.
   */
  onRttSample(rtt: number, now: number): void;
  /** Loss detected by duplicate ACKs: sets and returns ssthresh (cwnd is set by recovery). */
  onCongestion(flight: number, now: number): number;
  /**
   * Retransmission timeout: cwnd to one segment; ssthresh from the flight (RFC 5681 eq. 4)
   * only if `reduce` (the first timeout of a window: Linux tcp_enter_loss).
   */
  onTimeout(flight: number, reduce: boolean, now: number, sndNxt: number): void;
}

/** CUBIC's HyStart parameters (Linux 3.18 tcp_cubic.c module parameters), from the profile. */
export interface HystartParams {
  /** Bit mask of detectors: HYSTART_ACK_TRAIN | HYSTART_DELAY; 0 turns HyStart off. */
  readonly detect: number;
  /** Segments. */
  readonly lowWindow: number;
  /** ns. */
  readonly ackDelta: number;
  readonly delayMin: number;
  readonly delayMax: number;
}

export type CongestionName = 'reno' | 'cubic';

export function makeCongestion(name: CongestionName, mss: number, initCwnd: number, hystart: HystartParams): CongestionControl {
  return name === 'cubic' ? new Cubic(mss, initCwnd, hystart) : new Reno(mss, initCwnd);
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

  onAck(acked: number, now: number, srtt: number, ack: number, sndNxt: number): void {
    if (this.cwnd < this.ssthresh) {
      this.slowStartRound(now, ack, sndNxt);
      this.cwnd += Math.min(acked, 2 * this.mss); // RFC 5681 eq. 2 with RFC 3465 L = 2
      return;
    }
    this.congestionAvoidance(acked, now, srtt);
  }

  onRttSample(_rtt: number, _now: number): void {}

  protected slowStartRound(_now: number, _ack: number, _sndNxt: number): void {}

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

  onTimeout(flight: number, reduce: boolean, _now: number, _sndNxt: number): void {
    if (reduce) this.ssthresh = Math.max(flight / 2, 2 * this.mss);
    this.cwnd = this.mss;
    this.bytesAcked = 0;
  }
}

const HYSTART_ACK_TRAIN = 0x1;
const HYSTART_DELAY = 0x2;
const HYSTART_MIN_SAMPLES = 8; // tcp_cubic.c: delay samples per round before comparing
/** ns per tick of bictcp_clock and of Linux 3.x jiffies at HZ = 1000: HyStart counts in ms. */
const JIFFY = 1e6;

/**
 * CUBIC (RFC 9438; Linux's default) with HyStart as Linux 3.18's tcp_cubic.c has it (Ha and
 * Rhee, "Taming the elephants: new TCP slow start", 2011): in slow start, from a window of
 * hystart_low_window segments, leave slow start (ssthresh = cwnd) when a round's ACKs arrive
 * as one train (each within hystart_ack_delta of the last) for longer than half the minimum
 * RTT, or when the smallest of a round's first 8 RTT samples exceeds the minimum RTT by
 * delay_min/16 clamped to [HYSTART_DELAY_MIN, HYSTART_DELAY_MAX]. Linux's units are kept: the
 * clock is ms (bictcp_clock), RTTs are ms scaled by 8 (bictcp_acked), so on a LAN, where the
 * minimum RTT rounds to 1/8 ms, the ACK train fires as soon as one round's train spans a
 * tick, as it does in Linux. Not modelled: the discarding of samples in the first second of
 * a congestion-avoidance epoch (HyStart acts only in slow start here, where that rule does
 * not bind).
 */
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
  // HyStart (struct bictcp): times in ms ticks, RTTs in ms << 3.
  /** Detectors that fired this slow start (ca->found). */
  hystartFound = 0;
  private roundStarted = false;
  private roundStart = 0;
  private lastAck = 0;
  private endSeq = 0;
  private currRtt = 0;
  private sampleCnt = 0;
  private delayMin = 0;

  constructor(
    mss: number,
    initCwnd: number,
    private readonly hystart: HystartParams,
  ) {
    super(mss, initCwnd);
  }

  /** bictcp_hystart_reset: a new round begins, ending when snd_nxt of now is acknowledged. */
  private hystartReset(now: number, sndNxt: number): void {
    this.roundStarted = true;
    this.roundStart = this.lastAck = Math.floor(now / JIFFY);
    this.endSeq = sndNxt;
    this.currRtt = 0;
    this.sampleCnt = 0;
  }

  protected override slowStartRound(now: number, ack: number, sndNxt: number): void {
    // bictcp_cong_avoid: in slow start, an ACK past the round's end starts the next round.
    if (this.hystart.detect !== 0 && (!this.roundStarted || ((ack - this.endSeq) | 0) > 0)) this.hystartReset(now, sndNxt);
  }

  /** bictcp_acked. */
  override onRttSample(rtt: number, now: number): void {
    const delay = Math.max(1, Math.floor((Math.floor(rtt / 1000) * 8) / 1000));
    if (this.delayMin === 0 || this.delayMin > delay) this.delayMin = delay;
    const h = this.hystart;
    const cwndSeg = Math.floor(this.cwnd / this.mss);
    if (h.detect !== 0 && this.cwnd <= this.ssthresh && cwndSeg >= h.lowWindow) this.hystartUpdate(delay, now);
  }

  /** hystart_update. */
  private hystartUpdate(delay: number, now: number): void {
    const h = this.hystart;
    if ((this.hystartFound & h.detect) !== 0) return;
    if ((h.detect & HYSTART_ACK_TRAIN) !== 0) {
      const t = Math.floor(now / JIFFY);
      if (t - this.lastAck <= Math.floor(h.ackDelta / JIFFY)) {
        this.lastAck = t;
        if (t - this.roundStart > this.delayMin >> 4) this.hystartFound |= HYSTART_ACK_TRAIN;
      }
    }
    if ((h.detect & HYSTART_DELAY) !== 0) {
      if (this.sampleCnt < HYSTART_MIN_SAMPLES) {
        if (this.currRtt === 0 || this.currRtt > delay) this.currRtt = delay;
        this.sampleCnt++;
      } else {
        const lo = Math.floor((h.delayMin * 8) / JIFFY);
        const hi = Math.floor((h.delayMax * 8) / JIFFY);
        if (this.currRtt > this.delayMin + Math.min(hi, Math.max(lo, this.delayMin >> 4))) this.hystartFound |= HYSTART_DELAY;
      }
    }
    if ((this.hystartFound & h.detect) !== 0) this.ssthresh = this.cwnd;
  }

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
    const before = this.cwnd;
    let target: number;
    if (cubicNow < this.wEst) {
      target = this.wEst; // Reno-friendly region
      this.cwnd = Math.max(this.cwnd, Math.floor(target) * mss);
    } else {
      // RFC 9438 4.4/4.5: target = W_cubic(t + RTT), bounded to [cwnd, 1.5 cwnd].
      target = Math.min(Math.max(wCubic(t + rtt), cwndSeg), 1.5 * cwndSeg);
      this.cwnd += ((target - cwndSeg) / cwndSeg) * acked;
    }
    // Linux 3.18 bictcp_update: before the first congestion event (last_max_cwnd == 0, as
    // after HyStart ends slow start) the window grows by at least 5% per RTT (cnt <= 20).
    if (this.wLastMax === 0) this.cwnd = Math.max(this.cwnd, before + acked / 20);
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

  override onTimeout(flight: number, reduce: boolean, now: number, sndNxt: number): void {
    // RFC 9438 4.8: as a congestion event, then cwnd = 1 segment. A further timeout in the
    // same window changes neither ssthresh nor W_max (cwnd is 1 by then: recomputing would
    // cut ssthresh to 2 segments).
    if (reduce) this.onCongestion(flight, 0);
    // bictcp_state(TCP_CA_Loss): HyStart starts afresh (bictcp_reset, bictcp_hystart_reset).
    this.hystartFound = 0;
    this.delayMin = 0;
    if (this.hystart.detect !== 0) this.hystartReset(now, sndNxt);
    this.epoch = -1;
    this.bytesAcked = 0;
    this.cwnd = this.mss;
  }
}
