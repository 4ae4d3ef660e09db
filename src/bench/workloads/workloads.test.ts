import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, US } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { directPair, type DirectPairOptions } from '../../net/pair.js';
import { PcapWriter } from '../../net/iface/pcap.js';
import { ping, tcpCrr, tcpRr, tcpStream, udpRr, udpStream, checkPattern, fillPattern, type Endpoints } from './index.js';

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

  it('stays byte-exact with reordering', () => {
    const { env, ends, pair } = setup(3, { bandwidth: GBIT, delay: 50 * US, reorder: 0.02, reorderDelay: 30 * US });
    const p = tcpStream(env, ends, { bytes: 10_000_000 });
    env.run({ until: p });
    assert.equal(p.value.bytesVerified, 10_000_000);
    assert.ok(pair.link.a.stats.reordered > 50);
    assert.ok(pair.server.tcp.stats.segsOut > 0);
  });
});

describe('TCP throughput approaches min(B, window/RTT)', () => {
  // Payload rate of a link of B bits/s carrying 1448-byte segments in 1514-byte frames
  // (plus 24 bytes of Ethernet overhead configured on the link).
  const goodput = (b: number): number => (b * 1448) / (1514 + 24) / 1e6;
  for (const c of [
    { name: 'bandwidth-limited: 1 Gbit/s, RTT 200 us, autotuned buffers', bw: GBIT, delay: 100 * US, rcvbuf: undefined, expect: goodput(GBIT) },
    { name: 'window-limited: 10 Gbit/s, RTT 1 ms, 64 KiB receive window', bw: 10 * GBIT, delay: 500 * US, rcvbuf: 131072, expect: (65536 * 8) / 1e-3 / 1e6 },
    { name: 'window-limited: 1 Gbit/s, RTT 10 ms, 128 KiB receive window', bw: GBIT, delay: 5 * MS, rcvbuf: 262144, expect: (131072 * 8) / 10e-3 / 1e6 },
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
