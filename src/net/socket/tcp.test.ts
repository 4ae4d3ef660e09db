import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, S, SimEnvironment, US, type ProcessGenerator } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { directPair, type DirectPair } from '../pair.js';
import { isSocketError } from './errors.js';
import type { TcpOptions, TcpSocket, TcpSocketStats } from './tcp-socket.js';

const profile = Profile.load('default');
const noHystart = profile.with({
  'net.tcp.hystartDetect': { value: 0, unit: 'count', source: 'Assumption: the test turns HyStart off (tcp_cubic hystart = 0)' },
});

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
      // Without HyStart: at this 0.2 ms RTT, Linux 3.18's ACK-train detector (ms clock,
      // threshold delay_min/2 rounding to 0 ms) ends slow start at a few dozen segments, and
      // the halving per idle RTO needs a window well above the initial one to be seen.
      const p = directPair(env, noHystart, { bandwidth: 1e9, delay: 100 * US });
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

describe('TCP slow start with HyStart', () => {
  function stream(prof: Profile): { peak: number; ssthresh: number; found: number; got: number; mss: number } {
    const env = new SimEnvironment({ seed: 7 });
    // 100 Mbit/s, RTT 10 ms: the path holds 125 kB (86 segments) and the sender's queue
    // (TCP Small Queues) 128 kB more; past that, a larger window only queues.
    const p = directPair(env, prof, { bandwidth: 1e8, delay: 5 * MS });
    const got = sink(env, p);
    let c: TcpSocket | null = null;
    env.process(
      (function* (): ProcessGenerator<void> {
        c = p.client.tcp.socket();
        ok(yield* c.connect(p.serverAddr, 80));
        ok(yield* c.send(new Uint8Array(6_000_000)));
        yield* c.close();
      })(),
    );
    let peak = 0;
    for (let t = 5 * MS; t <= 2 * S; t += 5 * MS) {
      env.run({ until: t });
      const s = c as TcpSocket | null;
      if (s !== null) peak = Math.max(peak, s.congestionWindow);
    }
    const cc = c!.tcb.cc as { ssthresh: number; hystartFound?: number };
    return { peak, ssthresh: cc.ssthresh, found: cc.hystartFound ?? -1, got: got(), mss: c!.maxSegment };
  }

  it('leaves slow start near the path capacity (ACK train) where plain slow start grows the window far past it', () => {
    const on = stream(profile);
    const off = stream(noHystart);
    assert.equal(on.got, 6_000_000);
    assert.equal(off.got, 6_000_000);
    const bdp = (1e8 * 0.01) / 8 / on.mss;
    assert.equal(on.found, 1, 'the ACK-train detector fired');
    assert.ok(on.ssthresh / on.mss > bdp / 2 && on.ssthresh / on.mss < 2 * bdp, `ssthresh ${on.ssthresh / on.mss} segments, BDP ${bdp.toFixed(0)}`);
    assert.equal(off.found, 0);
    assert.ok(off.ssthresh > 1e9, 'without HyStart slow start only ends with a loss');
    assert.ok(
      off.peak > 2 * on.ssthresh,
      `peak cwnd ${off.peak / on.mss} segments without HyStart; slow start ended at ${on.ssthresh / on.mss} with it`,
    );
    assert.ok(on.peak < off.peak, `peak cwnd ${on.peak / on.mss} segments with HyStart, ${off.peak / on.mss} without`);
  });
});

describe('TCP selective acknowledgments (RFC 2018, RFC 6675)', () => {
  it('SACK is used only when both ends offer SACK-permitted', () => {
    for (const cs of [true, false])
      for (const ss of [true, false]) {
        const env = new SimEnvironment({ seed: 2 });
        const p = directPair(env, profile, { bandwidth: 1e9, delay: 50 * US });
        let server: TcpSocket | null = null;
        let client: TcpSocket | null = null;
        env.process(
          (function* (): ProcessGenerator<void> {
            const l = ok(p.server.tcp.listen(80, { sack: ss }));
            server = ok(yield* l.accept());
          })(),
        );
        env.process(
          (function* (): ProcessGenerator<void> {
            client = p.client.tcp.socket({ sack: cs });
            ok(yield* client.connect(p.serverAddr, 80));
          })(),
        );
        env.run({ until: 10 * MS });
        assert.equal(client!.tcb.sackOk, cs && ss, `client offers ${cs}, server ${ss}`);
        assert.equal(server!.tcb.sackOk, cs && ss, `server offers ${ss}, client ${cs}`);
      }
  });

  /** TCP sequence number of an IPv4/TCP packet. */
  const seqOf = (pkt: { data: Uint8Array; l4: number }): number => new DataView(pkt.data.buffer, pkt.data.byteOffset + pkt.l4 + 4, 4).getUint32(0);

  /**
   * 300 kB over a 1 Gbit/s link with a 2 ms RTT, from a sender with `sack` on or off; the
   * client's data packets numbered in `dropNth` (first transmissions only) are dropped, and
   * with `dropFirstRetransmit` the first retransmission of the first of them too. Verifies
   * every byte and returns the sender's counters and the time it spent in recovery.
   */
  function lossyStream(sack: boolean, dropNth: readonly number[], dropFirstRetransmit = false): { stats: TcpSocketStats; recovery: number } {
    const env = new SimEnvironment({ seed: 1 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 1 * MS });
    const sent = new Set<number>();
    let data = 0;
    let firstLost = -1;
    let retransmitDropped = false;
    p.client.hooks.postRouting.add((pkt) => {
      if (pkt.length <= 200) return 'accept';
      const seq = seqOf(pkt);
      if (sent.has(seq)) {
        if (dropFirstRetransmit && seq === firstLost && !retransmitDropped) {
          retransmitDropped = true;
          return 'drop';
        }
        return 'accept';
      }
      sent.add(seq);
      if (dropNth.includes(++data)) {
        if (firstLost < 0) firstLost = seq;
        return 'drop';
      }
      return 'accept';
    });
    const total = 300_000;
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80, { sack }));
        const s = ok(yield* l.accept());
        for (;;) {
          const d = ok(yield* s.recv(1 << 20));
          if (d.length === 0) break;
          for (let i = 0; i < d.length; i++) if (d[i] !== ((got + i) * 7) % 251) assert.fail(`byte ${got + i} is wrong`);
          got += d.length;
        }
      })(),
    );
    let c: TcpSocket | null = null;
    env.process(
      (function* (): ProcessGenerator<void> {
        c = p.client.tcp.socket({ sack });
        ok(yield* c.connect(p.serverAddr, 80));
        const b = new Uint8Array(total);
        for (let i = 0; i < total; i++) b[i] = (i * 7) % 251;
        ok(yield* c.send(b));
        yield* c.close();
      })(),
    );
    let recovery = 0;
    for (let t = 0; t < 3 * S; t += 100 * US) {
      env.run({ until: t });
      if ((c as TcpSocket | null)?.tcb.inRecovery === true) recovery += 100 * US;
    }
    assert.equal(got, total);
    if (dropFirstRetransmit) assert.ok(retransmitDropped, 'the first retransmission was dropped');
    return { stats: c!.stats, recovery };
  }

  it('four losses in one window: SACK retransmits all of them within one recovery of about one RTT; NewReno takes an RTT per hole', () => {
    const drops = [30, 32, 34, 36];
    const s = lossyStream(true, drops);
    const n = lossyStream(false, drops);
    assert.deepEqual([s.stats.fastRetransmits, s.stats.timeouts, s.stats.retransSegs], [1, 0, 4]);
    assert.deepEqual([n.stats.fastRetransmits, n.stats.timeouts, n.stats.retransSegs], [1, 0, 4]);
    assert.ok(s.recovery < 3 * MS, `SACK recovery lasted ${s.recovery / MS} ms (RTT 2 ms)`);
    assert.ok(n.recovery >= 6 * MS, `NewReno recovery lasted ${n.recovery / MS} ms (RTT 2 ms)`);
  });

  it('eleven losses in a row and a lost retransmission: SACK finds the lost retransmission (tcp_mark_lost_retrans) and recovers without a timeout; NewReno waits for the RTO', () => {
    const drops = [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];
    const s = lossyStream(true, drops, true);
    const n = lossyStream(false, drops, true);
    assert.deepEqual([s.stats.fastRetransmits, s.stats.timeouts, s.stats.lostRetransmits, s.stats.retransSegs], [1, 0, 1, 12]);
    assert.ok(s.recovery < 10 * MS, `SACK recovery lasted ${s.recovery / MS} ms`);
    assert.ok(n.stats.timeouts >= 1, `NewReno: ${n.stats.timeouts} timeouts`);
  });
});
