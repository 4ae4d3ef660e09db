import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BULK_LATENCY,
  DEFAULT_ITR,
  itrConfig,
  itrRegister,
  LOW_LATENCY,
  LOWEST_LATENCY,
  setItr,
  updateItr,
  validInterruptThrottleRate,
  type ItrState,
} from './e1000-itr.js';
import { parseEmulatedOptions } from './emulated-path.js';

const none = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };

describe('e1000 InterruptThrottleRate (Linux 3.18 e1000_param.c)', () => {
  it('takes 0, 1, 3 and 100-100000; the default is 3 (dynamic conservative) starting at 20000 ints/s', () => {
    assert.equal(DEFAULT_ITR, 3);
    assert.deepEqual(itrConfig(3), { setting: 3, rate: 20000 });
    assert.deepEqual(itrConfig(1), { setting: 1, rate: 20000 });
    assert.deepEqual(itrConfig(0), { setting: 0, rate: 0 });
    // A fixed rate keeps its value but its low two bits never select a dynamic mode.
    assert.deepEqual(itrConfig(8001), { setting: 8000, rate: 8001 });
    for (const bad of [2, 4, 99, 100001, 1.5, -1]) assert.equal(validInterruptThrottleRate(bad), false, String(bad));
    assert.throws(() => itrConfig(4), RangeError);
  });

  it('programs ITR as 1e9 / (rate * 256): 195 at 20000, 976 at 4000, 55 at 70000', () => {
    assert.equal(itrRegister(20000), 195);
    assert.equal(itrRegister(4000), 976);
    assert.equal(itrRegister(70000), 55);
  });
});

describe('e1000_update_itr', () => {
  it('low_latency: over 10000 bytes, big frames or few packets are bulk, many small ones lowest', () => {
    assert.equal(updateItr(LOW_LATENCY, 10, 15000), BULK_LATENCY); // 1500 bytes a frame
    assert.equal(updateItr(LOW_LATENCY, 8, 10400), BULK_LATENCY); // fewer than 10 packets
    assert.equal(updateItr(LOW_LATENCY, 40, 12000), LOWEST_LATENCY); // 300 bytes a frame, > 35
    assert.equal(updateItr(LOW_LATENCY, 20, 12000), LOW_LATENCY);
    assert.equal(updateItr(LOW_LATENCY, 2, 9000), BULK_LATENCY); // up to 10000 bytes, > 2000 a frame
    assert.equal(updateItr(LOW_LATENCY, 2, 130), LOWEST_LATENCY); // a 1-byte request and its ACK
    assert.equal(updateItr(LOW_LATENCY, 4, 6000), LOW_LATENCY);
  });

  it('bulk_latency: back to low when the interval moved little, or many frames of moderate size', () => {
    assert.equal(updateItr(BULK_LATENCY, 10, 5000), LOW_LATENCY);
    assert.equal(updateItr(BULK_LATENCY, 40, 30000), LOW_LATENCY);
    assert.equal(updateItr(BULK_LATENCY, 20, 30000), BULK_LATENCY);
    assert.equal(updateItr(BULK_LATENCY, 5, 8000), BULK_LATENCY);
  });

  it('lowest_latency: jumbo frames are bulk, a few larger frames low; no packets: unchanged', () => {
    assert.equal(updateItr(LOWEST_LATENCY, 2, 18000), BULK_LATENCY);
    assert.equal(updateItr(LOWEST_LATENCY, 3, 1000), LOW_LATENCY);
    assert.equal(updateItr(LOWEST_LATENCY, 10, 1000), LOWEST_LATENCY);
    for (const r of [LOWEST_LATENCY, LOW_LATENCY, BULK_LATENCY] as const) assert.equal(updateItr(r, 0, 0), r);
  });
});

describe('e1000_set_itr', () => {
  const start: ItrState = { rate: 20000, txRange: LOWEST_LATENCY, rxRange: LOWEST_LATENCY };
  const bulk = { txPackets: 1, txBytes: 66, rxPackets: 12, rxBytes: 12 * 1514 };
  const rr = { txPackets: 1, txBytes: 67, rxPackets: 1, rxBytes: 67 };

  it('drops to 4000 at once under bulk traffic (the slower direction decides)', () => {
    let s = setItr(3, start, true, bulk);
    // lowest -> low for RX first (conservative), then bulk from low.
    assert.equal(s.state.rxRange, LOW_LATENCY);
    assert.equal(s.changed, false);
    s = setItr(3, s.state, true, bulk);
    assert.deepEqual(s, { state: { rate: 4000, txRange: LOW_LATENCY, rxRange: BULK_LATENCY }, changed: true });
    const again = setItr(3, s.state, true, bulk);
    assert.equal(again.changed, false, 'no change, no write');
  });

  it('climbs back in quarter-target steps: 4000 -> 9000 -> 14000 -> 19000 -> 20000; conservative mode never goes to 70000', () => {
    let st: ItrState = { rate: 4000, txRange: BULK_LATENCY, rxRange: BULK_LATENCY };
    const rates: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = setItr(3, st, true, rr);
      st = r.state;
      if (r.changed) rates.push(st.rate);
    }
    assert.deepEqual(rates, [9000, 14000, 19000, 20000]);
    assert.equal(st.rxRange, LOW_LATENCY);
  });

  it('dynamic mode (1) takes lowest_latency: 20000 -> 37500 -> 55000 -> 70000 for 1-byte request-response', () => {
    let st: ItrState = { rate: 20000, txRange: LOW_LATENCY, rxRange: LOW_LATENCY };
    const rates: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = setItr(1, st, true, rr);
      st = r.state;
      if (r.changed) rates.push(st.rate);
    }
    assert.deepEqual(rates, [37500, 55000, 70000]);
  });

  it('below gigabit the rate is 4000 whatever the traffic', () => {
    assert.deepEqual(setItr(3, start, false, none).state.rate, 4000);
    assert.equal(setItr(3, { ...start, rate: 4000 }, false, rr).changed, false);
  });
});

describe('the emulated path option itr', () => {
  it("takes the module parameter's numbers and the names 'off', 'dynamic', 'dynamic-conservative'; anything else is an error naming it", () => {
    assert.deepEqual(parseEmulatedOptions({ itr: 'dynamic-conservative' }, 'g'), { itr: 3 });
    assert.deepEqual(parseEmulatedOptions({ itr: 'dynamic' }, 'g'), { itr: 1 });
    assert.deepEqual(parseEmulatedOptions({ itr: 'off' }, 'g'), { itr: 0 });
    assert.deepEqual(parseEmulatedOptions({ itr: 8000 }, 'g'), { itr: 8000 });
    assert.deepEqual(parseEmulatedOptions({}, 'g'), {});
    for (const bad of [4, 2, 50, 200000, 'fast', true])
      assert.throws(
        () => parseEmulatedOptions({ itr: bad }, 'vm1: vif 0'),
        /vm1: vif 0: invalid emulated options:\n {2}- itr: expected InterruptThrottleRate/,
      );
  });
});
