import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MS, type ProcessGenerator } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  ENOSYS,
  EVTCHN_FIFO_CONTROL_BLOCK,
  EVTCHN_FIFO_MASKED,
  EVTCHN_FIFO_PRIORITY_DEFAULT,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_vcpu,
} from '../abi/index.js';
import { makeHost, profile, twoLevelProfile, type TestHost } from '../test-fixture.js';
import type { XenGuest } from './xen-guest.js';

// The guest kernel's side of the FIFO event-channel ABI (Linux's events_fifo.c), chosen by the
// profile's linux.version and falling back to 2-level where Xen has no FIFO ABI.
const P = 4096;

/** Guests a (sender) and b (receiver, `vcpus` vCPUs) with `n` channels a→b whose handler in b logs the port. */
function channels(
  h: TestHost,
  n: number,
  vcpus = 1,
  maxEventChannels = 1023,
): { a: XenGuest; b: XenGuest; pa: number[]; pb: number[]; log: number[]; sendNow: (...idx: number[]) => void } {
  const a = h.guest('a');
  const b = h.guest('b', { vcpus, maxEventChannels });
  const av = a.domain.vcpus[0]!;
  const bv = b.domain.vcpus[0]!;
  const log: number[] = [];
  const pa: number[] = [];
  const pb: number[] = [];
  for (let i = 0; i < n; i++) {
    pa.push(h.run(a.evtchn.allocUnbound(av, b.domid)));
    pb.push(h.run(b.evtchn.bindInterdomain(bv, a.domid, pa[i]!, (port) => void log.push(port))));
  }
  h.env.run({ until: h.env.now + 1 * MS });
  log.length = 0; // the bind-time events
  // Xen's send handler for each, at one instant: every event is pending before b's upcall runs.
  const sendNow = (...idx: number[]): void => {
    for (const i of idx) assert.equal(h.hv.evtchn.send(av, pa[i]!), 0);
  };
  return { a, b, pa, pb, log, sendNow };
}

describe('guest FIFO event channels (Linux >= 3.14 events_fifo.c)', () => {
  it('a default-profile guest (Linux 3.18 on Xen 4.5) takes the FIFO ABI: a control block per vCPU, array pages as ports are bound', () => {
    const h = makeHost();
    const { b, pb, log, sendNow } = channels(h, 2, 2, 2047); // xl.cfg max_event_channels past one page
    assert.equal(h.hv.linux.version, '3.18.0');
    assert.equal(b.evtchn.abi, 'fifo');
    assert.equal(b.evtchn.fifoInitError, 0);
    assert.equal(b.domain.counters.hypercalls.get('event_channel_op.init_control'), 2, 'one per vCPU');
    const fifo = b.evtchn.fifo!;
    const xen = b.domain.evtchnFifo!;
    assert.notEqual(xen, null, 'Xen switched the domain to FIFO');
    for (const v of [0, 1]) assert.ok(xen.mappedGfns.has(fifo.controlBlock(v)), `vCPU ${v}'s control block is registered`);
    assert.notEqual(fifo.controlBlock(0), fifo.controlBlock(1));
    assert.equal(fifo.eventArray.length, 1, 'one page so far (ports < 1024)');
    assert.equal(xen.numEvtchns, 1024);
    // Words Xen was given come masked from the guest; a bound, handled port is unmasked.
    const MASK = (1 << EVTCHN_FIFO_MASKED) >>> 0;
    assert.equal(xen.readWord(1000), MASK, 'a port of the page not bound is masked (init_array_page)');
    assert.equal(xen.readWord(pb[0]!)! & MASK, 0, 'a bound, handled port is unmasked');
    sendNow(1, 0);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [pb[1], pb[0]], 'one priority is one FIFO: in the order they were raised (2-level would scan by port)');
    assert.equal(b.domain.counters.hypercalls.get('event_channel_op.expand_array'), 1);

    // A port past the first page: the guest's own ports push b's next local port above 1023.
    const bv = b.domain.vcpus[0]!;
    const fill = { dom: DOMID_SELF, remote_dom: 0, port: 0 };
    while (fill.port < 1100)
      assert.equal(h.run(h.hv.hypercall(bv, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_alloc_unbound, arg: fill })), 0);
    const a = h.guest('a2');
    const pa = h.run(a.evtchn.allocUnbound(a.domain.vcpus[0]!, b.domid));
    const far = h.run(b.evtchn.bindInterdomain(bv, a.domid, pa, (port) => void log.push(port)));
    assert.ok(far > 1100, `bound as port ${far}`);
    assert.equal(fifo.eventArray.length, 2, 'expand_array added the second page');
    assert.equal(xen.numEvtchns, 2048);
    h.env.run({ until: h.env.now + 1 * MS });
    log.length = 0;
    assert.equal(h.run(a.evtchn.notify(a.domain.vcpus[0]!, pa)), 0);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [far], 'an event on the second page is delivered');
  });

  it("an event bound to vCPU 1 (EVTCHNOP_bind_vcpu) is linked on vCPU 1's control block and handled there", () => {
    const h = makeHost({ pcpus: 3 });
    const a = h.guest('a');
    const b = h.guest('b', { vcpus: 2 });
    const av = a.domain.vcpus[0]!;
    const b0 = b.domain.vcpus[0]!;
    const on: string[] = [];
    const pa = h.run(a.evtchn.allocUnbound(av, b.domid));
    const pb = h.run(b.evtchn.bindInterdomain(b0, a.domid, pa, (_p, v) => void on.push(v.name)));
    h.env.run({ until: h.env.now + 1 * MS });
    on.length = 0;
    const arg = { port: pb, vcpu: 1 };
    assert.equal(h.run(h.hv.hypercall(b0, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_bind_vcpu, arg })), 0);
    const cb = (v: number, off: number): number => b.mem.readU32(b.evtchn.fifo!.controlBlock(v) * P + off);
    // Xen's send at this instant; the upcall runs later, so the queues can be read first.
    assert.equal(h.hv.evtchn.send(av, pa), 0);
    assert.equal(cb(1, EVTCHN_FIFO_CONTROL_BLOCK.head + 4 * EVTCHN_FIFO_PRIORITY_DEFAULT), pb, "HEAD of vCPU 1's default queue");
    assert.equal(cb(0, EVTCHN_FIFO_CONTROL_BLOCK.ready), 0, "vCPU 0's control block untouched");
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(on, [b.domain.vcpus[1]!.name]);
    assert.equal(cb(1, EVTCHN_FIFO_CONTROL_BLOCK.ready), 0, 'consumed');
  });

  it('EVTCHNOP_set_priority: a higher-priority port pending at the same time is handled first', () => {
    const h = makeHost();
    const { b, pb, log, sendNow } = channels(h, 3);
    const bv = b.domain.vcpus[0]!;
    sendNow(0, 1, 2);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [pb[0], pb[1], pb[2]], 'all at the default priority: raised order');
    log.length = 0;
    assert.equal(h.run(b.evtchn.setPriority(bv, pb[2]!, 2)), 0);
    assert.equal(h.run(b.evtchn.setPriority(bv, pb[0]!, EVTCHN_FIFO_PRIORITY_DEFAULT + 3)), 0);
    sendNow(0, 1, 2);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [pb[2], pb[1], pb[0]], 'priority 2 before the default 7 before 10');
  });

  it('a pentium-d-xen3.2 guest (Linux 2.6.18) has only the 2-level ABI: no init_control is tried', () => {
    const h = makeHost({ profile: Profile.load('pentium-d-xen3.2') });
    const { b, pb, log, sendNow } = channels(h, 3);
    assert.equal(h.hv.linux.fifoEvents, false);
    assert.equal(b.evtchn.abi, '2l');
    assert.equal(b.evtchn.fifo, null);
    assert.equal(b.domain.evtchnFifo, null);
    assert.equal(b.domain.counters.hypercalls.get('event_channel_op.init_control'), undefined);
    sendNow(2, 0, 1);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [pb[0], pb[1], pb[2]], '2-level: scanned in port order whatever the raise order');
    assert.equal(h.run(b.evtchn.setPriority(b.domain.vcpus[0]!, pb[0]!, 2)), -ENOSYS, 'no priorities on 2-level');
  });

  it('a Linux 3.18 guest on a Xen without the FIFO ABI (4.3) falls back to 2-level when init_control fails', () => {
    const h = makeHost({ profile: profile.withXen('4.3.0') });
    const { b, pb, log, sendNow } = channels(h, 2);
    assert.equal(h.hv.linux.fifoEvents, true, 'the kernel tries FIFO');
    assert.equal(b.domain.counters.hypercalls.get('event_channel_op.init_control'), 1, 'tried once, for the boot vCPU');
    assert.equal(b.evtchn.fifoInitError, -ENOSYS);
    assert.equal(b.evtchn.abi, '2l');
    assert.equal(b.domain.evtchnFifo, null);
    // The page it allocated for the control block went back: the next RAM frame is the top one again.
    assert.equal(b.frames.alloc(), b.mem.ramGfnAt(b.mem.ramPages - 1));
    sendNow(1, 0);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.deepEqual(log, [pb[0], pb[1]], 'delivered, in port order');
  });

  it('two-level kernels are unchanged: a Linux 3.13 guest on Xen 4.5 never tries FIFO', () => {
    const h = makeHost({ profile: twoLevelProfile });
    const { b } = channels(h, 1);
    assert.equal(b.evtchn.abi, '2l');
    assert.equal(b.domain.counters.hypercalls.get('event_channel_op.init_control'), undefined);
  });

  it('a guest scribbling its own event array and control block loses only its own events; others get every one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.nat(P / 4 - 1), fc.nat(0xffffffff)), { minLength: 1, maxLength: 40 }),
        fc.nat(5),
        (writes, sends) => {
          const h = makeHost();
          const { a, b, pa: toB } = channels(h, 2);
          const c = h.guest('c');
          const av = a.domain.vcpus[0]!;
          const pa = h.run(a.evtchn.allocUnbound(av, c.domid));
          let cGot = 0;
          h.run(c.evtchn.bindInterdomain(c.domain.vcpus[0]!, a.domid, pa, () => void cGot++));
          h.env.run({ until: h.env.now + 1 * MS });
          cGot = 0;
          const fifo = b.evtchn.fifo!;
          const cWords = Array.from({ length: 64 }, (_, i) => c.mem.readU32(c.evtchn.fifo!.eventArray[0]! * P + 4 * i));
          for (const [inCb, word, value] of writes) {
            const gfn = inCb ? fifo.controlBlock(0) : fifo.eventArray[0]!;
            const off = inCb ? (4 * word) % (EVTCHN_FIFO_CONTROL_BLOCK.size + 8) : 4 * word;
            b.mem.writeU32(gfn * P + off, value);
          }
          h.run(
            (function* (): ProcessGenerator<void> {
              for (let i = 0; i <= sends; i++) {
                yield* a.evtchn.notify(av, toB[0]!);
                yield* a.evtchn.notify(av, toB[1]!);
                yield* a.evtchn.notify(av, pa);
                yield av.exec(50_000, 'kernel');
              }
            })(),
          );
          h.env.run({ until: h.env.now + 2 * MS });
          assert.equal(cGot, sends + 1, 'c got every event a sent it');
          // c's event words other than its bound ports' are as they were.
          const bound = new Set(c.domain.evtchn.ports());
          for (let i = 0; i < 64; i++) {
            if (bound.has(i)) continue;
            assert.equal(c.mem.readU32(c.evtchn.fifo!.eventArray[0]! * P + 4 * i), cWords[i], `c's word ${i}`);
          }
        },
      ),
      { numRuns: 25, seed: 10 },
    );
  });
});
