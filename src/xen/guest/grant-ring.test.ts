import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_bad_page,
  GNTST_eagain,
  GNTST_general_error,
  GNTST_okay,
  GNTTABOP_copy,
} from '../abi/index.js';
import type { GnttabCopy } from '../gnttab-op.js';
import type { HypercallArgs } from '../hypercall.js';
import { filledFrame, makeHost, profile, type TestHost } from '../test-fixture.js';
import type { Vcpu } from '../vcpu.js';
import { gnttabBatchCopy } from './grant-ring.js';
import type { XenGuest } from './xen-guest.js';

const P = 4096;
const step = profile.ns('guest.gnttab.eagainRetryStep');

/**
 * Dom0's kernel with its hypercalls observed: every grant_table_op is recorded (its op
 * count), and `tamper` may rewrite statuses after Xen has answered (standing in for a
 * paged-out frame, which the model does not have).
 */
function observedDom0(h: TestHost, tamper: (call: number, ops: GnttabCopy[]) => void = () => {}): { xg: XenGuest; calls: number[] } {
  const calls: number[] = [];
  const hv = h.hv;
  const platform = Object.create(hv, {
    hypercall: {
      value: function* (v: Vcpu, a: HypercallArgs): Generator<SimEvent<unknown>, number, unknown> {
        const rc = yield* hv.hypercall(v, a);
        if (a.nr === __HYPERVISOR_grant_table_op && a.cmd === GNTTABOP_copy) {
          calls.push(a.ops.length);
          tamper(calls.length, a.ops);
        }
        return rc;
      },
    },
  }) as typeof hv;
  const xg = Object.create(h.dom0, { xen: { value: platform } }) as XenGuest;
  return { xg, calls };
}

describe('gnttab_batch_copy', () => {
  it('moves real bytes between two guests’ granted frames and Dom0’s own, in one GNTTABOP_copy', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const src = filledFrame(a, 0x00);
    a.mem.write(src * P + 100, new TextEncoder().encode('payload from a'));
    const dst = filledFrame(b, 0xee);
    const own = filledFrame(h.dom0, 0x5a);
    const srcRef = a.gnttab.grantAccess(0, src, true);
    const dstRef = b.gnttab.grantAccess(0, dst, false);
    const { xg, calls } = observedDom0(h);
    const ops: GnttabCopy[] = [
      {
        source: { u: srcRef, domid: a.domid, offset: 100 },
        dest: { u: dstRef, domid: b.domid, offset: 2000 },
        len: 14,
        flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
      },
      { source: { u: own, domid: DOMID_SELF, offset: 0 }, dest: { u: dstRef, domid: b.domid, offset: 0 }, len: 8, flags: GNTCOPY_dest_gref },
      // A readonly grant may not be a destination: this op fails alone.
      { source: { u: own, domid: DOMID_SELF, offset: 0 }, dest: { u: srcRef, domid: a.domid, offset: 0 }, len: 8, flags: GNTCOPY_dest_gref },
    ];
    const before = h.dom0.domain.counters.grantCopies;
    h.run(gnttabBatchCopy(xg, h.dom0.domain.vcpus[0]!, ops, step));
    assert.deepEqual(calls, [3], 'one hypercall for the whole batch');
    assert.deepEqual(
      ops.map((o) => o.status),
      [GNTST_okay, GNTST_okay, GNTST_general_error],
    );
    assert.equal(new TextDecoder().decode(b.mem.read(dst * P + 2000, 14)), 'payload from a');
    assert.deepEqual([...b.mem.read(dst * P, 8)], new Array<number>(8).fill(0x5a));
    assert.equal(b.mem.readU8(dst * P + 8), 0xee, 'nothing beyond len');
    assert.ok(
      a.mem.read(src * P, 8).every((x) => x === 0),
      'the readonly source was not written',
    );
    assert.equal(h.dom0.domain.counters.grantCopies - before, 2);
    assert.equal(a.gnttab.queryAccess(srcRef), 0, 'no pins left');
  });

  it('retries each GNTST_eagain op alone, at once and then after msleep(1), msleep(2)…, and gives up with GNTST_bad_page as Linux does', () => {
    const h = makeHost();
    const b = h.guest('b');
    const dst = filledFrame(b, 0);
    const dstRef = b.gnttab.grantAccess(0, dst, false);
    const own = filledFrame(h.dom0, 0x33);
    const op = (offset: number): GnttabCopy => ({
      source: { u: own, domid: DOMID_SELF, offset },
      dest: { u: dstRef, domid: b.domid, offset },
      len: 4,
      flags: GNTCOPY_dest_gref,
    });
    // First: op 1 of the batch is "paged out" in the batch and in its first retry.
    {
      const { xg, calls } = observedDom0(h, (call, ops) => {
        if (call === 1) ops[1]!.status = GNTST_eagain;
        if (call === 2) ops[0]!.status = GNTST_eagain;
      });
      const ops = [op(0), op(4), op(8)];
      const t0 = h.env.now;
      h.run(gnttabBatchCopy(xg, h.dom0.domain.vcpus[0]!, ops, step));
      assert.deepEqual(calls, [3, 1, 1], 'the batch, then the eagain op alone, twice');
      assert.deepEqual(
        ops.map((o) => o.status),
        [GNTST_okay, GNTST_okay, GNTST_okay],
      );
      // The first retry is immediate; only its eagain answer sleeps (1 step) before the second.
      assert.ok(h.env.now - t0 >= step && h.env.now - t0 < 2 * step, `slept one step: ${h.env.now - t0} ns`);
      assert.deepEqual([...b.mem.read(dst * P, 12)], new Array<number>(12).fill(0x33));
    }
    // Then: an op that stays eagain is retried until the sleep reaches MAX_DELAY (256).
    {
      const { xg, calls } = observedDom0(h, (_call, ops) => {
        ops[0]!.status = GNTST_eagain;
      });
      const ops = [op(0)];
      const t0 = h.env.now;
      h.run(gnttabBatchCopy(xg, h.dom0.domain.vcpus[0]!, ops, step));
      assert.equal(ops[0]!.status, GNTST_bad_page);
      assert.equal(calls.length, 1 + 255, 'the batch and 255 retries (delays 1…255)');
      assert.ok(h.env.now - t0 >= ((255 * 256) / 2) * step, 'slept 1 + 2 + … + 255 steps');
    }
  });
});
