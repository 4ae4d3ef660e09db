import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment } from './environment.js';
import { KernelThread, ThreadCpu } from './threads.js';
import { SimpleCpu } from './work.js';

describe('kernel threads on one CPU', () => {
  it('pay a context switch when another thread ran last, and a wake-up after sleeping', () => {
    const env = new SimEnvironment({ seed: 1 });
    const cpu = new SimpleCpu(env);
    const tc = new ThreadCpu(cpu, { contextSwitch: 100, wakeup: 1000 });
    const a = new KernelThread(env, 'a', tc);
    const b = new KernelThread(env, 'b', tc);
    const done: [string, number][] = [];
    env.process(
      (function* () {
        yield a.exec(10); // first thread on the CPU: no switch
        done.push(['a1', env.now]);
        yield a.exec(10); // same thread again: no switch
        done.push(['a2', env.now]);
        yield b.exec(10); // a → b
        done.push(['b1', env.now]);
        const s = b.sleep();
        assert.ok(s !== null);
        a.exec(0);
        b.wake();
        yield s;
        yield b.exec(10); // woken (1000), and a ran in between (100)
        done.push(['b2', env.now]);
      })(),
    );
    env.run();
    assert.deepEqual(done, [
      ['a1', 10],
      ['a2', 20],
      ['b1', 130],
      ['b2', 130 + 100 + 1000 + 10 + 100],
    ]);
    assert.equal(tc.switches, 3);
    assert.equal(b.wakeups, 1);
  });

  it('a wake-up while running is not lost: the next sleep returns at once, and costs nothing', () => {
    const env = new SimEnvironment({ seed: 1 });
    const t = new KernelThread(env, 't', new ThreadCpu(new SimpleCpu(env), { contextSwitch: 100, wakeup: 1000 }));
    t.wake();
    assert.equal(t.sleep(), null);
    assert.notEqual(t.sleep(), null, 'one wake-up, one pass');
    assert.equal(t.wakeups, 0);
  });
});
