import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS } from '../sim/index.js';
import {
  __HYPERVISOR_event_channel_op,
  EINVAL,
  ENOENT,
  ENOSYS,
  EVTCHN_FIFO_CONTROL_BLOCK,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHN_FIFO_LINKED,
  EVTCHN_FIFO_MASKED,
  EVTCHN_FIFO_PENDING,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_set_priority,
  EVTCHNOP_unmask,
} from './abi/index.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { HypercallArgs } from './hypercall.js';
import { filledFrame, makeHost, twoLevelProfile, type TestHost } from './test-fixture.js';
import { TP_NOTIFY } from './trace-points.js';

// The FIFO event-channel ABI (xen/common/event_fifo.c), driven by hypercalls and by reading
// and writing the guest's own control block and event words, as Linux's events_fifo.c does.
const P = 4096;
const PEND = (1 << EVTCHN_FIFO_PENDING) >>> 0;
const MASK = (1 << EVTCHN_FIFO_MASKED) >>> 0;
const LINK = (1 << EVTCHN_FIFO_LINKED) >>> 0;

function hc(h: TestHost, g: XenGuest, args: HypercallArgs): number {
  return h.run(h.hv.hypercall(g.domain.vcpus[0]!, args));
}

/** A FIFO guest's view of its own pages (Linux: the control block and event array it registered). */
class FifoView {
  /** Linux's per-CPU copy of each queue's head (struct evtchn_fifo_queue). */
  private readonly localHead = new Array<number>(16).fill(0);
  constructor(
    readonly g: XenGuest,
    readonly cbGfn: number,
    readonly arrayGfn: number,
  ) {}
  word(port: number): number {
    return this.g.mem.readU32(this.arrayGfn * P + 4 * port);
  }
  setWord(port: number, v: number): void {
    this.g.mem.writeU32(this.arrayGfn * P + 4 * port, v >>> 0);
  }
  get ready(): number {
    return this.g.mem.readU32(this.cbGfn * P + EVTCHN_FIFO_CONTROL_BLOCK.ready);
  }
  head(q: number): number {
    return this.g.mem.readU32(this.cbGfn * P + EVTCHN_FIFO_CONTROL_BLOCK.head + 4 * q);
  }
  /** consume_one_event for queue `q`: unlink the head, return its port if pending and unmasked. */
  consumeOne(q: number, ready: { v: number }): number | null {
    let head = this.localHead[q]!;
    if (head === 0) head = this.head(q);
    const port = head;
    const w = this.word(port);
    // clear_linked: clear LINKED and LINK, take the link.
    this.setWord(port, w & ~(LINK | EVTCHN_FIFO_LINK_MASK));
    const next = w & EVTCHN_FIFO_LINK_MASK;
    if (next === 0) ready.v &= ~(1 << q);
    this.localHead[q] = next;
    const now = this.word(port);
    if ((now & PEND) !== 0 && (now & MASK) === 0) {
      this.setWord(port, now & ~PEND); // the handler's ack clears PENDING
      return port;
    }
    return null;
  }
  /** evtchn_fifo_handle_events: READY swapped to 0, queues drained highest priority first. */
  drain(): number[] {
    const out: number[] = [];
    const xchg = (): number => {
      const r = this.ready;
      this.g.mem.writeU32(this.cbGfn * P + EVTCHN_FIFO_CONTROL_BLOCK.ready, 0);
      return r;
    };
    const ready = { v: xchg() };
    while (ready.v !== 0) {
      let q = 0;
      while ((ready.v & (1 << q)) === 0) q++;
      const p = this.consumeOne(q, ready);
      if (p !== null) out.push(p);
      ready.v |= xchg();
    }
    return out;
  }
}

/** Guests a (sender) and b; b switched to FIFO with `ports` channels from a bound to it. */
function setup(nports: number, expand = true): { h: TestHost; a: XenGuest; b: XenGuest; fifo: FifoView; send: (i: number) => void; pb: number[] } {
  const h = makeHost({ profile: twoLevelProfile });
  const a = h.guest('a');
  const b = h.guest('b');
  const av = a.domain.vcpus[0]!;
  const bv = b.domain.vcpus[0]!;
  const pa: number[] = [];
  const pb: number[] = [];
  for (let i = 0; i < nports; i++) {
    pa.push(h.run(a.evtchn.allocUnbound(av, b.domid)));
    pb.push(h.run(b.evtchn.bindInterdomain(bv, a.domid, pa[i]!, () => undefined)));
  }
  h.env.run({ until: h.env.now + 1 * MS });
  const cbGfn = filledFrame(b, 0);
  const arrayGfn = filledFrame(b, 0);
  const init = { control_gfn: cbGfn, offset: 0, vcpu: 0 };
  assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: init }), 0);
  if (expand) assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_expand_array, arg: { array_gfn: arrayGfn } }), 0);
  const fifo = new FifoView(b, cbGfn, arrayGfn);
  fifo.drain(); // events of the bind, if any
  const send = (i: number): void => {
    assert.equal(h.run(a.evtchn.notify(av, pa[i]!)), 0);
  };
  return { h, a, b, fifo, send, pb };
}

function setPrio(h: TestHost, g: XenGuest, port: number, priority: number): number {
  return hc(h, g, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_set_priority, arg: { port, priority } });
}

describe('FIFO event channels: control and expansion', () => {
  it('init_control checks vCPU, alignment and page boundary, once per vCPU; expand_array and set_priority need it', () => {
    const h = makeHost({ profile: twoLevelProfile });
    const b = h.guest('b');
    const gfn = filledFrame(b, 0);
    const init = (offset: number, vcpu = 0): number =>
      hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: { control_gfn: gfn, offset, vcpu } });
    assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_expand_array, arg: { array_gfn: gfn } }), -ENOSYS);
    assert.equal(init(0, 5), -ENOENT);
    assert.equal(init(P - EVTCHN_FIFO_CONTROL_BLOCK.size + 8), -EINVAL, 'crosses the page');
    assert.equal(init(4), -EINVAL, 'not 8-byte aligned');
    assert.equal(
      hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: { control_gfn: 1 << 30, offset: 0, vcpu: 0 } }),
      -EINVAL,
      'not its RAM',
    );
    assert.equal(b.domain.evtchnFifo, null, 'still 2-level after failures');
    const a = { control_gfn: gfn, offset: P - EVTCHN_FIFO_CONTROL_BLOCK.size, vcpu: 0, link_bits: 0 };
    assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: a }), 0);
    assert.equal(a.link_bits, 17);
    assert.equal(init(0), -EINVAL, 'already initialised');
    assert.equal(setPrio(h, b, 900, 3), -EINVAL, 'no such port');
  });

  it('an event raised before its array page exists is kept and raised when expand_array adds it', () => {
    const { h, b, fifo, send, pb } = setup(1, false);
    send(0);
    assert.equal(b.domain.evtchnFifo!.numEvtchns, 0);
    assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_expand_array, arg: { array_gfn: fifo.arrayGfn } }), 0);
    assert.equal(b.domain.evtchnFifo!.numEvtchns, 1024);
    assert.equal(fifo.head(7), pb[0], 'linked at the default priority');
    assert.equal(fifo.word(pb[0]!) & (PEND | LINK), PEND | LINK);
    assert.equal(fifo.ready, 1 << 7);
    assert.deepEqual(fifo.drain(), [pb[0]]);
  });
});

describe('FIFO event channels by release (88910061ec in 4.4)', () => {
  it('Xen 4.3 has no FIFO ABI: init_control is -ENOSYS and the domain stays 2-level; 4.4 switches', () => {
    for (const [version, rc] of [
      ['4.3.0', -ENOSYS],
      ['4.4.0', 0],
    ] as const) {
      const h = makeHost({ profile: twoLevelProfile.withXen(version) });
      const b = h.guest('b');
      const gfn = filledFrame(b, 0);
      assert.equal(
        hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: { control_gfn: gfn, offset: 0, vcpu: 0 } }),
        rc,
        version,
      );
      assert.equal(b.domain.evtchnFifo !== null, rc === 0);
    }
  });
});

describe('FIFO event channels: priorities and links (evtchn_fifo_set_pending)', () => {
  it('queues by priority, FIFO within one: 0 is drained first', () => {
    const { h, b, fifo, send, pb } = setup(3);
    assert.equal(setPrio(h, b, pb[0]!, 3), 0);
    assert.equal(setPrio(h, b, pb[2]!, 3), 0);
    assert.equal(setPrio(h, b, pb[1]!, 16), -EINVAL);
    send(1);
    send(0);
    send(2);
    assert.equal(fifo.head(3), pb[0]);
    assert.equal(fifo.word(pb[0]!) & EVTCHN_FIFO_LINK_MASK, pb[2], 'the tail linked to the next');
    assert.equal(fifo.head(7), pb[1]);
    assert.equal(fifo.ready, (1 << 3) | (1 << 7));
    assert.deepEqual(fifo.drain(), [pb[0], pb[2], pb[1]]);
  });

  it('a tail the guest has already unlinked is not linked to: HEAD is written and READY raised again', () => {
    const { h, b, fifo, send, pb } = setup(2);
    const outcomes: string[] = [];
    h.env.trace.on(TP_NOTIFY, (_t, n) => {
      if (n.remoteDomid === b.domid) outcomes.push(n.outcome);
    });
    send(0);
    assert.deepEqual(fifo.drain(), [pb[0]], 'the guest consumed it: LINKED cleared');
    send(1);
    assert.equal(fifo.word(pb[0]!) & EVTCHN_FIFO_LINK_MASK, 0, 'no link written into the consumed word');
    assert.equal(fifo.head(7), pb[1]);
    assert.equal(fifo.ready, 1 << 7);
    assert.deepEqual(outcomes, ['kicked', 'kicked'], 'READY went 0→1 both times: the vCPU is marked');
    // While the tail is still linked, the next event is linked to it and nothing is raised.
    send(0);
    assert.equal(fifo.word(pb[1]!) & EVTCHN_FIFO_LINK_MASK, pb[0]);
    assert.equal(outcomes[2], 'pending', 'linked behind the tail: no new mark');
    assert.deepEqual(fifo.drain(), [pb[1], pb[0]]);
  });

  it('an event already pending and linked is not linked twice; a masked one is only marked pending until unmasked', () => {
    const { h, b, fifo, send, pb } = setup(2);
    send(0);
    send(0);
    assert.equal(fifo.word(pb[0]!) & EVTCHN_FIFO_LINK_MASK, 0, 'not linked to itself');
    assert.deepEqual(fifo.drain(), [pb[0]]);
    fifo.setWord(pb[1]!, MASK);
    send(1);
    assert.equal(fifo.word(pb[1]!), (MASK | PEND) >>> 0, 'pending, masked, not linked');
    assert.equal(fifo.ready, 0);
    fifo.setWord(pb[1]!, fifo.word(pb[1]!) & ~MASK); // Linux clears MASKED, then asks Xen if pending
    assert.equal(hc(h, b, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_unmask, arg: { port: pb[1]! } }), 0);
    assert.equal(fifo.head(7), pb[1]);
    assert.deepEqual(fifo.drain(), [pb[1]]);
  });

  it('a new priority applies to later events: one linked stays on its queue, and the old tail is invalidated when it moves', () => {
    const { h, b, fifo, send, pb } = setup(2);
    send(0);
    assert.equal(setPrio(h, b, pb[0]!, 2), 0);
    assert.equal(fifo.head(7), pb[0], 'still on the old queue');
    assert.deepEqual(fifo.drain(), [pb[0]]);
    send(0);
    assert.equal(fifo.head(2), pb[0], 'the next event uses the new queue');
    send(1);
    // Queue 7's tail was pb[0] and was invalidated: pb[1] starts queue 7 afresh, not linked from pb[0].
    assert.equal(fifo.head(7), pb[1]);
    assert.equal(fifo.word(pb[0]!) & EVTCHN_FIFO_LINK_MASK, 0);
    assert.deepEqual(fifo.drain(), [pb[0], pb[1]]);
  });
});

describe('FIFO event channels: a hostile guest', () => {
  it('garbage in its event array and control block harms only its own events: Xen never throws nor touches other words', () => {
    const { h, a, b, fifo, send, pb } = setup(4);
    // A second FIFO receiver c of the same sender.
    const c = h.guest('c');
    const av = a.domain.vcpus[0]!;
    const cv = c.domain.vcpus[0]!;
    const pac = h.run(a.evtchn.allocUnbound(av, c.domid));
    const pc = h.run(c.evtchn.bindInterdomain(cv, a.domid, pac, () => undefined));
    h.env.run({ until: h.env.now + 1 * MS });
    const cview = new FifoView(c, filledFrame(c, 0), filledFrame(c, 0));
    assert.equal(
      hc(h, c, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg: { control_gfn: cview.cbGfn, offset: 0, vcpu: 0 } }),
      0,
    );
    assert.equal(hc(h, c, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_expand_array, arg: { array_gfn: cview.arrayGfn } }), 0);
    cview.drain();
    const rng = h.env.rng.fork('garbage');
    for (let i = 0; i < 1024; i++) fifo.setWord(i, rng.int(2 ** 32));
    for (let i = 0; i < 18; i++) b.mem.writeU32(fifo.cbGfn * P + 4 * i, rng.int(2 ** 32));
    const before = Array.from({ length: 1024 }, (_, i) => fifo.word(i));
    let got = 0;
    for (let k = 0; k < 50; k++) {
      send(k % 4);
      assert.equal(h.run(a.evtchn.notify(av, pac)), 0);
      const d = cview.drain();
      assert.deepEqual(d, [pc], 'the other receiver gets each event, in order');
      got += d.length;
    }
    assert.equal(got, 50);
    // Xen wrote only the words of b's signalled ports.
    for (let i = 0; i < 1024; i++) if (!pb.includes(i)) assert.equal(fifo.word(i), before[i], `word ${i} untouched`);
    assert.ok(h.hv.domain(b.domid) !== undefined, 'b is alive (its own events may be lost)');
  });
});
