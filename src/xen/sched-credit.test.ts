import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MS, S, SimEnvironment, US, type ProcessGenerator } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { Hypervisor, type HostConfig } from './hypervisor.js';
import type { DomainConfig } from './domain.js';
import { TP_SCHED_SWITCH, TP_SCHED_WAKE } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

const profile = Profile.load('default');
const SWITCH = profile.ns('xen.sched.vcpuSwitch');
const IDLE_WAKE = profile.ns('xen.pcpu.idleWake');
const TSLICE = profile.ns('xen.sched.tslice');
const RATELIMIT = profile.ns('xen.sched.ratelimit');
const SCHED = profile.ns('xen.sched.schedule');
const IDLE_SWITCH = profile.ns('xen.sched.idleSwitch');
const HLT = profile.ns('xen.hvm.exit.hlt');

function makeHost(config: HostConfig, dom0: Partial<DomainConfig> = {}, prof: Profile = profile): { env: SimEnvironment; hv: Hypervisor } {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, prof, config);
  hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1, ...dom0 });
  return { env, hv };
}

/** A CPU-bound guest process: user work in 1 ms pieces, forever. */
function hog(env: SimEnvironment, v: Vcpu, chunk = 1 * MS): void {
  env.process(
    (function* (): ProcessGenerator<void> {
      for (;;) yield v.exec(chunk, 'user');
    })(),
    `hog ${v.name}`,
  );
}

function pct(hv: Hypervisor, name: string): number {
  const r = hv.cpuReport();
  return r.domains.find((d) => d.name === name)!.percent;
}

describe('credit scheduler: shares', () => {
  it('two CPU-bound domains on one pCPU with weights 256:512 get 1:2 of it (±2% over 3 s)', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const a = hv.createDomain({ name: 'a', kind: 'hvm', vcpus: 1, weight: 256 });
    const b = hv.createDomain({ name: 'b', kind: 'hvm', vcpus: 1, weight: 512 });
    hog(env, a.vcpus[0]!);
    hog(env, b.vcpus[0]!);
    env.run({ until: 3 * S });
    const pa = pct(hv, 'a');
    const pb = pct(hv, 'b');
    assert.ok(Math.abs(pa - 100 / 3) <= 2, `a got ${pa.toFixed(2)}%, expected 33.3% ±2`);
    assert.ok(Math.abs(pb - 200 / 3) <= 2, `b got ${pb.toFixed(2)}%, expected 66.7% ±2`);
  });

  it('equal weights share equally', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    for (const n of ['a', 'b', 'c']) hog(env, hv.createDomain({ name: n, kind: 'hvm', vcpus: 1 }).vcpus[0]!);
    env.run({ until: 3 * S });
    for (const n of ['a', 'b', 'c']) assert.ok(Math.abs(pct(hv, n) - 100 / 3) <= 2, `${n}: ${pct(hv, n)}`);
  });

  it('a cap of 50 holds a CPU-bound domain to 50% ±2%, even with the pCPU otherwise idle', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const a = hv.createDomain({ name: 'capped', kind: 'hvm', vcpus: 1, cap: 50 });
    hog(env, a.vcpus[0]!);
    env.run({ until: 3 * S });
    const p = pct(hv, 'capped');
    assert.ok(Math.abs(p - 50) <= 2, `capped domain got ${p.toFixed(2)}%`);
    assert.ok(a.vcpus[0]!.runstateNow().offline > 1 * S, 'it spent its over-cap time parked (offline)');
  });

  it('a cap binds against a competitor too: capped 25 + uncapped hog on one pCPU', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    hog(env, hv.createDomain({ name: 'capped', kind: 'hvm', vcpus: 1, cap: 25 }).vcpus[0]!);
    hog(env, hv.createDomain({ name: 'free', kind: 'hvm', vcpus: 1 }).vcpus[0]!);
    env.run({ until: 3 * S });
    assert.ok(Math.abs(pct(hv, 'capped') - 25) <= 2, `capped: ${pct(hv, 'capped')}`);
    assert.ok(pct(hv, 'free') > 70, `free: ${pct(hv, 'free')}`);
  });

  it('work-conserving: a running vCPU sharing a pCPU moves to an idle one at a tick (migrate_running)', () => {
    // Both hogs start on pCPU 0 (Dom0 is pinned to pCPU 1 and blocked); credit1's tick finds
    // an idle pCPU for whichever runs and migrates it there.
    const { env, hv } = makeHost({ pcpus: 2 }, { pinning: [1] });
    const a = hv.createDomain({ name: 'a', kind: 'hvm', vcpus: 1 });
    const b = hv.createDomain({ name: 'b', kind: 'hvm', vcpus: 1, pinning: [0] });
    assert.equal(a.vcpus[0]!.processor.id, 0);
    assert.equal(b.vcpus[0]!.processor.id, 0);
    hog(env, a.vcpus[0]!);
    hog(env, b.vcpus[0]!);
    const moves: string[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.reason === 'migrate') moves.push(`${t} ${p.from} off pCPU${p.pcpu}`);
    });
    env.run({ until: 1 * S });
    assert.equal(moves.length, 1, moves.join('; '));
    assert.match(moves[0]!, / d1v0 off pCPU0$/);
    assert.ok(pct(hv, 'a') > 95 && pct(hv, 'b') > 95, `a ${pct(hv, 'a')} b ${pct(hv, 'b')}`);
  });

  it('an idle pCPU that is tickled steals the woken vCPU queued on a busy pCPU (csched_load_balance)', () => {
    const { env, hv } = makeHost({ pcpus: 2 }, { pinning: [1] });
    const hogV = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
    const io = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    assert.equal(io.processor.id, 0, 'queued on the busy pCPU');
    hog(env, hogV);
    const runs: { t: number; pcpu: number }[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.to === io.name) runs.push({ t, pcpu: p.pcpu });
    });
    env.process(
      (function* (): ProcessGenerator<void> {
        yield env.timeout(5 * MS);
        yield io.exec(10 * US, 'irq');
      })(),
    );
    env.run({ until: 20 * MS });
    assert.deepEqual(runs, [{ t: 5 * MS + IDLE_WAKE, pcpu: 1 }]);
  });

  it('a woken vCPU that cannot use the idle pCPU kicks the running one there (tickle, kicked_away)', () => {
    // pCPU 1 is idle; `pinned` may only run on pCPU 0, where the unpinned `mobile` hog runs.
    const { env, hv } = makeHost({ pcpus: 2 }, { pinning: [1] });
    const mobile = hv.createDomain({ name: 'mobile', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const pinned = hv.createDomain({ name: 'pinned', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
    assert.equal(mobile.processor.id, 0);
    hog(env, mobile);
    env.run({ until: 15 * MS }); // mobile is UNDER (its BOOST dropped at the 10 ms tick)
    const where: { t: number; to: string | null; pcpu: number }[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => where.push({ t, to: p.to, pcpu: p.pcpu }));
    env.process(
      (function* (): ProcessGenerator<void> {
        yield pinned.exec(100 * US, 'irq');
      })(),
    );
    env.run({ until: 16 * MS });
    const t0 = 15 * MS;
    assert.deepEqual(
      where.filter((w) => w.to !== null),
      [
        { t: t0, to: pinned.name, pcpu: 0 },
        // vcpu_migrate wakes it on pCPU 1 from pCPU 0's Xen code: an IPI, then the idle exit.
        { t: t0 + profile.ns('xen.ipi.latency') + IDLE_WAKE, to: mobile.name, pcpu: 1 },
      ],
    );
  });

  it('destroying a domain takes its weight out of the credit accounting', () => {
    // An I/O-bound domain shares a pCPU with a hog; a heavy domain comes and goes. Afterwards
    // the I/O domain must still be UNDER, so BOOST still gets it the pCPU at once.
    const { env, hv } = makeHost({ pcpus: 1 });
    hog(env, hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!);
    const io = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const heavy = hv.createDomain({ name: 'heavy', kind: 'hvm', vcpus: 1, weight: 4096 });
    hog(env, heavy.vcpus[0]!);
    let wokeAt = -1;
    const late: number[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.to === io.name && wokeAt >= 0) {
        if (t > 1 * S) late.push(t - wokeAt);
        wokeAt = -1;
      }
    });
    env.process(
      (function* (): ProcessGenerator<void> {
        for (;;) {
          yield env.timeout(5 * MS);
          wokeAt = env.now;
          yield io.exec(3 * MS, 'kernel'); // busy enough to be on the active list, still UNDER
        }
      })(),
    );
    env.run({ until: 100 * MS });
    hv.destroyDomain(heavy);
    env.run({ until: 3 * S });
    assert.ok(late.length > 200, `${late.length} wake-ups measured`);
    assert.ok(Math.max(...late) < 1 * MS, `wake-up latency after the destroy up to ${Math.max(...late) / MS} ms`);
  });
});

describe('credit scheduler: wake-up, BOOST and the rate limit', () => {
  /** A guest vCPU that sleeps (blocked) and is woken by an interrupt at each given time. */
  function waker(env: SimEnvironment, v: Vcpu, at: number[], work = 10 * US): { start: number[] } {
    const start: number[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.to === v.name) start.push(t);
    });
    env.process(
      (function* (): ProcessGenerator<void> {
        for (const t of at) {
          yield env.timeout(t - env.now);
          yield v.exec(work, 'irq');
        }
      })(),
    );
    return { start };
  }

  it('a blocked vCPU woken by an event is BOOSTed and preempts a CPU-bound vCPU that has run past the rate limit', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    const boosts: boolean[] = [];
    env.trace.on(TP_SCHED_WAKE, (_t, p) => {
      if (p.vcpu === b.name) boosts.push(p.boosted);
    });
    const wakeAt = 17 * MS + 123;
    const { start } = waker(env, b, [wakeAt]);
    env.run({ until: 40 * MS });
    assert.deepEqual(boosts, [true]);
    assert.equal(start[0], wakeAt, 'switched to the woken vCPU at the instant of the event');
  });

  it('within the rate limit (Xen 4.8+), the BOOSTed vCPU waits until the running one has had its 1 ms, not longer', () => {
    // The remainder rule is 4.8's (0053127890); sched-credit-release.test.ts has 4.5's.
    const { env, hv } = makeHost({ pcpus: 1 }, {}, profile.withXen('4.8.0'));
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    const hogStarts: number[] = [];
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.to === a.name) hogStarts.push(t);
    });
    // First wake preempts at once; the hog resumes when b blocks; the second wake comes
    // 300 µs into the hog's new run, inside the rate limit.
    const first = 17 * MS;
    const second = first + SCHED + SWITCH + 10 * US + 300 * US;
    const { start } = waker(env, b, [first, second]);
    env.run({ until: 40 * MS });
    assert.equal(start[0], first);
    const hogResumed = hogStarts.find((t) => t > first)!;
    assert.equal(hogResumed, first + SCHED + SWITCH + 10 * US, 'hog resumes once b has been chosen, switched in, run and blocked');
    assert.equal(second - hogResumed, 300 * US, 'second wake falls 300 µs into the hog’s new run');
    assert.equal(start[1], hogResumed + RATELIMIT, 'b starts exactly when the hog has run the rate limit');
  });

  it('without BOOST, the woken vCPU waits for the running vCPU’s time slice to end', () => {
    const { env, hv } = makeHost({ pcpus: 1, boost: false });
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    let hogStart = -1;
    env.trace.on(TP_SCHED_SWITCH, (t, p) => {
      if (p.to === a.name && hogStart < 0) hogStart = t;
    });
    const { start } = waker(env, b, [5 * MS]);
    env.run({ until: 40 * MS });
    assert.equal(hogStart, IDLE_WAKE, 'the hog started when the idle pCPU woke');
    assert.equal(start[0], hogStart + TSLICE, 'b ran only when the hog’s 30 ms slice ended');
  });

  it('a vCPU woken with an idle pCPU in its affinity runs after the idle pCPU wakes up', () => {
    const { env, hv } = makeHost({ pcpus: 2 });
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
    const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    const { start } = waker(env, b, [3 * MS]);
    const where: number[] = [];
    env.trace.on(TP_SCHED_SWITCH, (_t, p) => {
      if (p.to === b.name) where.push(p.pcpu);
    });
    env.run({ until: 10 * MS });
    assert.equal(start[0], 3 * MS + IDLE_WAKE);
    assert.deepEqual(where, [1]);
  });
});

describe('credit scheduler: pinning and accounting', () => {
  it('respects hard affinity', () => {
    const { env, hv } = makeHost({ pcpus: 3 }, { pinning: [0] });
    const p1 = hv.createDomain({ name: 'p1', kind: 'hvm', vcpus: 2, pinning: [1] });
    const p2 = hv.createDomain({ name: 'p2', kind: 'hvm', vcpus: 1, pinning: [[2]] });
    const free = hv.createDomain({ name: 'free', kind: 'hvm', vcpus: 2 });
    for (const d of [p1, p2, free]) for (const v of d.vcpus) hog(env, v);
    const seen = new Map<string, Set<number>>();
    env.trace.on(TP_SCHED_SWITCH, (_t, p) => {
      if (p.to !== null) (seen.get(p.to) ?? seen.set(p.to, new Set()).get(p.to)!).add(p.pcpu);
    });
    env.run({ until: 1 * S });
    assert.deepEqual([...seen.get('d1v0')!], [1]);
    assert.deepEqual([...seen.get('d1v1')!], [1]);
    assert.deepEqual([...seen.get('d2v0')!], [2]);
    // Accounting agrees: pinned domains have time only on their pCPU.
    const perPcpu = (d: typeof p1, cpu: number): number => d.cpuTime.ns.slice(cpu * 5, cpu * 5 + 5).reduce((s, x) => s + x, 0);
    assert.equal(perPcpu(p1, 0) + perPcpu(p1, 2), 0);
    assert.equal(perPcpu(p2, 0) + perPcpu(p2, 1), 0);
    assert.ok(perPcpu(free, 0) > 0.5 * S, 'the unpinned domain used the pCPU nobody pinned to');
  });

  it('rejects bad pinning and bad parameters with a message naming them', () => {
    const { hv } = makeHost({ pcpus: 2 });
    assert.throws(
      () => hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, pinning: [5] }),
      /domain "x": pinning names pCPU 5; this host has pCPUs 0-1/,
    );
    assert.throws(() => hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 2, pinning: [[0]] }), /pinning has 1 lists for 2 vcpus/);
    assert.throws(() => hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, weight: 0 }), /weight 0 must be/);
    assert.throws(() => hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, cap: 150 }), /cap 150/);
    assert.throws(() => hv.createDomain({ name: 'Domain-0', kind: 'hvm', vcpus: 1 }), /name already used/);
    assert.throws(() => hv.createDomain({ name: 'y', kind: 'hvm', vcpus: 0 }), /vcpus 0/);
  });

  it('accounting: every nanosecond of every pCPU is attributed, exactly, under any workload', () => {
    const job = fc.record({
      vcpus: fc.integer({ min: 1, max: 2 }),
      cap: fc.constantFrom(0, 0, 30, 60),
      weight: fc.constantFrom(128, 256, 512),
      pieces: fc.array(
        fc.record({
          sleep: fc.integer({ min: 0, max: 3 * MS }),
          work: fc.integer({ min: 1, max: 2 * MS }),
          ctx: fc.constantFrom('user' as const, 'kernel' as const, 'irq' as const, 'xen' as const),
        }),
        { minLength: 1, maxLength: 30 },
      ),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.array(job, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 200 }),
        (pcpus, jobs, horizonMs) => {
          const { env, hv } = makeHost({ pcpus });
          jobs.forEach((j, i) => {
            const d = hv.createDomain({ name: `g${i}`, kind: 'hvm', vcpus: j.vcpus, cap: j.cap, weight: j.weight });
            for (const v of d.vcpus) {
              env.process(
                (function* (): ProcessGenerator<void> {
                  for (;;) {
                    for (const p of j.pieces) {
                      if (p.sleep > 0) yield env.timeout(p.sleep);
                      yield v.exec(p.work, p.ctx);
                    }
                  }
                })(),
              );
            }
          });
          const snaps = [hv.snapshot()];
          for (const t of [horizonMs / 3, horizonMs]) {
            env.run({ until: Math.round(t * MS) });
            snaps.push(hv.snapshot());
          }
          for (let i = 1; i < snaps.length; i++) {
            const r = hv.acct.report(snaps[i]!, snaps[i - 1]);
            const sum = r.domains.reduce((s, d) => s + d.total, 0) + r.xenOwn + r.idle;
            assert.equal(sum, r.capacity, `parts ${sum} != elapsed × pCPUs ${r.capacity}`);
            for (const d of r.domains)
              assert.ok(d.total >= 0 && d.total <= (r.to - r.from) * Math.min(pcpus, d.domid === 0 ? 1 : jobs[d.domid - 1]!.vcpus));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('charges Xen itself every decision, each switch to and from idle, and one vCPU switch (none back from idle to the same vCPU); the HLT exit to the guest', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const v = hv.createDomain({ name: 'g', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    env.process(
      (function* (): ProcessGenerator<void> {
        for (let i = 0; i < 3; i++) {
          yield v.exec(100 * US, 'kernel');
          yield env.timeout(1 * MS);
        }
      })(),
    );
    env.run({ until: 10 * MS });
    const r = hv.cpuReport();
    // Three wakes from idle and three blocks: each a decision and a lazy idle switch.
    assert.equal(r.xenOwn, SWITCH + 6 * (SCHED + IDLE_SWITCH), 'one vCPU switch: the first time the vCPU is loaded');
    const g = r.domains.find((d) => d.name === 'g')!;
    assert.equal(g.byCategory.kernel, 300 * US);
    assert.equal(g.byCategory.xen, 3 * HLT, 'each block is an HLT exit on the guest’s account');
    assert.equal(hv.domain(g.domid)!.counters.exits.hlt, 3);
  });

  it('a vCPU paused in Xen (as while it waits on an ioreq) takes no HLT exit; one that idles does', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const v = hv.createDomain({ name: 'g', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    env.process(
      (function* (): ProcessGenerator<void> {
        yield v.exec(100 * US, 'kernel');
        hv.sched.pause(v); // descheduled by Xen, not by its idle loop
        yield env.timeout(1 * MS);
        hv.sched.unpause(v);
        yield v.exec(100 * US, 'kernel');
      })(),
    );
    env.run({ until: 10 * MS });
    assert.equal(v.domain.counters.exits.hlt, 1, 'only the final idle');
  });

  it('interrupt work preempts user work inside a vCPU', () => {
    const { env, hv } = makeHost({ pcpus: 1 });
    const v = hv.createDomain({ name: 'g', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const done: Record<string, number> = {};
    env.process(
      (function* (): ProcessGenerator<void> {
        yield v.exec(1 * MS, 'user');
        done.user = env.now;
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        yield env.timeout(500 * US);
        yield v.exec(50 * US, 'irq');
        done.irq = env.now;
      })(),
    );
    env.run({ until: 5 * MS });
    const begin = IDLE_WAKE + SCHED + IDLE_SWITCH + SWITCH;
    assert.equal(done.irq, 500 * US + 50 * US);
    assert.equal(done.user, begin + 1 * MS + 50 * US);
  });

  it('is deterministic: the same scenario gives the same schedule', () => {
    const run = (): string[] => {
      const { env, hv } = makeHost({ pcpus: 2 });
      const out: string[] = [];
      env.trace.on(TP_SCHED_SWITCH, (t, p) => out.push(`${t} ${p.pcpu} ${p.from} ${p.to}`));
      for (let i = 0; i < 3; i++) hog(env, hv.createDomain({ name: `g${i}`, kind: 'hvm', vcpus: 1, weight: 128 * (i + 1) }).vcpus[0]!);
      env.run({ until: 500 * MS });
      return out;
    };
    assert.deepEqual(run(), run());
  });
});
