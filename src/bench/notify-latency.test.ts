import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Profile } from '../profile/index.js';
import { DALL_CLOCK_GHZ, DALL_IN_CYCLES, DALL_OUT_CYCLES, measureNotifyLatency } from './notify-latency.js';

describe('event-channel notify latency across domains', () => {
  const profile = Profile.load('default');
  const r = measureNotifyLatency(profile);

  it("is exactly the sum of the path's parts: the mechanisms add nothing unaccounted and skip nothing", () => {
    for (const leg of [r.out, r.in])
      assert.equal(
        leg.ns,
        leg.parts.reduce((s, [, ns]) => s + ns, 0),
      );
  });

  it("lands within a factor of two of Dall et al.'s published figures (a sanity bound, not a fit)", () => {
    for (const [leg, dall] of [
      [r.out, DALL_OUT_CYCLES],
      [r.in, DALL_IN_CYCLES],
    ] as const) {
      const ratio = leg.ns / (dall / DALL_CLOCK_GHZ);
      assert.ok(ratio > 0.5 && ratio < 2, `model/Dall = ${ratio.toFixed(2)}`);
    }
  });

  it('follows the profile: a slower idle wake-up adds exactly its difference to both directions', () => {
    const slow = measureNotifyLatency(
      profile.with({ 'xen.pcpu.idleWake': { value: 80, unit: 'us', source: 'test: Sandy Bridge C3 exit latency instead of C1' } }),
    );
    const d = 80_000 - profile.ns('xen.pcpu.idleWake');
    assert.equal(slow.out.ns - r.out.ns, d);
    assert.equal(slow.in.ns - r.in.ns, d);
  });
});
