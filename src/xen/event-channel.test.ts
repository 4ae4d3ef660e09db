import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US, type ProcessGenerator } from '../sim/index.js';
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
  ESRCH,
  EVTCHN_2L_NR_CHANNELS,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  NR_VIRQS,
  VIRQ_DOM_EXC,
  VIRQ_TIMER,
} from './abi/index.js';
import type { EvtchnStatus } from './event-channel.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { HypercallArgs } from './hypercall.js';
import { makeHost, profile, twoLevelProfile, type TestHost } from './test-fixture.js';
import { TP_SCHED_WAKE, TP_UPCALL } from './trace-points.js';

const EV = __HYPERVISOR_event_channel_op;

function hc(h: TestHost, g: XenGuest, args: HypercallArgs): number {
  return h.run(h.hv.hypercall(g.domain.vcpus[0]!, args));
}
function alloc(h: TestHost, g: XenGuest, remote: number, dom = DOMID_SELF): number {
  const arg: { dom: number; remote_dom: number; port?: number } = { dom, remote_dom: remote };
  const rc = hc(h, g, { nr: EV, cmd: EVTCHNOP_alloc_unbound, arg });
  return rc < 0 ? rc : arg.port!;
}
function bind(h: TestHost, g: XenGuest, remoteDom: number, remotePort: number): number {
  const arg: { remote_dom: number; remote_port: number; local_port?: number } = { remote_dom: remoteDom, remote_port: remotePort };
  const rc = hc(h, g, { nr: EV, cmd: EVTCHNOP_bind_interdomain, arg });
  return rc < 0 ? rc : arg.local_port!;
}
function status(h: TestHost, g: XenGuest, port: number, dom = DOMID_SELF): EvtchnStatus & { rc: number } {
  const arg: EvtchnStatus = { dom, port };
  const rc = hc(h, g, { nr: EV, cmd: EVTCHNOP_status, arg });
  return { ...arg, rc };
}
const send = (h: TestHost, g: XenGuest, port: number): number => hc(h, g, { nr: EV, cmd: EVTCHNOP_send, arg: { port } });
const close = (h: TestHost, g: XenGuest, port: number): number => hc(h, g, { nr: EV, cmd: EVTCHNOP_close, arg: { port } });

describe('event channels: operations', () => {
  it('allocates the lowest free port; port 0 is reserved', () => {
    const h = makeHost();
    const a = h.guest('a');
    assert.deepEqual([alloc(h, a, 0), alloc(h, a, 0), alloc(h, a, 0)], [1, 2, 3]);
    assert.equal(close(h, a, 2), 0);
    assert.equal(alloc(h, a, 0), 2);
    assert.equal(close(h, a, 0), -EINVAL, 'port 0 is reserved');
    assert.equal(status(h, a, 0).status, EVTCHNSTAT_closed);
    assert.equal(close(h, a, 2), 0);
    assert.equal(close(h, a, 2), -EINVAL, 'closing a free port');
    assert.equal(status(h, a, 5000).rc, -EINVAL);
  });

  it('binds interdomain to a port unbound for the caller only (-EINVAL otherwise); both ends show interdomain', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const c = h.guest('c');
    const pa = alloc(h, a, b.domid);
    assert.deepEqual([status(h, a, pa).status, status(h, a, pa).u?.dom], [EVTCHNSTAT_unbound, b.domid]);
    assert.equal(bind(h, c, a.domid, pa), -EINVAL, 'unbound for b, not c');
    assert.equal(bind(h, b, a.domid, 999), -EINVAL, 'no such port');
    assert.equal(bind(h, b, 77, pa), -ESRCH, 'no such domain');
    const pb = bind(h, b, a.domid, pa);
    assert.ok(pb > 0);
    assert.equal(bind(h, b, a.domid, pa), -EINVAL, 'already bound');
    const sa = status(h, a, pa);
    const sb = status(h, b, pb);
    assert.deepEqual([sa.status, sa.u?.dom, sa.u?.port], [EVTCHNSTAT_interdomain, b.domid, pb]);
    assert.deepEqual([sb.status, sb.u?.dom, sb.u?.port], [EVTCHNSTAT_interdomain, a.domid, pa]);
    assert.equal(status(h, c, pa, a.domid).rc, -EPERM, 'status of another domain needs privilege');
    assert.equal(status(h, h.dom0, pa, a.domid).status, EVTCHNSTAT_interdomain);
  });

  it('marks the new local port pending at bind (notifications sent before the bind are not lost)', () => {
    const h = makeHost({ profile: twoLevelProfile }); // Xen's 2-level bitmaps;
    const a = h.guest('a');
    const b = h.guest('b');
    const pa = alloc(h, a, b.domid);
    assert.equal(send(h, a, pa), 0, 'send on an unbound port is silently dropped');
    assert.equal(a.domain.counters.notifyDropped, 1);
    const pb = bind(h, b, a.domid, pa);
    assert.ok(b.domain.sharedInfo.isPending(pb));
    assert.ok(b.domain.sharedInfo.isMasked(pb), 'the guest kernel keeps unbound ports masked');
  });

  it('send: interdomain sets the peer pending; free, reserved and VIRQ ports are -EINVAL', () => {
    const h = makeHost({ profile: twoLevelProfile }); // Xen's 2-level bitmaps;
    const a = h.guest('a');
    const b = h.guest('b');
    const pa = alloc(h, a, b.domid);
    const pb = bind(h, b, a.domid, pa);
    b.domain.sharedInfo.clearPending(pb);
    assert.equal(send(h, a, pa), 0);
    assert.ok(b.domain.sharedInfo.isPending(pb));
    assert.equal(a.domain.counters.notifySent, 1);
    assert.equal(send(h, a, 0), -EINVAL);
    assert.equal(send(h, a, 40), -EINVAL);
    const arg: { virq: number; vcpu: number; port?: number } = { virq: VIRQ_TIMER, vcpu: 0 };
    assert.equal(hc(h, a, { nr: EV, cmd: EVTCHNOP_bind_virq, arg }), 0);
    assert.equal(send(h, a, arg.port!), -EINVAL);
  });

  it('close returns the interdomain peer to unbound, awaiting the closer, who can bind again', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const pa = alloc(h, a, b.domid);
    const pb = bind(h, b, a.domid, pa);
    assert.equal(close(h, b, pb), 0);
    const sa = status(h, a, pa);
    assert.deepEqual([sa.status, sa.u?.dom], [EVTCHNSTAT_unbound, b.domid]);
    assert.equal(status(h, b, pb).status, EVTCHNSTAT_closed);
    assert.equal(send(h, a, pa), 0, 'now dropped');
    assert.equal(a.domain.counters.notifyDropped, 1);
    assert.ok(bind(h, b, a.domid, pa) > 0);
  });

  it('alloc_unbound: -ESRCH for no domain, -EPERM in another domain for the unprivileged; Dom0 may', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    assert.equal(alloc(h, a, b.domid, 99), -ESRCH);
    assert.equal(alloc(h, a, b.domid, b.domid), -EPERM);
    const p = alloc(h, h.dom0, a.domid, b.domid);
    assert.ok(p > 0);
    assert.deepEqual([status(h, b, p).status, status(h, b, p).u?.dom], [EVTCHNSTAT_unbound, a.domid]);
  });

  it('-ENOSPC past the domain max_evtchn_port: 1023 for a guest by default (libxl), 4095 (the 2-level ABI) at most', () => {
    const h = makeHost();
    const fill = (g: XenGuest): number => {
      // Xen-side calls, to avoid thousands of simulated hypercalls.
      let last = 0;
      for (;;) {
        const arg: { dom: number; remote_dom: number; port?: number } = { dom: DOMID_SELF, remote_dom: 0 };
        const rc = h.hv.evtchn.allocUnbound(g.domain, arg);
        if (rc !== 0) {
          assert.equal(rc, -ENOSPC);
          return last;
        }
        last = arg.port!;
      }
    };
    assert.equal(fill(h.guest('a')), 1023);
    const big = h.guest('big', { maxEventChannels: EVTCHN_2L_NR_CHANNELS - 1 });
    assert.equal(fill(big), EVTCHN_2L_NR_CHANNELS - 1);
    assert.equal(alloc(h, big, 0), -ENOSPC);
    assert.throws(() => h.guest('huge', { maxEventChannels: EVTCHN_2L_NR_CHANNELS }), /maxEventChannels 4096 must be/);
  });

  it("EVTCHNOP_status checks the port before the caller's right to look (evtchn_status)", () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    assert.equal(status(h, a, 5000, b.domid).rc, -EINVAL);
    assert.equal(status(h, a, 0, b.domid).rc, -EPERM);
  });

  it('bind_virq: -EINVAL for a bad VIRQ or a global one on vCPU ≠ 0, -ENOENT for a bad vCPU, -EEXIST when bound', () => {
    const h = makeHost();
    const a = h.guest('a', { vcpus: 2 });
    const virq = (virq: number, vcpu: number): number => {
      const arg: { virq: number; vcpu: number; port?: number } = { virq, vcpu };
      const rc = hc(h, a, { nr: EV, cmd: EVTCHNOP_bind_virq, arg });
      return rc < 0 ? rc : arg.port!;
    };
    assert.equal(virq(NR_VIRQS, 0), -EINVAL);
    assert.equal(virq(VIRQ_DOM_EXC, 1), -EINVAL);
    assert.equal(virq(VIRQ_TIMER, 2), -ENOENT);
    const p = virq(VIRQ_TIMER, 1);
    assert.ok(p > 0);
    assert.equal(virq(VIRQ_TIMER, 1), -EEXIST);
    assert.ok(virq(VIRQ_TIMER, 0) > 0, 'per-vCPU VIRQ: one per vCPU');
    const st = status(h, a, p);
    assert.deepEqual([st.status, st.u?.virq, st.vcpu], [EVTCHNSTAT_virq, VIRQ_TIMER, 1]);
    assert.equal(hc(h, a, { nr: EV, cmd: EVTCHNOP_bind_vcpu, arg: { port: p, vcpu: 0 } }), -EINVAL, 'a per-vCPU VIRQ cannot move');
    assert.equal(close(h, a, p), 0);
    assert.ok(virq(VIRQ_TIMER, 1) > 0, 'bindable again after close');
  });

  it('a guest cannot send on, close or rebind a Xen-attached port', () => {
    const h = makeHost();
    const a = h.guest('a');
    const p = h.hv.evtchn.allocXenPort(a.domain, 0, 0, () => undefined);
    assert.equal(send(h, a, p), -EINVAL);
    assert.equal(close(h, a, p), -EINVAL);
    assert.equal(hc(h, a, { nr: EV, cmd: EVTCHNOP_bind_vcpu, arg: { port: p, vcpu: 0 } }), -EINVAL);
    assert.equal(status(h, a, p).status, EVTCHNSTAT_unbound);
  });

  it('destroying a domain closes its ports: peers return to unbound for the dead domain; Dom0 gets VIRQ_DOM_EXC', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const pa = alloc(h, a, b.domid);
    bind(h, b, a.domid, pa);
    let exc = 0;
    h.run(h.dom0.evtchn.bindVirq(h.dom0.domain.vcpus[0]!, VIRQ_DOM_EXC, 0, () => void exc++));
    h.hv.destroyDomain(b.domain);
    h.env.run({ until: h.env.now + 1 * MS });
    const sa = status(h, a, pa);
    assert.deepEqual([sa.status, sa.u?.dom], [EVTCHNSTAT_unbound, b.domid]);
    assert.equal(exc, 1);
    assert.equal(bind(h, a, b.domid, 1), -ESRCH);
  });
});

for (const [abi, abiProfile] of [
  ['FIFO', profile],
  ['2-level', twoLevelProfile],
] as const) {
  describe(`event channels: delivery (${abi} guests)`, () => {
    /** a (sender) and b (receiver) with a bound channel and a handler in b that records its time. */
    function pair(opts: { pin?: boolean; handlerWork?: number } = {}): {
      h: TestHost;
      a: XenGuest;
      b: XenGuest;
      pa: number;
      pb: number;
      got: number[];
    } {
      const h = makeHost({ pcpus: 3, dom0: { pinning: [2] }, profile: abiProfile });
      const a = h.guest('a', opts.pin === false ? {} : { pinning: [0] });
      const b = h.guest('b', opts.pin === false ? {} : { pinning: [1] });
      const got: number[] = [];
      const pa = h.run(a.evtchn.allocUnbound(a.domain.vcpus[0]!, b.domid));
      const bv = b.domain.vcpus[0]!;
      const pb = h.run(
        b.evtchn.bindInterdomain(bv, a.domid, pa, function* (_port, v): ProcessGenerator<void> {
          got.push(h.env.now);
          if (opts.handlerWork !== undefined) yield v.exec(opts.handlerWork, 'irq');
        }),
      );
      h.env.run({ until: h.env.now + 1 * MS });
      got.length = 0; // the bind-time pending event was delivered on unmask
      return { h, a, b, pa, pb, got };
    }

    it('the bind-time pending event reaches the handler when it is installed and the port unmasked', () => {
      const h = makeHost({ profile: abiProfile });
      const a = h.guest('a');
      const b = h.guest('b');
      const pa = h.run(a.evtchn.allocUnbound(a.domain.vcpus[0]!, b.domid));
      let calls = 0;
      h.run(b.evtchn.bindInterdomain(b.domain.vcpus[0]!, a.domid, pa, () => void calls++));
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(calls, 1);
      assert.equal(b.domain.counters.hypercalls.get('event_channel_op.unmask'), 1, 'unmask by hypercall, as an event was pending');
    });

    it('a notification wakes the blocked receiver through the scheduler, BOOSTed, and runs its handler on its vCPU', () => {
      const { h, a, b, pa, got } = pair();
      const wakes: { vcpu: string; boosted: boolean; t: number }[] = [];
      h.env.trace.on(TP_SCHED_WAKE, (t, p) => wakes.push({ vcpu: p.vcpu, boosted: p.boosted, t }));
      const upcalls: string[] = [];
      h.env.trace.on(TP_UPCALL, (_t, p) => upcalls.push(`${p.vcpu} ${p.vector}`));
      const bv = b.domain.vcpus[0]!;
      assert.equal(bv.runstate, 'blocked');
      const av = a.domain.vcpus[0]!;
      let sentAt = -1;
      h.run(
        (function* (): ProcessGenerator<void> {
          yield av.exec(10 * US, 'kernel');
          sentAt = h.env.now;
          yield* a.evtchn.notify(av, pa);
        })(),
      );
      h.env.run({ until: h.env.now + 1 * MS });
      const w = wakes.find((x) => x.vcpu === bv.name)!;
      assert.ok(w.boosted, 'woken with BOOST');
      assert.equal(got.length, 1);
      assert.deepEqual(upcalls, [`${bv.name} 243`]);
      const c = h.hv.costs;
      // a's exit and send handler, the IPI, the idle pCPU waking, its scheduling decision and the
      // switch from idle (b's state is still loaded: no vCPU switch), injection + VM entry, upcall, port dispatch.
      const sched = profile.ns('xen.sched.schedule') + profile.ns('xen.sched.idleSwitch');
      // On FIFO: Xen's FIFO set_pending, and the guest's READY xchg plus one consume_one_event.
      assert.equal(b.evtchn.abi, abi === 'FIFO' ? 'fifo' : '2l');
      const abiCost = abi === 'FIFO' ? c.evtchnSendFifo + c.guestFifoUpcall + c.guestFifoConsume : c.evtchnSend + c.guestUpcall;
      const expected = c.exit.vmcall + abiCost + c.ipiLatency + profile.ns('xen.pcpu.idleWake') + sched + c.injectIrq + c.vmentry + c.guestUpcallPort;
      assert.equal(got[0]! - sentAt, expected);
      assert.equal(b.domain.counters.upcalls, 2, 'bind-time event and this one');
    });

    it('an upcall preempts user work running on the receiver (interrupt priority), which finishes later by exactly the delivery cost', () => {
      const { h, a, b, pa, got } = pair({ handlerWork: 20 * US });
      const bv = b.domain.vcpus[0]!;
      const av = a.domain.vcpus[0]!;
      let userStart = -1;
      let userDone = -1;
      h.env.process(
        (function* (): ProcessGenerator<void> {
          yield bv.exec(1, 'kernel');
          userStart = h.env.now;
          yield bv.exec(1 * MS, 'user');
          userDone = h.env.now;
        })(),
      );
      h.env.process(
        (function* (): ProcessGenerator<void> {
          yield h.env.timeout(300 * US);
          yield* a.evtchn.notify(av, pa);
        })(),
      );
      h.env.run({ until: h.env.now + 5 * MS });
      assert.equal(got.length, 1);
      assert.ok(got[0]! > userStart && got[0]! < userDone, 'the handler ran while the user work was in progress');
      const c = h.hv.costs;
      // IPI exit + injection + entry (Xen), upcall + port dispatch + the handler's 20 µs (guest irq).
      const upcall = abi === 'FIFO' ? c.guestFifoUpcall + c.guestFifoConsume : c.guestUpcall;
      const delivery = c.exit.extint + c.injectIrq + c.vmentry + upcall + c.guestUpcallPort + 20 * US;
      assert.equal(userDone - userStart, 1 * MS + delivery);
      assert.equal(b.domain.counters.exits.extint, 1);
    });

    it('masking holds events back; unmask re-delivers one that arrived while masked', () => {
      const { h, a, b, pa, pb, got } = pair();
      const av = a.domain.vcpus[0]!;
      const bv = b.domain.vcpus[0]!;
      b.evtchn.mask(pb);
      h.run(a.evtchn.notify(av, pa));
      h.run(a.evtchn.notify(av, pa));
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(got.length, 0, 'masked: no upcall');
      assert.ok(b.evtchn.isPending(pb));
      // Clearing the mask bit by hand would not deliver it; EVTCHNOP_unmask does.
      h.run(b.evtchn.unmask(bv, pb));
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(got.length, 1, 'the two sends were one pending event');
    });

    it('Dom0 (PV) takes events through its registered callback, with no VM exits', () => {
      const h = makeHost({ pcpus: 2, profile: abiProfile });
      const a = h.guest('a');
      const dv = h.dom0.domain.vcpus[0]!;
      const pd = h.run(h.dom0.evtchn.allocUnbound(dv, a.domid));
      let hit = 0;
      h.run(h.dom0.evtchn.bindHandler(dv, pd, () => void hit++));
      const pa = h.run(a.evtchn.bindInterdomain(a.domain.vcpus[0]!, 0, pd, () => undefined));
      h.env.run({ until: h.env.now + 1 * MS });
      h.run(a.evtchn.notify(a.domain.vcpus[0]!, pa));
      h.env.run({ until: h.env.now + 1 * MS });
      assert.equal(hit, 1);
      assert.equal(h.dom0.domain.counters.exitTotal, 0);
      assert.ok(h.dom0.domain.counters.pvTraps > 0);
      assert.equal(h.dom0.domain.counters.upcalls, 1);
    });

    it('a LAPIC vector raised while a handler runs is taken after it through an interrupt-window exit, then EOI exits', () => {
      const { h, a, b, pa } = pair({ handlerWork: 50 * US });
      const bv = b.domain.vcpus[0]!;
      const taken: number[] = [];
      b.domain.idt.set(0x40, function* (v, vector): ProcessGenerator<void> {
        taken.push(vector!);
        yield v.exec(5 * US, 'irq');
      });
      h.run(a.evtchn.notify(a.domain.vcpus[0]!, pa));
      h.env.process(
        (function* (): ProcessGenerator<void> {
          yield h.env.timeout(20 * US);
          h.hv.intr.raiseVector(bv, 0x40, null);
        })(),
      );
      h.env.run({ until: h.env.now + 1 * MS });
      assert.deepEqual(taken, [0x40]);
      assert.equal(b.domain.counters.exits.intwin, 1);
      assert.equal(b.domain.counters.exits.eoi, 1);
      assert.equal(b.domain.counters.vectorsInjected, 1);
    });

    it('unmask (hypercall) and bind_vcpu reach Xen with their errors', () => {
      const { h, b } = pair();
      assert.equal(hc(h, b, { nr: EV, cmd: EVTCHNOP_unmask, arg: { port: 5000 } }), -EINVAL);
      assert.equal(hc(h, b, { nr: EV, cmd: EVTCHNOP_bind_vcpu, arg: { port: 1, vcpu: 3 } }), -ENOENT);
    });
  });
}
