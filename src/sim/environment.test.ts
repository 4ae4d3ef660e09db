import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LATE, NORMAL, URGENT, type Schedulable } from './event-queue.js';
import { SimEnvironment } from './environment.js';
import { Interrupt, type SimEvent } from './event.js';
import { wait, type ProcessGenerator } from './process.js';

describe('event ordering', () => {
  it('fires any interleaving of scheduled entries in (time, priority, sequence) order', () => {
    const child = fc.record({ delay: fc.integer({ min: 0, max: 20 }), priority: fc.constantFrom(URGENT, NORMAL, LATE) });
    const entry = fc.record({
      delay: fc.integer({ min: 0, max: 50 }),
      priority: fc.constantFrom(URGENT, NORMAL, LATE),
      children: fc.array(child, { maxLength: 3 }), // scheduled while this one fires
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 60 }), (entries) => {
        const env = new SimEnvironment();
        // Reference model: every entry pending right now, with its (time, priority, seq).
        const pending = new Map<number, [number, number, number]>();
        let seq = 0;
        let count = 0;
        const add = (delay: number, priority: number, then: () => void): void => {
          const id = seq++;
          pending.set(id, [env.now + delay, priority, id]);
          const item: Schedulable = {
            fire: () => {
              const mine = pending.get(id)!;
              for (const other of pending.values()) {
                const before = other[0] < mine[0] || (other[0] === mine[0] && (other[1] < mine[1] || (other[1] === mine[1] && other[2] < mine[2])));
                assert.ok(!before, `fired ${String(mine)} while ${String(other)} was pending`);
              }
              assert.equal(env.now, mine[0]);
              pending.delete(id);
              count++;
              then();
            },
          };
          env.schedule(item, delay, priority, 0);
        };
        for (const e of entries) add(e.delay, e.priority, () => e.children.forEach((c) => add(c.delay, c.priority, () => {})));
        env.run();
        assert.equal(pending.size, 0);
        assert.equal(
          count,
          entries.reduce((n, e) => n + 1 + e.children.length, 0),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('orders entries scheduled up front exactly by (time, priority, sequence)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.constantFrom(URGENT, NORMAL, LATE)), { maxLength: 200 }), (specs) => {
        const env = new SimEnvironment();
        const fired: number[] = [];
        specs.forEach(([delay, priority], i) => env.schedule({ fire: () => fired.push(i) }, delay, priority, 0));
        env.run();
        const expected = specs
          .map((s, i) => ({ i, t: s[0], p: s[1] }))
          .sort((a, b) => a.t - b.t || a.p - b.p || a.i - b.i)
          .map((x) => x.i);
        assert.deepEqual(fired, expected);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects negative, fractional and non-finite delays', () => {
    const env = new SimEnvironment();
    assert.throws(() => env.timeout(-1), RangeError);
    assert.throws(() => env.timeout(1.5), RangeError);
    assert.throws(() => env.timeout(Infinity), RangeError);
    assert.throws(() => env.timeout(NaN), RangeError);
  });
});

describe('processes', () => {
  it('resume with event values, compose with yield*, and return values to waiters', () => {
    const env = new SimEnvironment();
    const log: string[] = [];
    function* child(): ProcessGenerator<number> {
      const v = yield* wait(env.timeout(5, 'five'));
      log.push(`child got ${v} at ${env.now}`);
      return 42;
    }
    function* parent(): ProcessGenerator<void> {
      const r = yield* wait(env.process(child()));
      log.push(`parent got ${r} at ${env.now}`);
    }
    env.process(parent());
    env.run();
    assert.deepEqual(log, ['child got five at 5', 'parent got 42 at 5']);
  });

  it('throws a failed event into the waiting process, which may catch it', () => {
    const env = new SimEnvironment();
    const ev = env.event<number>();
    let caught: unknown;
    env.process(
      (function* () {
        try {
          yield ev;
        } catch (e) {
          caught = e;
        }
      })(),
    );
    env.process(
      (function* () {
        yield env.timeout(3);
        ev.fail(new Error('boom'));
      })(),
    );
    env.run();
    assert.ok(caught instanceof Error && caught.message === 'boom');
  });

  it('stops the run loudly when a failure is not handled', () => {
    const env = new SimEnvironment();
    env.process(
      (function* () {
        yield env.timeout(1);
        throw new Error('model bug');
      })(),
    );
    assert.throws(() => env.run(), /model bug/);
  });

  it('fails a process that yields something other than an event', () => {
    const env = new SimEnvironment();
    const p = env.process(
      (function* (): ProcessGenerator<void> {
        yield 5 as unknown as SimEvent<unknown>;
      })(),
    );
    p.defuse();
    env.run();
    assert.ok(p.error instanceof TypeError);
  });

  it('interrupts: the Interrupt is thrown at the yield and the cause is carried', () => {
    const env = new SimEnvironment();
    const log: string[] = [];
    const sleeper = env.process(
      (function* () {
        try {
          yield env.timeout(100);
          log.push('woke normally');
        } catch (e) {
          assert.ok(e instanceof Interrupt);
          log.push(`interrupted at ${env.now} by ${String(e.cause)}`);
        }
        yield env.timeout(1);
        log.push(`done at ${env.now}`);
      })(),
    );
    env.process(
      (function* () {
        yield env.timeout(10);
        sleeper.interrupt('rst');
      })(),
    );
    env.run();
    assert.deepEqual(log, ['interrupted at 10 by rst', 'done at 11']);
  });

  it('refuses to interrupt a finished process', () => {
    const env = new SimEnvironment();
    const p = env.process((function* () {})());
    env.run();
    assert.throws(() => p.interrupt(), /finished/);
  });

  it('a process can wait on an event already processed', () => {
    const env = new SimEnvironment();
    const ev = env.timeout(1, 'x');
    let got: unknown;
    env.process(
      (function* () {
        yield env.timeout(5);
        got = yield ev;
      })(),
    );
    env.run();
    assert.equal(got, 'x');
    assert.equal(env.now, 5);
  });
});

describe('conditions', () => {
  it('allOf succeeds when all succeed, with values in order', () => {
    const env = new SimEnvironment();
    let result: unknown;
    let at = -1;
    env.process(
      (function* () {
        result = yield env.allOf([env.timeout(3, 'a'), env.timeout(1, 'b'), env.timeout(2, 'c')]);
        at = env.now;
      })(),
    );
    env.run();
    assert.deepEqual(result, ['a', 'b', 'c']);
    assert.equal(at, 3);
  });

  it('allOf fails with the first failure', () => {
    const env = new SimEnvironment();
    const bad = env.event();
    let caught: unknown;
    env.process(
      (function* () {
        try {
          yield env.allOf([env.timeout(10), bad]);
        } catch (e) {
          caught = e;
        }
      })(),
    );
    env.process(
      (function* () {
        yield env.timeout(2);
        bad.fail(new Error('lost'));
      })(),
    );
    env.run();
    assert.ok(caught instanceof Error && caught.message === 'lost');
  });

  it('anyOf succeeds with the first, and the others still fire', () => {
    const env = new SimEnvironment();
    let result: unknown;
    let at = -1;
    const slow = env.timeout(9, 'slow');
    env.process(
      (function* () {
        result = yield env.anyOf([slow, env.timeout(4, 'fast')]);
        at = env.now;
      })(),
    );
    env.run();
    assert.deepEqual(result, { index: 1, value: 'fast' });
    assert.equal(at, 4);
    assert.ok(slow.processed);
  });

  it('empty allOf and anyOf succeed at once', () => {
    const env = new SimEnvironment();
    const a = env.allOf([]);
    const b = env.anyOf([]);
    env.run();
    assert.deepEqual(a.value, []);
    assert.equal(b.value.index, -1);
  });

  it('counts events already processed', () => {
    const env = new SimEnvironment();
    const t = env.timeout(1, 'early');
    env.run();
    const c = env.allOf([t, env.timeout(2, 'late')]);
    env.run();
    assert.deepEqual(c.value, ['early', 'late']);
  });
});

describe('determinism', () => {
  function trace(seed: number): string[] {
    const env = new SimEnvironment({ seed });
    const out: string[] = [];
    for (let p = 0; p < 5; p++) {
      const rng = env.rng.fork(`p${p}`);
      env.process(
        (function* () {
          for (let i = 0; i < 20; i++) {
            yield env.timeout(rng.int(1000));
            out.push(`${env.now}:p${p}:${rng.int(100)}`);
          }
        })(),
      );
    }
    env.run();
    return out;
  }

  it('the same seed gives the same trace, another seed another', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        assert.deepEqual(trace(seed), trace(seed));
      }),
      { numRuns: 20 },
    );
    assert.notDeepEqual(trace(1), trace(2));
  });
});

describe('run', () => {
  it('stops at a time and sets the clock to it', () => {
    const env = new SimEnvironment();
    const log: number[] = [];
    env.process(
      (function* () {
        for (;;) {
          yield env.timeout(10);
          log.push(env.now);
        }
      })(),
    );
    env.run({ until: 35 });
    assert.deepEqual(log, [10, 20, 30]);
    assert.equal(env.now, 35);
    env.run({ until: 50 });
    assert.deepEqual(log, [10, 20, 30, 40, 50]);
  });

  it('stops when an event is processed', () => {
    const env = new SimEnvironment();
    const stop = env.timeout(7);
    env.process(
      (function* () {
        for (;;) yield env.timeout(1);
      })(),
    );
    env.run({ until: stop });
    assert.equal(env.now, 7);
  });

  it('runs events queued for the current instant after run(until) advanced the clock', () => {
    const env = new SimEnvironment();
    env.run({ until: 100 });
    const ev = env.event<string>();
    ev.succeed('now');
    env.run();
    assert.equal(ev.value, 'now');
    assert.equal(env.now, 100);
  });
});
