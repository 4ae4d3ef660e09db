import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, S, SimEnvironment, US, type ProcessGenerator } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { directPair, type DirectPair } from '../pair.js';
import { isSocketError } from './errors.js';
import type { TcpOptions, TcpSocket } from './tcp-socket.js';

const profile = Profile.load('default');

function ok<T>(v: T): Exclude<T, { code: string; message: string }> {
  if (isSocketError(v)) assert.fail(v.toString());
  return v as Exclude<T, { code: string; message: string }>;
}

/** A receiver on port 80 that reads until EOF; returns a getter of the bytes received. */
function sink(env: SimEnvironment, p: DirectPair, opts: TcpOptions = {}): () => number {
  let got = 0;
  env.process(
    (function* (): ProcessGenerator<void> {
      const l = ok(p.server.tcp.listen(80, opts));
      const s = ok(yield* l.accept());
      for (;;) {
        const d = ok(yield* s.recv(1 << 20));
        if (d.length === 0) break;
        got += d.length;
      }
    })(),
  );
  return () => got;
}

describe('TCP loss recovery', () => {
  it('fast-retransmits the first loss of a connection whatever its ISS (RFC 6582: recover starts at the ISS)', () => {
    let high = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const env = new SimEnvironment({ seed });
      const p = directPair(env, profile, { bandwidth: 1e9, delay: 50 * US });
      let data = 0;
      p.client.hooks.postRouting.add((pkt) => (pkt.length > 200 && ++data === 30 ? 'drop' : 'accept'));
      const got = sink(env, p);
      let c: TcpSocket | null = null;
      env.process(
        (function* (): ProcessGenerator<void> {
          c = p.client.tcp.socket();
          ok(yield* c.connect(p.serverAddr, 80));
          ok(yield* c.send(new Uint8Array(300_000)));
          yield* c.close();
        })(),
      );
      env.run({ until: 1 * S });
      if (c!.tcb.iss >= 2 ** 31) high++;
      assert.equal(got(), 300_000);
      assert.deepEqual([c!.stats.fastRetransmits, c!.stats.timeouts], [1, 0], `seed ${seed} (ISS ${c!.tcb.iss.toString(16)})`);
    }
    assert.ok(high >= 2, `the seeds cover ISS >= 2^31 (${high} of 8)`);
  });

  for (const congestion of ['cubic', 'reno'] as const) {
    it(`${congestion}: after a 2 s outage (three RTOs) ssthresh keeps its first reduction and the transfer is back at line rate within 1 s of the next retransmission`, () => {
      const env = new SimEnvironment({ seed: 4 });
      const p = directPair(env, profile, { bandwidth: 1e8, delay: 5 * MS });
      let black = false;
      p.client.hooks.postRouting.add(() => (black ? 'drop' : 'accept'));
      const got = sink(env, p);
      let c: TcpSocket | null = null;
      env.process(
        (function* (): ProcessGenerator<void> {
          c = p.client.tcp.socket({ congestion });
          ok(yield* c.connect(p.serverAddr, 80));
          const b = new Uint8Array(1 << 16);
          while (env.now < 7 * S) ok(yield* c.send(b));
        })(),
      );
      env.run({ until: 1000 * MS });
      const cwndBefore = c!.congestionWindow;
      black = true;
      env.run({ until: 3000 * MS });
      black = false;
      const timeouts = c!.stats.timeouts;
      assert.ok(timeouts >= 3, `${timeouts} timeouts during the outage`);
      const ssthresh = c!.tcb.cc.ssthresh;
      // The first timeout's reduction (0.7 cwnd for CUBIC, half the flight for Reno), not 2 segments.
      assert.ok(ssthresh >= 0.4 * cwndBefore, `ssthresh ${ssthresh} after a cwnd of ${cwndBefore}`);
      // The next (backed-off) retransmission gets through; measure from half a second after it.
      while (c!.stats.timeouts === timeouts && env.now < 10 * S) env.run({ until: env.now + 10 * MS });
      const healed = env.now;
      env.run({ until: healed + 500 * MS });
      const r0 = got();
      env.run({ until: healed + 1000 * MS });
      const mbps = ((got() - r0) * 8) / 0.5 / 1e6;
      assert.ok(mbps > 80, `${mbps.toFixed(0)} Mbit/s in the second half second after the outage`);
    });
  }

  for (const timestamps of [true, false]) {
    it(`after an outage the backed-off RTO ${timestamps ? 'is recomputed from the first ACK of the retransmission (TSecr, RFC 7323 4.1)' : 'stays until a segment sent once is timed (Karn)'}`, () => {
      const env = new SimEnvironment({ seed: 5 });
      const p = directPair(env, profile, { bandwidth: 1e8, delay: 5 * MS });
      let black = false;
      p.client.hooks.postRouting.add(() => (black ? 'drop' : 'accept'));
      sink(env, p, { timestamps });
      let c: TcpSocket | null = null;
      env.process(
        (function* (): ProcessGenerator<void> {
          c = p.client.tcp.socket({ timestamps });
          ok(yield* c.connect(p.serverAddr, 80));
          const b = new Uint8Array(1 << 16);
          while (env.now < 5 * S) ok(yield* c.send(b));
        })(),
      );
      env.run({ until: 500 * MS });
      const rto0 = c!.retransmissionTimeout;
      assert.ok(rto0 < 300 * MS, `RTO ${rto0 / MS} ms before the outage`);
      black = true;
      env.run({ until: 2000 * MS });
      black = false;
      const timeouts = c!.stats.timeouts;
      assert.ok(timeouts >= 2 && c!.retransmissionTimeout >= 800 * MS, `${timeouts} timeouts, RTO ${c!.retransmissionTimeout / MS} ms`);
      while (c!.stats.timeouts === timeouts && env.now < 10 * S) env.run({ until: env.now + 1 * MS });
      env.run({ until: env.now + 15 * MS }); // the retransmission's ACK is back (RTT 10 ms)
      const rto = c!.retransmissionTimeout;
      if (timestamps) assert.ok(rto < 300 * MS, `RTO ${rto / MS} ms after the first ACK`);
      else assert.ok(rto >= 800 * MS, `RTO ${rto / MS} ms: no valid sample yet`);
    });
  }
});

describe('TCP congestion window after idle', () => {
  for (const idleMs of [100, 1000]) {
    it(`${idleMs > 250 ? 'restarts from a window halved per RTO idle' : 'is kept'} after ${idleMs} ms without data (tcp_slow_start_after_idle, RTO about 200 ms)`, () => {
      const env = new SimEnvironment({ seed: 6 });
      const p = directPair(env, profile, { bandwidth: 1e9, delay: 100 * US });
      sink(env, p);
      let before = 0;
      let after = 0;
      let c: TcpSocket | null = null;
      env.process(
        (function* (): ProcessGenerator<void> {
          c = p.client.tcp.socket();
          ok(yield* c.connect(p.serverAddr, 80));
          ok(yield* c.send(new Uint8Array(3_000_000)));
          yield env.timeout(50 * MS); // all acknowledged
          before = c.congestionWindow;
          yield env.timeout(idleMs * MS);
          ok(yield* c.send(new Uint8Array(1000)));
          after = c.congestionWindow;
        })(),
      );
      env.run({ until: 3 * S });
      const initial = 10 * c!.maxSegment;
      assert.ok(before > 8 * initial, `cwnd ${before / c!.maxSegment} segments after the bulk transfer`);
      if (idleMs > 250)
        assert.ok(
          after <= Math.max(initial, before / 8) && after >= initial,
          `cwnd ${after / c!.maxSegment} segments after idling (was ${before / c!.maxSegment})`,
        );
      else assert.equal(after, before);
    });
  }
});

describe('TCP ACK policy', () => {
  it('the reader draining a small pushed segment ACKs it at once (tcp_cleanup_rbuf, ICSK_ACK_PUSHED), so Nagle does not hold the next write', () => {
    const env = new SimEnvironment({ seed: 3 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 50 * US });
    const sentAt: number[] = [];
    const latency: number[] = [];
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80));
        const s = ok(yield* l.accept());
        for (;;) {
          const d = ok(yield* s.recv(1 << 20));
          if (d.length === 0) break;
          for (let i = 0; i < d.length; i += 100) latency.push(env.now - sentAt[(got + i) / 100]!);
          got += d.length;
        }
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const c = p.client.tcp.socket();
        ok(yield* c.connect(p.serverAddr, 80));
        for (let i = 0; i < 40; i++) {
          yield env.timeout(10 * MS);
          sentAt.push(env.now);
          ok(yield* c.send(new Uint8Array(100)));
        }
      })(),
    );
    env.run({ until: 1 * S });
    assert.equal(latency.length, 40);
    // Past the 16 quick ACKs of the start, too: one-way delivery stays at wire + stack time.
    assert.ok(Math.max(...latency) < 1 * MS, `worst one-way delivery ${Math.max(...latency) / MS} ms`);
  });
});
