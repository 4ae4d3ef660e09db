import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US, type ProcessGenerator } from '../sim/index.js';
import { EINVAL, EVTCHN_FIFO_NR_CHANNELS } from './abi/index.js';
import type { XenGuest } from './guest/xen-guest.js';
import { makeHost, profile, twoLevelProfile, type TestHost } from './test-fixture.js';
import { SCHED_POLL_MAX_PORTS } from './sched-poll.js';

// SCHEDOP_poll (do_poll, evtchn_check_pollers): a vCPU blocked in Xen until a port is pending.
for (const [abi, p] of [
  ['FIFO', profile],
  ['2-level', twoLevelProfile],
] as const) {
  describe(`SCHEDOP_poll (${abi} guests)`, () => {
    /** a → b on two channels; b's ports masked (polled ports are, as PV spinlocks keep theirs). */
    function setup(): { h: TestHost; a: XenGuest; b: XenGuest; pa: number[]; pb: number[]; handled: number[] } {
      const h = makeHost({ profile: p });
      const a = h.guest('a', { pinning: [0] });
      const b = h.guest('b', { pinning: [1] });
      const handled: number[] = [];
      const pa: number[] = [];
      const pb: number[] = [];
      for (let i = 0; i < 2; i++) {
        pa.push(h.run(a.evtchn.allocUnbound(a.domain.vcpus[0]!, b.domid)));
        pb.push(h.run(b.evtchn.bindInterdomain(b.domain.vcpus[0]!, a.domid, pa[i]!, (port) => void handled.push(port))));
      }
      h.env.run({ until: h.env.now + 1 * MS });
      for (const port of pb) b.evtchn.mask(port);
      handled.length = 0;
      assert.equal(b.evtchn.abi, abi === 'FIFO' ? 'fifo' : '2l');
      return { h, a, b, pa, pb, handled };
    }

    /** b polls `ports` (timeout absolute, 0 none) from `at`; a sends on pa[`send`] at `sendAt` (null: never). */
    function pollCase(
      ports: (pb: number[]) => number[],
      opts: { timeout?: number; send?: number; sendAt?: number; pending?: boolean } = {},
    ): { rc: number; start: number; back: number; sentAt: number; hltDuring: number; blockedNs: number; handled: number[]; b: XenGuest } {
      const { h, a, b, pa, pb, handled } = setup();
      const av = a.domain.vcpus[0]!;
      const bv = b.domain.vcpus[0]!;
      if (opts.pending === true) h.hv.evtchn.send(av, pa[0]!);
      const t0 = h.env.now;
      let rc = NaN;
      let start = -1;
      let back = -1;
      let sentAt = -1;
      let hlt0 = 0;
      let blocked0 = 0;
      const timeout = opts.timeout === undefined ? 0 : t0 + opts.timeout;
      h.env.process(
        (function* (): ProcessGenerator<void> {
          yield bv.exec(1 * US, 'kernel');
          start = h.env.now;
          hlt0 = b.domain.counters.exits.hlt;
          blocked0 = bv.runstateNow().blocked;
          rc = yield* b.evtchn.poll(bv, ports(pb), timeout);
          back = h.env.now;
          hlt0 = b.domain.counters.exits.hlt - hlt0;
          blocked0 = bv.runstateNow().blocked - blocked0;
        })(),
      );
      if (opts.send !== undefined) {
        const i = opts.send;
        h.env.process(
          (function* (): ProcessGenerator<void> {
            yield h.env.timeout(opts.sendAt ?? 100 * US);
            yield av.exec(1 * US, 'kernel');
            sentAt = h.env.now;
            yield* a.evtchn.notify(av, pa[i]!);
          })(),
        );
      }
      h.env.run({ until: t0 + 2 * MS });
      // Counted from the call to its return (after it, the idle vCPU HLTs as usual).
      return { rc, start, back, sentAt, hltDuring: hlt0, blockedNs: blocked0, handled, b };
    }

    it('returns at once when a polled port is already pending', () => {
      const r = pollCase((pb) => [pb[1]!, pb[0]!], { pending: true });
      assert.equal(r.rc, 0);
      const c = makeHost({ profile: p }).hv.costs;
      assert.equal(r.back - r.start, c.exit.vmcall + c.simpleOp + c.vmentry, 'no blocking: the hypercall round trip only');
    });

    it('blocks the vCPU in Xen (no HLT) until a send on the polled port, which wakes it; the masked event is not handled', () => {
      const r = pollCase((pb) => [pb[0]!], { send: 0, sendAt: 300 * US });
      assert.equal(r.rc, 0);
      assert.ok(r.sentAt > r.start + 200 * US);
      assert.ok(r.back > r.sentAt && r.back < r.sentAt + 50 * US, `back ${r.back - r.sentAt} ns after the send`);
      assert.equal(r.hltDuring, 0, 'blocked by the poll, not by the idle loop');
      assert.ok(r.blockedNs > 200 * US, 'its runstate was blocked meanwhile');
      assert.deepEqual(r.handled, [], 'masked: no upcall');
      assert.equal(r.b.evtchn.isPending(r.b.domain.evtchn.ports().at(-1)!), false, 'the other port stays clear');
    });

    it('an event on another port does not wake a one-port poller; its timeout does', () => {
      const r = pollCase((pb) => [pb[0]!], { send: 1, sendAt: 100 * US, timeout: 500 * US });
      assert.equal(r.rc, 0);
      assert.ok(r.sentAt > 0);
      assert.ok(r.back - r.start > 400 * US && r.back - r.start < 600 * US, `woke after ${r.back - r.start} ns`);
    });

    it('a poller of several ports is woken by any port of its domain becoming pending', () => {
      const r = pollCase((pb) => [pb[0]!, pb[1]!], { send: 1, sendAt: 100 * US, timeout: 1500 * US });
      assert.ok(r.back > r.sentAt && r.back < r.sentAt + 50 * US);
    });

    it('bad arguments: more than 128 ports or a port past the ABI are -EINVAL, without blocking', () => {
      const tooMany = pollCase(() => new Array<number>(SCHED_POLL_MAX_PORTS + 1).fill(1));
      assert.equal(tooMany.rc, -EINVAL);
      const far = pollCase(() => [EVTCHN_FIFO_NR_CHANNELS]);
      assert.equal(far.rc, -EINVAL);
      assert.ok(far.back - far.start < 5 * US);
    });
  });
}
