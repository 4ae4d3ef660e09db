import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US, type ProcessGenerator } from '../sim/index.js';
import { __HYPERVISOR_sched_op, SCHEDOP_yield } from './abi/index.js';
import type { XenGuest } from './guest/xen-guest.js';
import { makeHost, profile, twoLevelProfile, type TestHost } from './test-fixture.js';

// Xen re-checks evtchn_upcall_pending on every entry to the guest (PV test_all_events, HVM
// vmx_intr_assist), not only on its 0→1 edge: an upcall held back by evtchn_upcall_mask is
// taken on the first entry after the guest clears the mask.
for (const [abi, p] of [
  ['FIFO', profile],
  ['2-level', twoLevelProfile],
] as const) {
  describe(`evtchn_upcall_pending re-checked on VM entry (${abi} guests)`, () => {
    function setup(): { h: TestHost; a: XenGuest; g: XenGuest; pa: number; got: number[] } {
      const h = makeHost({ profile: p, pcpus: 3, dom0: { pinning: [2] } });
      const a = h.guest('a', { pinning: [0] });
      const g = h.guest('pv', { kind: 'pv', pinning: [1] });
      const got: number[] = [];
      const pa = h.run(a.evtchn.allocUnbound(a.domain.vcpus[0]!, g.domid));
      h.run(g.evtchn.bindInterdomain(g.domain.vcpus[0]!, a.domid, pa, () => void got.push(h.env.now)));
      h.env.run({ until: h.env.now + 1 * MS });
      got.length = 0;
      // The guest masks event delivery (local_irq_disable on PV), then an event comes.
      g.domain.sharedInfo.setUpcallMask(0, true);
      h.run(a.evtchn.notify(a.domain.vcpus[0]!, pa));
      h.env.run({ until: h.env.now + 1 * MS });
      assert.deepEqual(got, [], 'masked: no callback');
      assert.ok(g.domain.sharedInfo.upcallPending(0));
      return { h, a, g, pa, got };
    }

    it('taken at the return of the next hypercall after the guest unmasks', () => {
      const { h, g, got } = setup();
      const v = g.domain.vcpus[0]!;
      let back = -1;
      h.run(
        (function* (): ProcessGenerator<void> {
          yield v.exec(5 * US, 'kernel');
          g.domain.sharedInfo.setUpcallMask(0, false); // cleared in memory: no edge, no kick
          yield v.exec(5 * US, 'kernel');
          assert.deepEqual(got, [], 'not yet: nothing entered the guest');
          yield* h.hv.hypercall(v, { nr: __HYPERVISOR_sched_op, cmd: SCHEDOP_yield });
          back = h.env.now;
        })(),
      );
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(got.length, 1);
      assert.ok(got[0]! >= back - 1 * US, 'on the way back from the hypercall');
    });

    it('taken when the scheduler next switches the vCPU in', () => {
      const { h, g, got } = setup();
      const v = g.domain.vcpus[0]!;
      assert.equal(v.runstate, 'blocked');
      g.domain.sharedInfo.setUpcallMask(0, false);
      h.env.run({ until: h.env.now + 1 * MS });
      assert.deepEqual(got, [], 'blocked and not kicked: nothing yet');
      const t = h.env.now;
      v.exec(1 * US, 'kernel'); // some work wakes it: Xen switches it in
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(got.length, 1);
      assert.ok(got[0]! - t < 50 * US, `taken ${got[0]! - t} ns after the wake`);
    });
  });
}
