/**
 * Linux 3.18's e1000 interrupt throttling (drivers/net/ethernet/intel/e1000: the
 * InterruptThrottleRate module parameter in e1000_param.c, e1000_update_itr and e1000_set_itr
 * in e1000_main.c), as data and pure functions; the driver feeds it what each NAPI run cleaned.
 *
 * InterruptThrottleRate: 0 turns ITR off (the register is never written); 1 is "dynamic
 * mode", 3 "dynamic conservative mode" (the default, DEFAULT_ITR): the rate starts at 20000
 * and e1000_set_itr adapts it after every NAPI run that finished its work; 100 to 100000 is a
 * fixed rate (itr_setting = value & ~3, so its low bits never select a dynamic mode). 4
 * ("simplified" mode, adjusted by the watchdog from the good-octets counters) is not modelled.
 */

/** enum latency_range (e1000.h): the class of the last interval's traffic. */
export const LOWEST_LATENCY = 0;
export const LOW_LATENCY = 1;
export const BULK_LATENCY = 2;
export type LatencyRange = typeof LOWEST_LATENCY | typeof LOW_LATENCY | typeof BULK_LATENCY;

/** The interrupt rate e1000_set_itr picks for each class (ints/s). */
export const LATENCY_RATE: Readonly<Record<LatencyRange, number>> = { 0: 70000, 1: 20000, 2: 4000 };

/** InterruptThrottleRate's default (DEFAULT_ITR: dynamic conservative) and its fixed-rate bounds (MIN_ITR, MAX_ITR). */
export const DEFAULT_ITR = 3;
export const MIN_ITR = 100;
export const MAX_ITR = 100000;
/** adapter->itr when a dynamic mode starts (e1000_check_options). */
export const DYNAMIC_START_RATE = 20000;
/** e1000_set_itr: below gigabit the rate is fixed at 4000. */
export const NON_GIGABIT_RATE = 4000;

/** What e1000_check_options makes of InterruptThrottleRate. */
export interface ItrConfig {
  /** adapter->itr_setting: 0 off, 1 or 3 dynamic, otherwise the fixed rate with its low two bits cleared. */
  setting: number;
  /** adapter->itr: the rate the ITR register is first programmed with (ints/s). */
  rate: number;
}

/** Whether `v` is a value InterruptThrottleRate accepts in this model (0, 1, 3, or 100-100000). */
export function validInterruptThrottleRate(v: number): boolean {
  return Number.isInteger(v) && (v === 0 || v === 1 || v === 3 || (v >= MIN_ITR && v <= MAX_ITR));
}

export function itrConfig(interruptThrottleRate: number): ItrConfig {
  if (!validInterruptThrottleRate(interruptThrottleRate))
    throw new RangeError(`InterruptThrottleRate ${interruptThrottleRate} (model bug: not validated)`);
  if (interruptThrottleRate === 0) return { setting: 0, rate: 0 };
  if (interruptThrottleRate === 1 || interruptThrottleRate === 3) return { setting: interruptThrottleRate, rate: DYNAMIC_START_RATE };
  return { setting: interruptThrottleRate & ~3, rate: interruptThrottleRate };
}

/** The ITR register value for a rate: the interval in 256 ns units (1000000000 / (rate * 256)). */
export function itrRegister(rate: number): number {
  return Math.floor(1_000_000_000 / (rate * 256));
}

/**
 * e1000_update_itr: the next class from the current one and what the last interval moved in
 * one direction ("thresholds set from theoretical wire speed and testing data"). No packets:
 * unchanged.
 */
export function updateItr(range: LatencyRange, packets: number, bytes: number): LatencyRange {
  if (packets === 0) return range;
  const per = Math.floor(bytes / packets);
  switch (range) {
    case LOWEST_LATENCY:
      if (per > 8000) return BULK_LATENCY; // jumbo frames
      if (packets < 5 && bytes > 512) return LOW_LATENCY;
      return range;
    case LOW_LATENCY: // 50 µs, 20000 ints/s
      if (bytes > 10000) {
        if (per > 8000) return BULK_LATENCY;
        if (packets < 10 || per > 1200) return BULK_LATENCY;
        if (packets > 35) return LOWEST_LATENCY;
        return range;
      }
      if (per > 2000) return BULK_LATENCY;
      if (packets <= 2 && bytes < 512) return LOWEST_LATENCY;
      return range;
    case BULK_LATENCY: // 250 µs, 4000 ints/s
      if (bytes > 25000) return packets > 35 ? LOW_LATENCY : range;
      if (bytes < 6000) return LOW_LATENCY;
      return range;
  }
}

/** The adapter's dynamic-ITR state (adapter->itr, tx_itr, rx_itr). */
export interface ItrState {
  rate: number;
  txRange: LatencyRange;
  rxRange: LatencyRange;
}

/** What one NAPI run cleaned (adapter->total_tx/rx_packets/bytes, reset when the interrupt schedules NAPI). */
export interface ItrInterval {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

/**
 * e1000_set_itr for a dynamic `setting` (1 or 3): each direction's class updated (conservative
 * mode 3 never keeps lowest_latency), the slower of the two picks the target rate; a lower rate
 * is taken at once, a higher one approached in steps of a quarter of the target ("to bias the
 * interrupt rate towards bulk"). Returns the new state and whether the rate changed (then the
 * driver writes the ITR register, and only then).
 */
export function setItr(setting: number, s: ItrState, gigabit: boolean, iv: ItrInterval): { state: ItrState; changed: boolean } {
  let target: number;
  let txRange = s.txRange;
  let rxRange = s.rxRange;
  if (!gigabit) target = NON_GIGABIT_RATE;
  else {
    txRange = updateItr(txRange, iv.txPackets, iv.txBytes);
    if (setting === 3 && txRange === LOWEST_LATENCY) txRange = LOW_LATENCY;
    rxRange = updateItr(rxRange, iv.rxPackets, iv.rxBytes);
    if (setting === 3 && rxRange === LOWEST_LATENCY) rxRange = LOW_LATENCY;
    target = LATENCY_RATE[Math.max(txRange, rxRange) as LatencyRange];
  }
  if (target === s.rate) return { state: { rate: s.rate, txRange, rxRange }, changed: false };
  const rate = target > s.rate ? Math.min(s.rate + (target >> 2), target) : target;
  return { state: { rate, txRange, rxRange }, changed: true };
}
