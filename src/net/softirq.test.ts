import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, SimpleCpu, US, type ProcessGenerator } from '../sim/index.js';
import type { Napi } from './iface/device.js';
import { Packet } from './iface/packet.js';
import { NetRxSoftirq, type NetRxParams } from './softirq.js';

const PARAMS: NetRxParams = { weight: 64, budget: 300, netRxTime: 2 * MS, maxTime: 2 * MS, maxRestart: 10, maxBacklog: 1000, wakeup: 2 * US };

/** A device whose ring always holds another frame (a flood): tags each with its name. */
class FloodNapi implements Napi {
  polled = 0;
  completes = 0;
  constructor(
    readonly name: number,
    private left = Infinity,
  ) {}
  poll(): Packet | undefined {
    if (this.left <= 0) return undefined;
    this.left--;
    this.polled++;
    const p = new Packet(new Uint8Array(1));
    p.data[0] = this.name;
    return p;
  }
  complete(): void {
    this.completes++;
  }
}

function setup(perFrame: number, params: NetRxParams = PARAMS): { env: SimEnvironment; cpu: SimpleCpu; rx: NetRxSoftirq; order: number[] } {
  const env = new SimEnvironment({ seed: 1 });
  const cpu = new SimpleCpu(env, 'cpu');
  const order: number[] = [];
  const rx = new NetRxSoftirq(
    env,
    cpu,
    params,
    () => perFrame,
    (p) => order.push(p.data[0]!),
  );
  return { env, cpu, rx, order };
}

describe('NET_RX softirq (NAPI, net_rx_action, ksoftirqd)', () => {
  it('a poll that empties its ring completes it (the device may interrupt again); each frame is charged as softirq', () => {
    const { env, cpu, rx, order } = setup(1 * US);
    const dev = new FloodNapi(7, 10);
    rx.schedule(dev);
    rx.schedule(dev); // already scheduled: no second entry
    env.run();
    assert.deepEqual(order, Array(10).fill(7));
    assert.equal(dev.completes, 1);
    assert.equal(cpu.busy.softirq, 10 * US);
    assert.equal(rx.stats.processed, 10);
    assert.equal(rx.stats.timeSqueeze, 0);
    assert.equal(rx.stats.ksoftirqdWakeups, 0);
  });

  it('two flooding devices take turns of `weight` frames each (round robin on the poll list)', () => {
    const { env, rx, order } = setup(1 * US);
    rx.schedule(new FloodNapi(1));
    rx.schedule(new FloodNapi(2));
    env.run({ until: 1 * MS });
    const runs: [number, number][] = [];
    for (const n of order) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[0] === n) last[1]++;
      else runs.push([n, 1]);
    }
    assert.ok(runs.length > 10, `${runs.length} turns`);
    // Every finished turn is exactly the weight.
    for (const [, len] of runs.slice(0, -1)) assert.equal(len, 64);
  });

  it('a flood exhausts the budget, restarts up to MAX_SOFTIRQ_RESTART passes, then hands over to ksoftirqd; an application still runs', () => {
    const { env, cpu, rx } = setup(1 * US);
    rx.schedule(new FloodNapi(1));
    // The application: a task doing system calls of 10 µs each.
    let calls = 0;
    function* app(): ProcessGenerator<void> {
      for (;;) {
        yield cpu.exec(10 * US, 'kernel');
        calls++;
      }
    }
    env.process(app());
    // Passes of 1 µs frames: a poll takes its whole weight even past the budget (as Linux 3.x
    // net_rx_action), so a pass is 5 polls, 320 frames. __do_softirq restarts passes until
    // MAX_SOFTIRQ_TIME (2 ms, before MAX_SOFTIRQ_RESTART's 10), all in softirq context.
    env.run({ until: 1900 * US });
    assert.equal(calls, 0, 'softirq context starves tasks');
    assert.equal(rx.inKsoftirqd, false);
    env.run({ until: 2300 * US });
    assert.equal(rx.stats.ksoftirqdWakeups, 1);
    assert.ok(rx.inKsoftirqd);
    assert.equal(rx.stats.timeSqueeze, 7, 'passes ended with work left');
    const handedOver = rx.stats.processed;
    assert.ok(handedOver >= 7 * 320 && handedOver <= 7 * 320 + 60, `${handedOver} frames before ksoftirqd`);
    env.run({ until: 20 * MS });
    // In ksoftirqd the flood takes turns with the application's system calls instead of
    // starving them, and keeps draining.
    assert.ok(calls > 500, `${calls} system calls in 18 ms`);
    assert.ok(rx.stats.processed - handedOver > 1000, `${rx.stats.processed - handedOver} frames in ksoftirqd`);
    assert.equal(rx.stats.ksoftirqdWakeups, 1, 'it stays in ksoftirqd while work is left');
  });

  it('net_rx_action checks its time limit between polls: one 64-frame poll of 50 µs frames ends the pass and the softirq run', () => {
    const { env, rx } = setup(50 * US);
    rx.schedule(new FloodNapi(1));
    env.run({ until: 64 * 50 * US - 1 });
    assert.equal(rx.stats.timeSqueeze, 0);
    env.run({ until: 64 * 50 * US + 1 });
    assert.equal(rx.stats.processed, 64);
    assert.equal(rx.stats.timeSqueeze, 1);
    assert.equal(rx.stats.ksoftirqdWakeups, 1);
  });

  it('netif_rx queues to a backlog of netdev_max_backlog frames and drops (counted) beyond it', () => {
    const { env, rx, order } = setup(1 * US, { ...PARAMS, maxBacklog: 5 });
    const accepted: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const p = new Packet(new Uint8Array(1));
      p.data[0] = i;
      accepted.push(rx.netifRx(p));
    }
    // The softirq is raised by the first frame and takes it off the backlog at once, so five
    // more fit before the backlog is full.
    assert.deepEqual(accepted, [true, true, true, true, true, true, false, false]);
    assert.equal(rx.stats.dropped, 2);
    env.run();
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    assert.equal(rx.backlogLength, 0);
  });
});
