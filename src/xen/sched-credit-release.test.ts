import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, S, SimEnvironment, US, type ProcessGenerator } from '../sim/index.js';
import { Profile, ProfileError } from '../profile/index.js';
import { Hypervisor } from './hypervisor.js';
import { xenRelease } from './release.js';
import { __HYPERVISOR_sched_op, SCHEDOP_yield } from './abi/index.js';
import { PRI_OVER, PRI_UNDER } from './sched-credit.js';
import { TP_HYPERCALL, TP_SCHED_SWITCH, TP_SCHED_WAKE } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

// credit1 under the releases whose rules differ, each scenario driven at explicit instants.
const base = Profile.load('default');
const SWITCH = base.ns('xen.sched.vcpuSwitch');
const RATELIMIT = base.ns('xen.sched.ratelimit');
const MIN_TIMER = base.ns('xen.sched.minTimer');
const IDLE_WAKE = base.ns('xen.pcpu.idleWake');
const SCHED = base.ns('xen.sched.schedule');
const IDLE_SWITCH = base.ns('xen.sched.idleSwitch');

function host(version: string, pcpus: number, dom0: { vcpus: number; pinning?: number[] } = { vcpus: 1 }): { env: SimEnvironment; hv: Hypervisor } {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, base.withXen(version), { pcpus });
  hv.createDomain({ name: 'Domain-0', kind: 'dom0', ...dom0 });
  return { env, hv };
}

function hog(env: SimEnvironment, v: Vcpu): void {
  env.process(
    (function* (): ProcessGenerator<void> {
      for (;;) yield v.exec(1 * MS, 'user');
    })(),
    `hog ${v.name}`,
  );
}

/** Gives `v` 10 µs of work at each instant of `at`; records when it is switched in and its wakes. */
function waker(env: SimEnvironment, v: Vcpu, at: number[]): { start: number[] } {
  const start: number[] = [];
  env.trace.on(TP_SCHED_SWITCH, (t, p) => {
    if (p.to === v.name) start.push(t);
  });
  env.process(
    (function* (): ProcessGenerator<void> {
      for (const t of at) {
        yield env.timeout(t - env.now);
        yield v.exec(10 * US, 'irq');
      }
    })(),
  );
  return { start };
}

function wakes(env: SimEnvironment, v: Vcpu): boolean[] {
  const out: boolean[] = [];
  env.trace.on(TP_SCHED_WAKE, (_t, p) => {
    if (p.vcpu === v.name) out.push(p.boosted);
  });
  return out;
}

describe('Xen release from the profile', () => {
  it('the default profile is Xen 4.5.0, and its rules are 4.5’s', () => {
    assert.equal(base.xenVersion, '4.5.0');
    const r = xenRelease(base.xenVersion);
    assert.deepEqual(
      {
        rl: r.hasRatelimit,
        rem: r.ratelimitRemainder,
        unpark: r.boostOnUnpark,
        mig: r.migratingSkipsBoost,
        aff: r.tickleChecksAffinity,
        idl: r.idlersClearedAtTickle,
        gnt: r.batchedGnttabCopy,
      },
      { rl: true, rem: false, unpark: true, mig: false, aff: false, idl: false, gnt: false },
    );
    assert.deepEqual(
      {
        ept: r.eptInvalidateOnVmentry,
        bus: r.unmapChecksFullBusAddr,
        modern: r.modernGnttabStatuses,
        crash: r.physmapOverGrantCrashes,
        bias: r.balanceBias,
        yf: r.yieldFlag,
        yrl: r.yieldSkipsRatelimit,
      },
      { ept: false, bus: false, modern: false, crash: true, bias: false, yf: true, yrl: false },
    );
  });

  it('an unknown or unsupported release is a profile error naming the field', () => {
    assert.throws(() => base.withXen('four'), /field "xen\.version"/);
    assert.throws(
      () => xenRelease('4.19.0', 'p.json'),
      (e: unknown) => e instanceof ProfileError && /p\.json.*xen\.version.*4\.19\.0 is not a release the model knows/s.test(e.message),
    );
    assert.throws(() => xenRelease('3.4.0'), /not a release the model knows/);
  });
});

describe('credit1 rate limit by release (64908a0466 in 4.2, 0053127890 in 4.8)', () => {
  // The hog is preempted at 17 ms by a first wake, resumes when the woken vCPU blocks, and a
  // second wake comes `into` its new run: the woken vCPU's start shows what the rate limit kept.
  function second(version: string, into: number): { resumed: number; wakeAt: number; start: number } {
    const { env, hv } = host(version, 1);
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    const first = 17 * MS;
    // The woken vCPU runs after the decision and the switch, and the hog is chosen again the
    // instant it blocks (its HLT exit, the decision and the switch then count as the hog's run).
    const resumed = first + SCHED + SWITCH + 10 * US;
    const wakeAt = resumed + into;
    const { start } = waker(env, b, [first, wakeAt]);
    env.run({ until: 40 * MS });
    assert.equal(start[0], first, 'the first wake preempts the hog at once (it ran past the limit)');
    return { resumed, wakeAt, start: start[1]! };
  }

  it('4.5 keeps the running vCPU a full rate limit from the decision; 4.8 only the remainder', () => {
    const v45 = second('4.5.0', 300 * US);
    const v48 = second('4.8.0', 300 * US);
    assert.equal(v45.start, v45.wakeAt + RATELIMIT, '4.5: 1 ms from the wake-time decision (1.3 ms of hog run)');
    assert.equal(v48.start, v48.resumed + RATELIMIT, '4.8: when the hog has run 1 ms in all');
    assert.equal(v45.start - v48.start, 300 * US);
  });

  it('4.8 under CSCHED_MIN_TIMER of runtime re-decides after the floor and still ends at the limit; 4.7 grants the full limit', () => {
    // Xen 4.8 floors the slice when *runtime* is under 100 µs (not the remainder): one more
    // decision at wake + 100 µs, which again keeps the hog, for the rest of its 1 ms.
    assert.ok(50 * US < MIN_TIMER);
    const v48 = second('4.8.0', 50 * US);
    assert.equal(v48.start, v48.resumed + RATELIMIT);
    const v47 = second('4.7.0', 50 * US);
    assert.equal(v47.start, v47.wakeAt + RATELIMIT);
  });

  it('Xen 3.2 has no rate limit: the BOOSTed vCPU preempts at the instant of its wake', () => {
    const v32 = second('3.2.0', 300 * US);
    assert.equal(v32.start, v32.wakeAt);
  });
});

describe('credit1 BOOST rules by release', () => {
  it('an unparked capped vCPU is BOOSTed up to 4.12, not in 4.13 (5c8c0ae7c4)', () => {
    const run = (version: string): boolean[] => {
      const { env, hv } = host(version, 1);
      const v = hv.createDomain({ name: 'capped', kind: 'hvm', vcpus: 1, cap: 50 }).vcpus[0]!;
      hog(env, v);
      const w = wakes(env, v);
      env.run({ until: 1 * S });
      return w.slice(1); // the first wake is the hog's start; the rest are unparks
    };
    const v412 = run('4.12.0');
    const v413 = run('4.13.0');
    assert.ok(v412.length >= 5, `expected several unparks in 1 s, got ${v412.length}`);
    assert.deepEqual(
      v412,
      v412.map(() => true),
      '4.12: every unpark wake BOOSTs',
    );
    assert.deepEqual(
      v413,
      v413.map(() => false),
      '4.13: no unpark wake BOOSTs',
    );
    assert.equal(v413.length, v412.length);
  });

  it('a running vCPU kicked to an idle pCPU is re-BOOSTed up to 4.6, not in 4.7 (66c7449a4d)', () => {
    const run = (version: string): { boosts: boolean[]; aOn: number[] } => {
      const { env, hv } = host(version, 2);
      const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
      // The hog lands on pCPU1 (Dom0 holds pCPU0); the I/O vCPU may run only there.
      assert.equal(a.processor.id, 1);
      const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1, pinning: [1] }).vcpus[0]!;
      hog(env, a);
      const boosts = wakes(env, a);
      const aOn: number[] = [];
      env.trace.on(TP_SCHED_SWITCH, (_t, p) => {
        if (p.to === a.name) aOn.push(p.pcpu);
      });
      const { start } = waker(env, b, [17 * MS]);
      env.run({ until: 20 * MS });
      assert.equal(start[0], 17 * MS, 'the I/O vCPU takes pCPU1 at once');
      return { boosts: boosts.slice(1), aOn };
    };
    const v46 = run('4.6.0');
    const v47 = run('4.7.0');
    assert.deepEqual(v46.aOn, [1, 0], '4.6: the hog moved to idle pCPU0');
    assert.deepEqual(v47.aOn, [1, 0], '4.7: the hog moved to idle pCPU0');
    assert.deepEqual(v46.boosts, [true], '4.6: its wake on pCPU0 BOOSTs a CPU hog');
    assert.deepEqual(v47.boosts, [false], '4.7: MIGRATING, not BOOSTed');
  });

  it('a pinned running vCPU is kicked onto its own pCPU up to 4.6 (dodging the rate limit, re-BOOSTed), not in 4.7 (f02a5760c7)', () => {
    const run = (version: string): { first: number; wakeAt: number; start: number[]; hogBoosts: boolean[] } => {
      const { env, hv } = host(version, 2);
      // Both guests may run only on pCPU0; pCPU1 (with idle Dom0) stays an idler.
      const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
      const b = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
      hog(env, a);
      const hogBoosts = wakes(env, a);
      const first = 17 * MS;
      const resumed = first + SCHED + SWITCH + 10 * US;
      const wakeAt = resumed + 300 * US;
      const { start } = waker(env, b, [first, wakeAt]);
      env.run({ until: 100 * MS });
      return { first, wakeAt, start, hogBoosts: hogBoosts.slice(1) };
    };
    const v46 = run('4.6.0');
    const v47 = run('4.7.0');
    // Both releases let the first wake preempt the hog (it ran past the limit) ...
    assert.equal(v46.start[0], v46.first);
    assert.equal(v47.start[0], v47.first);
    // ... but 4.6 also kicks the hog "away" onto its own pCPU, where it wakes BOOSTed: the
    // I/O vCPU's next wake cannot preempt a BOOSTed hog and waits out its 30 ms slice — the
    // throughput collapse f02a5760c7 reports (806 -> 166 Mbps for a pinned netperf guest).
    assert.deepEqual(v46.hogBoosts, [true], '4.6: the kicked hog re-wakes BOOSTed');
    assert.equal(v46.start[1], v46.first + SCHED + SWITCH + 10 * US + base.ns('xen.sched.tslice'), '4.6: the second wake waits for the hog’s slice');
    assert.deepEqual(v47.hogBoosts, [], '4.7: the hog is not kicked, so never re-wakes');
    assert.equal(v47.start[1], v47.wakeAt + RATELIMIT, '4.7: the second wake waits only for the (full, pre-4.8) rate limit');
  });
});

describe('credit1 idlers by release (47d5292995 in 4.9)', () => {
  it('two vCPUs waking at one instant: 4.9 counts the tickled idler busy and preempts the hog for the second; 4.8 tickles the same idler twice', () => {
    const run = (version: string): { b: number; c: number } => {
      // Dom0's two idle vCPUs on pCPU1 make pCPU0 the least loaded: b and c are queued there.
      const { env, hv } = host(version, 2, { vcpus: 2, pinning: [1] });
      const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
      const b = hv.createDomain({ name: 'b', kind: 'hvm', vcpus: 1, pinning: [0, 1] }).vcpus[0]!;
      const c = hv.createDomain({ name: 'c', kind: 'hvm', vcpus: 1, pinning: [0, 1] }).vcpus[0]!;
      assert.deepEqual([b.processor.id, c.processor.id], [0, 0]);
      hog(env, a);
      const t = 17 * MS;
      const sb = waker(env, b, [t]);
      const sc = waker(env, c, [t]);
      env.run({ until: 40 * MS });
      return { b: sb.start[0]!, c: sc.start[0]! };
    };
    const v48 = run('4.8.0');
    const v49 = run('4.9.0');
    const t = 17 * MS;
    // 4.9: c's wake finds no idler, so pCPU0 preempts the hog at once (taking b, first in its
    // queue) and the tickled pCPU1 steals c once it is out of idle.
    assert.deepEqual(v49, { b: t, c: t + IDLE_WAKE });
    // 4.8: c's wake tickles the same still-listed idler again; the hog keeps pCPU0, pCPU1 runs b,
    // and c waits until b has blocked and pCPU1 steals it.
    assert.deepEqual(v48, { b: t + IDLE_WAKE, c: t + IDLE_WAKE + SCHED + IDLE_SWITCH + SWITCH + 10 * US });
  });
});

describe('credit1 opt_tickle_one_idle cursor', () => {
  it('is per waking pCPU (this_cpu(last_tickle_cpu)): wakes done by different pCPUs each start their own cycle', () => {
    // pCPUs 1-3 idle (Dom0 pinned to 0 and idle); the hog holds pCPU0. The wakes are made
    // directly, at one instant, each with an explicit waking pCPU.
    const { env, hv } = host('4.5.0', 4, { vcpus: 1, pinning: [0] });
    const a = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1, pinning: [0] }).vcpus[0]!;
    hog(env, a);
    const tickled: number[] = [];
    const p = hv.pcpus;
    for (const q of p) {
      const orig = q.tickle.bind(q);
      q.tickle = (from) => {
        tickled.push(q.id);
        orig(from);
      };
    }
    const sched = hv.sched;
    const vs = ['x', 'y', 'z'].map((n) => hv.createDomain({ name: n, kind: 'hvm', vcpus: 1 }).vcpus[0]!);
    env.run({ until: 5 * MS });
    // Queued on the busy pCPU0 (as after last running there), so each wake picks an idler.
    for (const v of vs) v.processor = p[0]!;
    tickled.length = 0;
    sched.wake(vs[0]!, p[0]); // pCPU0's cursor: -1 -> 1
    sched.wake(vs[1]!, p[0]); // pCPU0's cursor: 1 -> 2 (4.5: pCPU1 is still an idler)
    sched.wake(vs[2]!, p[3]); // pCPU3's own cursor: -1 -> 1
    assert.deepEqual(tickled, [1, 2, 1]);
  });
});

describe('credit1 steal order by release (89216c7999 in 4.9)', () => {
  it('4.5 steals from the lowest-numbered busy pCPU each time; 4.9 goes round from the one after its last victim (balance_bias)', () => {
    const run = (version: string): string[] => {
      const env = new SimEnvironment({ seed: 1 });
      // Without BOOST the woken vCPUs are UNDER like the hogs: they queue, and only idle pCPU0 takes them.
      const hv = new Hypervisor(env, base.withXen(version), { pcpus: 4, boost: false });
      hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1, pinning: [0] });
      for (const k of [1, 2, 3]) hog(env, hv.createDomain({ name: `hog${k}`, kind: 'hvm', vcpus: 1, pinning: [k] }).vcpus[0]!);
      const queued = [
        ['x1a', 1],
        ['x1b', 1],
        ['x2', 2],
        ['x3', 3],
      ] as const;
      const vs = queued.map(([name, k]) => {
        const v = hv.createDomain({ name, kind: 'hvm', vcpus: 1, pinning: [k, 0] }).vcpus[0]!;
        v.processor = hv.pcpus[k]!;
        return v;
      });
      const stolen: string[] = [];
      env.trace.on(TP_SCHED_SWITCH, (_t, p) => {
        if (p.pcpu === 0 && p.to !== null) stolen.push(vs.find((v) => v.name === p.to)!.domain.name);
      });
      env.process(
        (function* (): ProcessGenerator<void> {
          yield env.timeout(5 * MS);
          // All four wake at one instant, each queued behind the hog of its pCPU.
          for (const v of vs) v.exec(10 * US, 'kernel');
        })(),
      );
      env.run({ until: 6 * MS });
      return stolen;
    };
    assert.deepEqual(run('4.5.0'), ['x1a', 'x1b', 'x2', 'x3'], '4.5: cpumask_first of the busy pCPUs every time');
    assert.deepEqual(run('4.8.0'), ['x1a', 'x1b', 'x2', 'x3']);
    assert.deepEqual(run('4.9.0'), ['x1a', 'x2', 'x3', 'x1b'], '4.9: the scan starts after the last victim');
  });
});

describe('credit1 YIELD by release (5fc9f5ef6c in 4.1, 9fdd2f3c9c in 4.8)', () => {
  /** Two hogs on one pCPU; at `at` the running one yields. `other`: later switches to the other one. */
  function yieldAt(
    version: string,
    at: number,
    setup?: (running: Vcpu, queued: Vcpu) => void,
  ): { yieldedAt: number; runtime: number; other: number[] } {
    const { env, hv } = host(version, 1);
    const a = hv.createDomain({ name: 'a', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    const b = hv.createDomain({ name: 'b', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
    hog(env, a);
    hog(env, b);
    const p = hv.pcpus[0]!;
    const other: number[] = [];
    let running: Vcpu | null = null;
    let yieldedAt = -1;
    let runtime = -1;
    env.trace.on(TP_SCHED_SWITCH, (t, s) => {
      if (running !== null && s.to !== null && s.to !== running.name && t >= at) other.push(t);
    });
    env.process(
      (function* (): ProcessGenerator<void> {
        yield env.timeout(at);
        running = p.curr!;
        runtime = env.now - p.runStart;
        const queued = p.runq[0]!;
        setup?.(running, queued);
        yield* hv.hypercall(running, { nr: __HYPERVISOR_sched_op, cmd: SCHEDOP_yield });
      })(),
    );
    env.trace.on(TP_HYPERCALL, (t, h) => {
      if (h.name === 'sched_op.yield') yieldedAt = t;
    });
    env.run({ until: at + 5 * MS });
    return { yieldedAt, runtime, other };
  }
  const c = (): ReturnType<typeof host>['hv']['costs'] => host('4.5.0', 1).hv.costs;

  it('a vCPU yielding inside the rate limit keeps the pCPU up to 4.7, gives it up at once from 4.8', () => {
    // The first hog's 30 ms slice ends just after 30 ms and the other starts a fresh run: it
    // yields a little under 200 µs into it, well inside the 1 ms rate limit.
    const k = c();
    const decided = (r: { yieldedAt: number }): number => r.yieldedAt + k.exit.vmcall + k.simpleOp;
    const v47 = yieldAt('4.7.0', 30 * MS + 200 * US);
    const v48 = yieldAt('4.8.0', 30 * MS + 200 * US);
    for (const r of [v47, v48]) assert.ok(r.runtime > 0 && r.runtime < 200 * US, `yield ${r.runtime} ns into the run`);
    assert.equal(v48.other[0], decided(v48), '4.8: the other vCPU runs at the yield');
    assert.equal(v47.other[0], decided(v47) + RATELIMIT, '4.7: only once a full rate limit has passed');
  });

  it('3.2 re-queues a yielding UNDER vCPU ahead of an OVER one, so it keeps running; 4.5 puts it behind', () => {
    const prio = (running: Vcpu, queued: Vcpu): void => {
      running.csched.pri = PRI_UNDER;
      queued.csched.pri = PRI_OVER;
    };
    const k = c();
    const v45 = yieldAt('4.5.0', 15 * MS, prio);
    const v32 = yieldAt('3.2.0', 15 * MS, prio);
    assert.equal(v45.other[0], v45.yieldedAt + k.exit.vmcall + k.simpleOp, '4.5: the OVER vCPU runs at once');
    assert.ok(v32.other.length === 0 || v32.other[0]! >= 20 * MS, `3.2: the yielder keeps the pCPU (switches at ${v32.other.join(',')})`);
  });
});
