import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Profile, ProfileError } from '../../profile/index.js';
import { linuxOf, linuxRelease } from './linux-release.js';

describe("the kernels' Linux release (profile linux.version)", () => {
  it('the default profile names Linux 3.18 (FIFO events), pentium-d-xen3.2 Linux 2.6.18.8 (2-level only)', () => {
    const d = linuxOf(Profile.load('default'));
    assert.deepEqual([d.version, d.fifoEvents], ['3.18.0', true]);
    const p = linuxOf(Profile.load('pentium-d-xen3.2'));
    assert.deepEqual([p.version, p.fifoEvents], ['2.6.18.8', false]);
  });

  it('fifoEvents holds from 3.14', () => {
    for (const [v, fifo] of [
      ['2.6.32', false],
      ['3.13.11', false],
      ['3.14', true],
      ['3.14.0', true],
      ['4.4.0', true],
    ] as const)
      assert.equal(linuxRelease(v).fifoEvents, fifo, v);
  });

  it('a version that is not a Linux release, or predates its Xen support, is a profile error naming the field', () => {
    for (const bad of ['3.x', '', '2.4.37']) {
      assert.throws(
        () => linuxRelease(bad, 'test.json'),
        (e: unknown) => e instanceof ProfileError && /test\.json/.test(e.message) && /linux\.version/.test(e.message),
        bad,
      );
    }
    const data = JSON.parse(JSON.stringify(Profile.load('default').data)) as Record<string, unknown>;
    delete data.linux;
    assert.throws(() => Profile.fromData(data, 'test.json'), /field "linux"/);
    assert.throws(() => Profile.load('default').withLinux('three'), /linux\.version/);
  });
});
