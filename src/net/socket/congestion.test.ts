import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS } from '../../sim/index.js';
import { Cubic, type HystartParams } from './congestion.js';

const MSS = 1448;
/** Linux 3.18's defaults (profiles/default.json net.tcp.hystart*), one detector at a time. */
const params = (detect: number): HystartParams => ({ detect, lowWindow: 16, ackDelta: 2 * MS, delayMin: 4 * MS, delayMax: 16 * MS });

/** A CUBIC in slow start at `segs` segments whose first round begins at `t0` and ends at sequence 100000. */
function inSlowStart(detect: number, segs: number, t0 = 0): Cubic {
  const c = new Cubic(MSS, 10, params(detect));
  c.cwnd = segs * MSS;
  c.onAck(MSS, t0, 0, 1, 100_000); // the first ACK starts a round (bictcp_hystart_reset)
  c.cwnd = segs * MSS;
  return c;
}

describe('CUBIC HyStart (Linux 3.18 tcp_cubic.c)', () => {
  it('ACK train: ACKs 1 ms apart for longer than half the minimum RTT end slow start (ssthresh = cwnd)', () => {
    const c = inSlowStart(1, 20);
    // RTT 10 ms: delay_min 80 (ms << 3), half of it 5 ms.
    for (let t = 1; t <= 5; t++) c.onRttSample(10 * MS, t * MS);
    assert.equal(c.hystartFound, 0, 'a 5 ms train is not longer than 5 ms');
    c.onRttSample(10 * MS, 6 * MS);
    assert.equal(c.hystartFound, 1);
    assert.equal(c.ssthresh, 20 * MSS);
  });

  it('ACK train: ACKs 3 ms apart (more than hystart_ack_delta) are no train', () => {
    const c = inSlowStart(1, 20);
    for (let t = 3; t <= 30; t += 3) c.onRttSample(10 * MS, t * MS);
    assert.equal(c.hystartFound, 0);
    assert.ok(c.ssthresh > 1e9, 'still in slow start');
  });

  for (const [rttMs, found] of [
    [15, true],
    [13, false],
  ] as const) {
    it(`delay: a round whose 8 smallest-of samples are ${rttMs} ms after a 10 ms minimum ${found ? 'ends' : 'does not end'} slow start (threshold 10 + max(4, 10/16) ms)`, () => {
      const c = inSlowStart(2, 20);
      for (let i = 0; i < 10; i++) c.onRttSample(10 * MS, i * 5 * MS); // round 1 sets delay_min
      assert.equal(c.hystartFound, 0);
      c.onAck(MSS, 60 * MS, 0, 100_001, 200_000); // past end_seq: round 2
      c.cwnd = 20 * MSS;
      for (let i = 0; i < 8; i++) c.onRttSample(rttMs * MS, (61 + 5 * i) * MS);
      assert.equal(c.hystartFound, 0, 'the first 8 samples only set the round minimum');
      c.onRttSample(rttMs * MS, 120 * MS);
      assert.equal(c.hystartFound, found ? 2 : 0);
      if (found) assert.equal(c.ssthresh, 20 * MSS);
    });
  }

  it('does not act below hystart_low_window (16 segments), nor with hystart_detect = 0', () => {
    for (const [detect, segs] of [
      [3, 15],
      [0, 40],
    ] as const) {
      const c = inSlowStart(detect, segs);
      for (let t = 1; t <= 30; t++) c.onRttSample((10 + t) * MS, t * MS);
      assert.equal(c.hystartFound, 0, `detect ${detect}, ${segs} segments`);
    }
  });

  it('a timeout starts HyStart afresh (bictcp_state TCP_CA_Loss)', () => {
    const c = inSlowStart(1, 20);
    for (let t = 1; t <= 6; t++) c.onRttSample(10 * MS, t * MS);
    assert.equal(c.hystartFound, 1);
    c.onTimeout(20 * MSS, true, 300 * MS, 300_000);
    assert.equal(c.hystartFound, 0);
    assert.equal(c.cwnd, MSS);
  });
});
