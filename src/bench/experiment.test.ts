import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { runCase, TESTS, type CaseSpec } from './experiment.js';

const profile = Profile.load('default');
const wall = { wallMs: (): number => performance.now() };
const base: Omit<CaseSpec, 'test' | 'size'> = { path: 'loopback', guestType: 'hvm', seed: 7, warmupNs: 2 * MS, durationNs: 5 * MS, pingCount: 20 };

describe('experiment: one measured case', () => {
  it('runs every test over the loopback reference, verified, with its metrics and a window of the asked length', () => {
    for (const test of TESTS) {
      const r = runCase(profile, { ...base, test, size: test.endsWith('stream') ? 16384 : 1 }, wall);
      assert.equal(r.verified, true);
      if (test.endsWith('stream')) {
        assert.ok(r.throughputMbps! > 0, `${test}: throughput`);
        assert.equal(r.latencyUs, null);
        assert.equal(r.windowNs, base.durationNs);
      } else {
        assert.ok(r.latencyUs!.mean > 0 && r.latencyUs!.p99 >= r.latencyUs!.p90 && r.latencyUs!.p90 >= r.latencyUs!.p50, `${test}: latency order`);
        if (test !== 'ping') assert.ok(r.transactionsPerSec! > 0);
      }
      assert.ok(r.frames > 0, `${test}: frames counted`);
      // Loopback: nothing reaches Xen's grant tables or Dom0's bridge.
      assert.equal(r.perFrame.grantCopies, 0);
      assert.equal(r.perFrame.dom0Packets, 0);
      assert.ok(r.cpu.vm1! > 0, `${test}: the guest's CPU is busy`);
      assert.ok('Domain-0' in r.cpu && 'xen' in r.cpu);
    }
  });

  it('is deterministic: the same spec and seed give the same figures (all but the wall-clock speed)', () => {
    const spec: CaseSpec = { ...base, test: 'tcp_rr', size: 1 };
    const a = runCase(profile, spec, wall);
    const b = runCase(profile, spec, wall);
    assert.deepEqual({ ...a, simSpeed: 0 }, { ...b, simSpeed: 0 });
    const c = runCase(profile, { ...spec, durationNs: 2 * base.durationNs }, wall);
    assert.ok(c.transactionsPerSec! > 0 && c.windowNs === 2 * base.durationNs);
  });

  it('refuses a case without a measured window', () => {
    assert.throws(() => runCase(profile, { ...base, test: 'tcp_rr', size: 1, durationNs: 0 }, wall), /duration must be positive/);
  });
});
