import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MovableCpu, SimEnvironment, SimpleCpu } from './index.js';

describe('MovableCpu', () => {
  it('runs work on the CPU it is bound to; after rebind, new work runs on the new one', () => {
    const env = new SimEnvironment({ seed: 1 });
    const a = new SimpleCpu(env, 'a');
    const b = new SimpleCpu(env, 'b');
    const m = new MovableCpu(a);
    const w1 = m.exec(100, 'kernel');
    m.rebind(b);
    const w2 = m.exec(50, 'user');
    env.run();
    assert.ok(w1.ok && w2.ok);
    assert.equal(a.busy.kernel, 100);
    assert.equal(b.busy.user, 50);
    assert.equal(m.current, b);
  });
});
