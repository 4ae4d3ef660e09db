import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Deque } from './deque.js';
import { SimEnvironment } from './environment.js';
import { Resource } from './resource.js';
import { Rng } from './rng.js';
import { Store } from './store.js';
import { tracePoint } from './trace.js';
import { PRIO_IRQ, SimpleCpu } from './work.js';

describe('Deque', () => {
  it('behaves as an array used as a queue, through growth and wrap-around', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined)), { maxLength: 300 }), (ops) => {
        const d = new Deque<number>(2);
        const ref: number[] = [];
        for (const op of ops) {
          if (op === null) assert.equal(d.shift(), ref.shift());
          else if (op === undefined) {
            if (ref.length > 0) {
              const v = ref[Math.floor(ref.length / 2)]!;
              assert.equal(d.remove(v), true);
              ref.splice(ref.indexOf(v), 1);
            }
          } else {
            d.push(op);
            ref.push(op);
          }
          assert.equal(d.length, ref.length);
          assert.deepEqual([...d], ref);
        }
      }),
    );
  });
});

describe('Resource', () => {
  it('serves capacity users at once, first come first served', () => {
    const env = new SimEnvironment();
    const r = new Resource(env, 2);
    const log: string[] = [];
    for (let i = 0; i < 4; i++) {
      env.process(
        (function* () {
          const req = r.request();
          yield req;
          log.push(`${i} in at ${env.now}`);
          yield env.timeout(10);
          req.release();
        })(),
      );
    }
    env.run();
    assert.deepEqual(log, ['0 in at 0', '1 in at 0', '2 in at 10', '3 in at 10']);
  });

  it('a cancelled waiting request never gets the resource', () => {
    const env = new SimEnvironment();
    const r = new Resource(env, 1);
    const a = r.request();
    const b = r.request();
    const c = r.request();
    b.release(); // withdraw while waiting
    a.release();
    env.run();
    assert.equal(b.triggered, false);
    assert.equal(c.ok, true);
    assert.equal(r.count, 1);
  });
});

describe('Store', () => {
  it('blocks getters while empty and putters while full, in FIFO order', () => {
    const env = new SimEnvironment();
    const s = new Store<number>(env, 2);
    const got: string[] = [];
    env.process(
      (function* () {
        for (let i = 0; i < 5; i++) {
          yield s.put(i);
          got.push(`put ${i} at ${env.now}`);
        }
      })(),
    );
    env.process(
      (function* () {
        yield env.timeout(10);
        for (let i = 0; i < 5; i++) {
          const v = yield s.get();
          got.push(`got ${String(v)} at ${env.now}`);
          yield env.timeout(1);
        }
      })(),
    );
    env.run();
    assert.deepEqual(got, [
      'put 0 at 0',
      'put 1 at 0',
      'got 0 at 10',
      'put 2 at 10',
      'got 1 at 11',
      'put 3 at 11',
      'got 2 at 12',
      'put 4 at 12',
      'got 3 at 13',
      'got 4 at 14',
    ]);
  });

  it('tryPut refuses when full; tryGet returns undefined when empty', () => {
    const env = new SimEnvironment();
    const s = new Store<string>(env, 1);
    assert.equal(s.tryGet(), undefined);
    assert.equal(s.tryPut('a'), true);
    assert.equal(s.tryPut('b'), false);
    assert.equal(s.tryGet(), 'a');
  });
});

describe('Rng', () => {
  it('is reproducible per seed and forks independent named streams', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const xs = Array.from({ length: 10 }, () => a.nextU32());
    assert.deepEqual(
      xs,
      Array.from({ length: 10 }, () => b.nextU32()),
    );
    // Forking is a function of (seed, label) only: drawing from the parent does not shift it.
    const p1 = new Rng(7);
    const p2 = new Rng(7);
    p2.next();
    assert.equal(p1.fork('tcp').nextU32(), p2.fork('tcp').nextU32());
    assert.notEqual(p1.fork('tcp').nextU32(), p1.fork('udp').nextU32());
  });

  it('draws uniform values in range', () => {
    const r = new Rng('seed');
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
      sum += x;
      const k = r.int(6);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 6);
    }
    assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
    assert.throws(() => r.int(0), RangeError);
  });
});

describe('TraceBus', () => {
  it('delivers typed payloads to subscribers and reports whether a point is observed', () => {
    const env = new SimEnvironment();
    const tp = tracePoint<{ dom: number }>('test.point');
    assert.equal(env.trace.enabled(tp), false);
    const seen: string[] = [];
    const off = env.trace.on(tp, (t, p) => seen.push(`${t}:${p.dom}`));
    assert.equal(env.trace.enabled(tp), true);
    env.run({ until: 5 });
    env.trace.emit(tp, { dom: 3 });
    off();
    env.trace.emit(tp, { dom: 4 });
    assert.deepEqual(seen, ['5:3']);
    assert.equal(env.trace.enabled(tp), false);
  });
});

describe('SimpleCpu', () => {
  it('runs work in order and preempts lower priority work', () => {
    const env = new SimEnvironment();
    const cpu = new SimpleCpu(env);
    const done: string[] = [];
    env.process(
      (function* () {
        yield cpu.exec(100, 'user');
        done.push(`user at ${env.now}`);
      })(),
    );
    env.process(
      (function* () {
        yield env.timeout(30);
        yield cpu.exec(20, 'irq', PRIO_IRQ);
        done.push(`irq at ${env.now}`);
      })(),
    );
    env.run();
    assert.deepEqual(done, ['irq at 50', 'user at 120']);
    assert.equal(cpu.busy.user, 100);
    assert.equal(cpu.busy.irq, 20);
  });
});
