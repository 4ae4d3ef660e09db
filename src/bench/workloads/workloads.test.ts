import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, US } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { directPair, type DirectPairOptions } from '../../net/pair.js';
import { PcapWriter } from '../../net/iface/pcap.js';
import { PacketBuffer, type PacketMemory } from '../../net/iface/packet.js';
import {
  LatencyRecorder,
  ping,
  tcpCrr,
  tcpRr,
  tcpStream,
  udpRr,
  udpStream,
  checkPattern,
  fillPattern,
  patternByte,
  type Endpoints,
} from './index.js';

const profile = Profile.load('default');
const GBIT = 1e9;

function setup(seed: number, link: DirectPairOptions): { env: SimEnvironment; ends: Endpoints; pair: ReturnType<typeof directPair> } {
  const env = new SimEnvironment({ seed });
  const pair = directPair(env, profile, link);
  return { env, ends: { client: pair.client, server: pair.server, serverAddr: pair.serverAddr }, pair };
}

describe('content pattern', () => {
  it('catches a corrupted, shifted or swapped byte', () => {
    const b = new Uint8Array(1000);
    fillPattern(b, 12345, 7);
    assert.equal(checkPattern(b, 12345, 7), -1);
    assert.notEqual(checkPattern(b, 12346, 7), -1, 'shifted by one');
    assert.notEqual(checkPattern(b, 12345 + 4096, 7), -1, 'shifted by a page');
    b[500] = b[500]! ^ 1;
    assert.equal(checkPattern(b, 12345, 7), 500);
  });

  it('fills any slice byte for byte as the pattern defines it, and finds the first broken byte', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 34 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer(),
        fc.nat(),
        fc.nat(),
        (off, shift, len, salt, flip, flip2) => {
          const b = new Uint8Array(len + 8).subarray(shift, shift + len);
          fillPattern(b, off, salt);
          for (let i = 0; i < len; i++) assert.equal(b[i], patternByte(off + i, salt), `byte ${i}`);
          assert.equal(checkPattern(b, off, salt), -1);
          if (len > 0) {
            const at = flip % len;
            const at2 = flip2 % len;
            b[at] = b[at]! ^ 0x80;
            if (at2 !== at) b[at2] = b[at2]! ^ 0x01;
            const copy = b.slice();
            assert.equal(checkPattern(b, off, salt), Math.min(at, at2));
            assert.deepEqual(b, copy, 'checking leaves the buffer as it was');
          }
        },
      ),
    );
  });

  it('catches a run shifted by the table period, a block moved, and a foreign salt', () => {
    const len = 200_000;
    const b = new Uint8Array(len);
    fillPattern(b, 0, 9);
    const shifted = new Uint8Array(len);
    fillPattern(shifted, 65521, 9); // the same table bytes: only the stamps differ
    assert.notEqual(checkPattern(shifted, 0, 9), -1);
    const moved = b.slice();
    moved.copyWithin(64, 128, 192); // block 2 duplicated over block 1
    assert.equal(checkPattern(moved, 0, 9), 64);
    assert.equal(checkPattern(b, 0, 10), 0, 'another stream salt');
  });
});

describe('TCP over a direct link', () => {
  it('moves 100 MB byte-exact (handshake, bulk, close)', () => {
    const { env, ends, pair } = setup(1, { bandwidth: 10 * GBIT, delay: 20 * US });
    const p = tcpStream(env, ends, { bytes: 100_000_000, messageSize: 65536, warmupBytes: 10_000_000 });
    env.run({ until: p });
    const r = p.value;
    assert.equal(r.bytesVerified, 100_000_000);
    assert.equal(r.retransmissions, 0);
    assert.ok(r.throughputMbps > 1000, `throughput ${r.throughputMbps}`);
    env.run({ until: env.now + 61_000 * MS }); // TIME_WAIT passes
    assert.equal(pair.client.tcp.connections, 0);
    assert.equal(pair.server.tcp.connections, 0);
  });

  it('stays byte-exact with 1% seeded loss, and counts retransmissions', () => {
    const { env, ends, pair } = setup(2, { bandwidth: GBIT, delay: 50 * US, loss: 0.01 });
    const p = tcpStream(env, ends, { bytes: 10_000_000 });
    env.run({ until: p });
    assert.equal(p.value.bytesVerified, 10_000_000);
    const lostData = pair.link.a.stats.lost;
    assert.ok(lostData > 30, `lost ${lostData}`);
    assert.ok(pair.client.tcp.stats.retransSegs >= lostData, `retransmitted ${pair.client.tcp.stats.retransSegs} for ${lostData} lost`);
    assert.ok(pair.client.tcp.stats.fastRetransmits > 0);
  });

  it('stays byte-exact with reordering; displacement under three segments costs nothing, more is retransmitted (spuriously) and counted', () => {
    // 1 Gbit/s: a 1514-byte frame every ~12 us. Held back 30 us, a frame arrives two later
    // (two duplicate ACKs); held back 150 us, a dozen later: three duplicate ACKs trigger a
    // fast retransmit of data that was not lost.
    const run = (reorderDelay: number): { retrans: number; fast: number; reordered: number; counted: number } => {
      const { env, ends, pair } = setup(3, { bandwidth: GBIT, delay: 50 * US, reorder: 0.02, reorderDelay });
      const p = tcpStream(env, ends, { bytes: 10_000_000 });
      env.run({ until: p });
      assert.equal(p.value.bytesVerified, 10_000_000);
      assert.equal(pair.link.a.stats.lost, 0);
      return {
        retrans: pair.client.tcp.stats.retransSegs,
        fast: pair.client.tcp.stats.fastRetransmits,
        reordered: pair.link.a.stats.reordered,
        counted: p.value.retransmissions,
      };
    };
    const near = run(30 * US);
    assert.ok(near.reordered > 50, `${near.reordered} reordered`);
    assert.equal(near.retrans, 0);
    const far = run(150 * US);
    assert.ok(far.reordered > 50, `${far.reordered} reordered`);
    assert.ok(far.fast > 10, `${far.fast} fast retransmits`);
    assert.ok(far.retrans >= far.fast);
    assert.equal(far.counted, far.retrans, 'the workload reports what the stack counted');
  });
});

describe('TCP with NIC offloads over a direct link', () => {
  it('TSO and LRO: byte-exact, frames within the MTU on the wire, merged at the receiver, fewer packets through its stack', () => {
    const run = (features: NonNullable<DirectPairOptions['features']>): { pair: ReturnType<typeof directPair>; mbps: number } => {
      const { env, ends, pair } = setup(4, { bandwidth: 10 * GBIT, delay: 20 * US, features });
      const p = tcpStream(env, ends, { bytes: 20_000_000, messageSize: 65536 });
      env.run({ until: p });
      assert.equal(p.value.bytesVerified, 20_000_000);
      return { pair, mbps: p.value.throughputMbps };
    };
    const plain = run({});
    const off = run({ txCsum: true, rxCsum: true, sg: true, tso: true, lro: true });
    const a = off.pair.link.a.stats;
    assert.ok(off.pair.clientIf.features.tso);
    assert.ok(a.frames >= 20_000_000 / 1448, `${a.frames} wire frames for 20 MB`);
    assert.ok(a.bytes / a.frames <= 1514, 'no frame above the MTU');
    assert.ok(off.pair.link.b.stats.lroMerged > a.frames / 4, `${off.pair.link.b.stats.lroMerged} merged of ${a.frames}`);
    assert.ok(
      off.pair.server.softirq.stats.processed < plain.pair.server.softirq.stats.processed * 0.8,
      `${off.pair.server.softirq.stats.processed} packets through the receiver's stack, ${plain.pair.server.softirq.stats.processed} without offloads`,
    );
    assert.ok(off.mbps > plain.mbps, `${off.mbps} Mbit/s with offloads, ${plain.mbps} without`);
  });
});

describe('TCP throughput approaches min(B, window/RTT)', () => {
  // Payload rate of a link of B bits/s carrying 1448-byte segments in 1514-byte frames
  // (plus 24 bytes of Ethernet overhead configured on the link).
  const goodput = (b: number): number => (b * 1448) / (1514 + 24) / 1e6;
  for (const c of [
    { name: 'bandwidth-limited: 1 Gbit/s, RTT 200 us, autotuned buffers', bw: GBIT, delay: 100 * US, rcvbuf: undefined, expect: goodput(GBIT) },
    {
      name: 'window-limited: 10 Gbit/s, RTT 1 ms, 64 KiB receive window',
      bw: 10 * GBIT,
      delay: 500 * US,
      rcvbuf: 131072,
      expect: (65536 * 8) / 1e-3 / 1e6,
    },
    {
      name: 'window-limited: 1 Gbit/s, RTT 10 ms, 128 KiB receive window',
      bw: GBIT,
      delay: 5 * MS,
      rcvbuf: 262144,
      expect: (131072 * 8) / 10e-3 / 1e6,
    },
  ]) {
    it(`${c.name}: within 10% below the bound, never above it`, () => {
      const { env, ends } = setup(10, { bandwidth: c.bw, delay: c.delay, frameOverhead: 24 });
      const tcp = c.rcvbuf !== undefined ? { rcvbuf: c.rcvbuf } : {};
      const p = tcpStream(env, ends, { timing: { warmup: 100 * MS, duration: 200 * MS }, messageSize: 65536, tcp });
      env.run({ until: p });
      const got = p.value.throughputMbps;
      const bound = Math.min(goodput(c.bw), c.expect);
      assert.ok(got <= bound * 1.01, `${got.toFixed(1)} Mbit/s exceeds the bound ${bound.toFixed(1)}`);
      assert.ok(got >= bound * 0.9, `${got.toFixed(1)} Mbit/s is more than 10% below the bound ${bound.toFixed(1)}`);
    });
  }
});

describe('delayed ACK and Nagle (request written in two pieces)', () => {
  const run = (nodelay: boolean): number => {
    const { env, ends } = setup(20, { bandwidth: 10 * GBIT, delay: 10 * US });
    const p = tcpRr(env, ends, {
      requestSize: 200,
      responseSize: 200,
      requestWrites: 2,
      tcp: { nodelay },
      timing: { warmup: 1000 * MS, duration: nodelay ? 100 * MS : 1000 * MS },
    });
    env.run({ until: p });
    assert.ok(p.value.transactions > 0);
    return p.value.latency.p50;
  };
  it('with Nagle, the second piece waits for the delayed ACK of the first (about 40 ms, TCP_DELACK_MIN)', () => {
    const p50 = run(false);
    assert.ok(p50 >= 35 * MS && p50 <= 45 * MS, `p50 ${p50 / MS} ms`);
  });
  it('TCP_NODELAY removes the wait (tens of microseconds)', () => {
    const p50 = run(true);
    assert.ok(p50 < 200 * US, `p50 ${p50 / US} us`);
  });
});

describe('every workload runs and verifies its data', () => {
  const link: DirectPairOptions = { bandwidth: 10 * GBIT, delay: 5 * US };
  const timing = { warmup: 2 * MS, duration: 20 * MS };
  it('tcp_rr: transactions/s and latency', () => {
    const { env, ends } = setup(30, link);
    const p = tcpRr(env, ends, { requestSize: 1, responseSize: 1, timing });
    env.run({ until: p });
    const r = p.value;
    assert.ok(r.transactions > 100);
    assert.ok(r.latency.p50 > 10 * US && r.latency.p50 < 100 * US, `p50 ${r.latency.p50}`);
    assert.ok(Math.abs(r.transactionsPerSecond - 1e9 / r.latency.mean) / r.transactionsPerSecond < 0.05);
    assert.ok(r.latency.p999 >= r.latency.p99 && r.latency.p99 >= r.latency.p50);
  });
  it('tcp_crr: a connection per transaction', () => {
    const { env, ends, pair } = setup(31, link);
    const p = tcpCrr(env, ends, { requestSize: 64, responseSize: 1024, timing });
    env.run({ until: p });
    assert.ok(p.value.transactions > 50);
    assert.ok(pair.client.tcp.stats.activeOpens >= p.value.transactions);
    assert.ok(p.value.latency.p50 > 2 * tcpRrFloor(), 'a connection costs more than a round trip');
  });
  it('tcp_crr keeps going when its client ports come round while their last connections are in TIME_WAIT (netperf binds each one)', () => {
    const { env, ends, pair } = setup(36, link);
    const p = tcpCrr(env, ends, { requestSize: 64, responseSize: 64, timing, clientPortMin: 5000, clientPortMax: 5040 });
    env.run({ until: p });
    assert.ok(p.value.transactions > 80, `${p.value.transactions} transactions over 40 ports`);
    assert.ok(pair.client.tcp.stats.timeWaitReused >= p.value.transactions - 40, `${pair.client.tcp.stats.timeWaitReused} TIME_WAIT take-overs`);
    assert.ok(pair.client.tcp.connections <= 41, 'one connection per port at most');
  });
  it('udp_rr', () => {
    const { env, ends } = setup(32, link);
    const p = udpRr(env, ends, { requestSize: 64, responseSize: 64, timing });
    env.run({ until: p });
    assert.ok(p.value.transactions > 100);
    assert.equal(p.value.stalled, false);
  });
  it('udp_rr on a lossy path stalls at the first lost datagram until the test time ends, and says so', () => {
    const { env, ends, pair } = setup(38, { ...link, loss: 0.0005 }); // a seed whose first loss comes after the warm-up
    const p = udpRr(env, ends, { requestSize: 64, responseSize: 64, timing });
    env.run({ until: p });
    const r = p.value;
    assert.equal(r.stalled, true);
    assert.equal(pair.link.a.stats.lost + pair.link.b.stats.lost, 1, 'it stopped at the first loss');
    assert.ok(env.now >= timing.warmup + 2 * timing.duration, 'it waited past the end of the test');
    assert.ok(r.transactions > 0, 'the transactions before the loss count');
  });
  it('udp_stream: receiver-side throughput, no loss on a clean link', () => {
    const { env, ends } = setup(33, { bandwidth: GBIT, delay: 5 * US });
    const p = udpStream(env, ends, { messageSize: 1472, timing });
    env.run({ until: p });
    const r = p.value;
    assert.ok(r.receivedMessages > 100);
    assert.ok(r.throughputMbps > 500 && r.throughputMbps < 1000, `${r.throughputMbps}`);
    assert.equal(r.reordered, 0);
    assert.equal(r.lostMessages, 0);
  });
  it('udp_stream with messages larger than the MTU: reassembled; a lost fragment loses the message', () => {
    const { env, ends, pair } = setup(34, { bandwidth: GBIT, delay: 5 * US, loss: 0.01 });
    const p = udpStream(env, ends, { messageSize: 8000, timing });
    env.run({ until: p });
    const r = p.value;
    assert.ok(r.receivedMessages > 50);
    assert.ok(pair.server.reassembler.stats.reassembled >= r.receivedMessages);
    assert.ok(pair.link.a.stats.lost > 0);
    assert.ok(r.lostMessages > 0, 'lost fragments lost messages');
    assert.ok(r.lostMessages <= pair.link.a.stats.lost);
  });
  it('ping: round-trip times', () => {
    const { env, ends } = setup(35, link);
    const p = ping(env, ends, { count: 50, size: 56 });
    env.run({ until: p });
    assert.equal(p.value.received, 53);
    assert.equal(p.value.rtt.count, 50);
    assert.ok(p.value.rtt.p50 > 10 * US && p.value.rtt.p50 < 100 * US);
  });
});

function tcpRrFloor(): number {
  return 10 * US;
}

describe('determinism', () => {
  it('the same seed gives a byte-identical capture and result', () => {
    const once = (): { pcap: Uint8Array; result: string } => {
      const writer = new PcapWriter();
      const env = new SimEnvironment({ seed: 99 });
      const pair = directPair(env, profile, { bandwidth: GBIT, delay: 50 * US, loss: 0.01, reorder: 0.01, reorderDelay: 20 * US, pcap: writer });
      const p = tcpStream(env, { client: pair.client, server: pair.server, serverAddr: pair.serverAddr }, { bytes: 2_000_000 });
      env.run({ until: p });
      return { pcap: writer.bytes(), result: JSON.stringify({ r: p.value, now: env.now, c: pair.client.tcp.stats, s: pair.server.tcp.stats }) };
    };
    const a = once();
    const b = once();
    assert.equal(a.result, b.result);
    assert.ok(a.pcap.length > 100_000);
    assert.deepEqual(Buffer.compare(Buffer.from(a.pcap), Buffer.from(b.pcap)), 0);
  });
});

/**
 * A pool that reuses freed buffers at once and scribbles over them when they are freed, so a
 * layer that reads bytes after letting go of them (or frees them twice, or never) is caught:
 * by the byte-exact checks of the workloads, or by the count of buffers still out.
 */
class ScribblingPool implements PacketMemory {
  readonly domid = -1;
  out = 0;
  allocs = 0;
  readonly free: Uint8Array[] = [];
  alloc(len: number): PacketBuffer {
    this.allocs++;
    this.out++;
    const i = this.free.findIndex((b) => b.length >= len);
    const bytes = i >= 0 ? this.free.splice(i, 1)[0]! : new Uint8Array(Math.max(len, 2048));
    bytes.fill(0);
    return new ScribbledBuffer(bytes, this);
  }
}

class ScribbledBuffer extends PacketBuffer {
  readonly domid = -1;
  readonly gfn = -1;
  readonly offset = 0;
  constructor(
    readonly bytes: Uint8Array,
    private readonly pool: ScribblingPool,
  ) {
    super();
  }
  protected recycle(): void {
    this.pool.out--;
    this.bytes.fill(0xa5);
    this.pool.free.push(this.bytes);
  }
}

describe('packet buffers', () => {
  it('every workload returns every buffer it was given, and none is read after it was freed', () => {
    const client = new ScribblingPool();
    const server = new ScribblingPool();
    const { env, ends, pair } = setup(21, {
      bandwidth: GBIT,
      delay: 30 * US,
      loss: 0.01,
      reorder: 0.01,
      reorderDelay: 200 * US,
      memory: { client, server },
    });
    const t = { warmup: 5 * MS, duration: 20 * MS };
    const stream = tcpStream(env, ends, { bytes: 3_000_000, messageSize: 65536 });
    env.run({ until: stream });
    assert.equal(stream.value.bytesVerified, 3_000_000);
    assert.ok(pair.link.a.stats.lost > 0, 'loss exercised the out-of-order queue');
    for (const p of [
      () => udpStream(env, ends, { messageSize: 1400, timing: t }),
      () => tcpRr(env, ends, { timing: t }),
      () => udpRr(env, ends, { timing: t }),
      () => ping(env, ends, { count: 20 }),
    ]) {
      const run = p();
      env.run({ until: run });
    }
    env.run({ until: env.now + 61_000 * MS }); // TIME_WAIT passes, every socket is gone
    assert.equal(pair.client.tcp.connections, 0);
    assert.ok(client.allocs > 1000 && server.allocs > 1000, `allocations ${client.allocs}/${server.allocs}`);
    assert.equal(client.out, 0, 'client buffers still out');
    assert.equal(server.out, 0, 'server buffers still out');
  });
});

describe('LatencyRecorder', () => {
  it('the mean is exact and every percentile lies between the smallest and the largest sample', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 10_000_000 }), { minLength: 1, maxLength: 200 }), (xs) => {
        const r = new LatencyRecorder();
        for (const x of xs) r.record(x);
        const s = r.summary();
        const lo = Math.min(...xs);
        const hi = Math.max(...xs);
        assert.equal(s.min, lo);
        assert.equal(s.max, hi);
        assert.ok(Math.abs(s.mean - xs.reduce((a, b) => a + b, 0) / xs.length) < 1e-6);
        assert.ok(lo <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= hi, JSON.stringify(s));
      }),
      { numRuns: 300 },
    );
  });
});
