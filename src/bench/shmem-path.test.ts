/**
 * The shmem baseline end to end (src/vnet/shmem): two co-resident guests with shmem NICs, the
 * five workloads byte-exact through the FIFOs, and what the design says of it — two copies
 * per frame, both memcpys by the guests on their own vCPUs (no grant copy, no Dom0), the
 * payload passing through pages both guests can access; back-pressure, not loss, when a
 * FIFO is full; a denied pair on pv; determinism. (Here because the host build and the
 * workloads sit above vnet.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import { type Hv2mPolicy, type ShmemNic } from '../vnet/index.js';
import { FIFO_CONS_EVENT, FIFO_PROD, FIFO_PROD_EVENT, REC_HEADER } from '../vnet/shmem/index.js';
import { Host, type Guest } from '../host/index.js';
import { runCase } from './experiment.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

interface Built {
  env: SimEnvironment;
  host: Host;
  ends: Endpoints;
  a: Guest;
  b: Guest;
  na: ShmemNic;
  nb: ShmemNic;
}

function build(
  type: 'hvm' | 'pv',
  opts: {
    seed?: number;
    tenantB?: string;
    options?: Record<string, unknown>;
    pinning?: number[];
    policy?: unknown;
    pathB?: string;
    third?: boolean;
  } = {},
): Built {
  const env = new SimEnvironment({ seed: opts.seed ?? 3 });
  const nic = (i: number) => ({
    path: i === 2 && opts.pathB !== undefined ? opts.pathB : 'shmem',
    mac: `00:16:3e:00:00:0${i}`,
    ip: `10.0.0.${i}/24`,
    ...(opts.options !== undefined ? { options: opts.options } : {}),
  });
  const guests = [
    { name: 'a', type, tenant: 't', nics: [nic(1)], ...(opts.pinning !== undefined ? { pinning: opts.pinning } : {}) },
    { name: 'b', type, tenant: opts.tenantB ?? 't', nics: [nic(2)], ...(opts.pinning !== undefined ? { pinning: opts.pinning } : {}) },
    ...(opts.third === true ? [{ name: 'c', type, tenant: 't', nics: [nic(3)] }] : []),
  ];
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      ...(opts.policy !== undefined ? { hv2m: { policy: opts.policy } } : {}),
      guests,
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  env.run({ until: env.now + 5 * MS });
  const a = host.guest('a');
  const b = host.guest('b');
  return {
    env,
    host,
    a,
    b,
    na: a.nics[0]!.attached as ShmemNic,
    nb: b.nics[0]!.attached as ShmemNic,
    ends: { client: a.stack, server: b.stack, serverAddr: ipv4('10.0.0.2') },
  };
}

function counters(host: Host): Map<string, CounterSnapshot> {
  const m = new Map<string, CounterSnapshot>();
  for (const v of host.hv.countersSnapshot().values()) m.set(v.name, v.counters);
  return m;
}

for (const type of ['hvm', 'pv'] as const) {
  describe(`shmem: two co-resident ${type.toUpperCase()} guests`, () => {
    it('ping, tcp_rr, udp_rr, tcp_stream, udp_stream arrive byte-exact through the FIFOs; two memcpys per frame, by the guests; no grant copy; no Dom0', () => {
      const { env, host, ends, a, b, na, nb } = build(type);
      assert.ok(na.settled && nb.settled, 'each has its channel with the other, open both ways');
      const c0 = counters(host);
      const d0 = host.dom0.network.bridges.get('xenbr0')!.stats.rxFrames;
      const cpu0 = host.hv.snapshot();
      const s0a = na.stats();
      const s0b = nb.stats();
      const pg = ping(env, ends, { count: 10, size: 1000 });
      env.run({ until: pg });
      assert.ok(pg.value.received >= 10 && pg.value.received === pg.value.transmitted, `ping ${pg.value.received}/${pg.value.transmitted}`);
      const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 3 * MS } });
      env.run({ until: rr });
      const ur = udpRr(env, { ...ends, port: 13000 }, { requestSize: 64, responseSize: 64, timing: { warmup: 1 * MS, duration: 3 * MS } });
      env.run({ until: ur });
      assert.ok(rr.value.transactions > 50 && ur.value.transactions > 50, `tcp_rr ${rr.value.transactions}, udp_rr ${ur.value.transactions}`);
      const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 3_000_000, messageSize: 65536 });
      env.run({ until: ts });
      assert.equal(ts.value.bytesVerified, 3_000_000);
      assert.equal(ts.value.retransmissions, 0);
      const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 8000, timing: { warmup: 1 * MS, duration: 2 * MS } });
      env.run({ until: us });
      assert.ok(us.value.receivedMessages > 100, `udp_stream received ${us.value.receivedMessages}`);
      assert.equal(us.value.reordered, 0);
      assert.equal(us.value.receivedMessages + us.value.lostMessages, us.value.sentMessages);

      const sa = diffCounters(na.stats(), s0a);
      const sb = diffCounters(nb.stats(), s0b);
      const c1 = counters(host);
      const dom = (n: string): CounterSnapshot => diffCounters(c1.get(n)!, c0.get(n));
      assert.ok(
        sa['shmem.txFrames']! > 300 && sb['shmem.txFrames']! > 300,
        `through the FIFOs: a ${sa['shmem.txFrames']}, b ${sb['shmem.txFrames']}`,
      );
      assert.equal(sa['shmem.txFrames'], sb['shmem.rxFrames'], 'what a copied in, b copied out and handed up');
      assert.equal(sb['shmem.txFrames'], sa['shmem.rxFrames']);
      // Two copies of every frame: the sender's memcpy in and the receiver's memcpy out, of the same bytes.
      assert.equal(sa['shmem.txCopies'], sa['shmem.txFrames'], 'one memcpy per frame by the sender');
      assert.equal(sb['shmem.rxCopies'], sa['shmem.txFrames'], 'one memcpy per frame by the receiver');
      assert.equal(sa['shmem.txCopyBytes'], sb['shmem.rxCopyBytes']);
      assert.equal(sb['shmem.txCopyBytes'], sa['shmem.rxCopyBytes']);
      assert.equal(sa['shmem.txCopyBytes'], sa['shmem.txBytes']);
      assert.equal(sa['front.txPackets']! + sb['front.txPackets']!, 0, 'nothing left by the ordinary NIC');
      assert.equal(host.dom0.network.bridges.get('xenbr0')!.stats.rxFrames - d0, 0, 'no frame crossed Dom0’s bridge');
      for (const n of ['a', 'b', 'Domain-0']) assert.equal(dom(n).grantCopies ?? 0, 0, `no grant copy by ${n}: the copies are the guests' own`);
      assert.equal(dom('a').grantMaps! + dom('b').grantMaps!, 0, 'the FIFOs were mapped once, before the traffic');
      assert.equal(
        sa['shmem.rxBad']! + sb['shmem.rxBad']! + sa['shmem.rxErrors']! + sb['shmem.rxErrors']! + sa['shmem.queueDrops']! + sb['shmem.queueDrops']!,
        0,
      );
      const report = host.hv.cpuReport(cpu0);
      const d0cpu = report.domains.find((d) => d.name === 'Domain-0')!;
      assert.ok(d0cpu.percent < 0.5, `Dom0 is not in the data path: ${d0cpu.percent}% CPU over the run`);
      // Unlike hv2m, the payload does pass through memory both guests can access: b's FIFO holds a's last bytes.
      const mt = a.domain.maptrack;
      assert.equal(mt.inUse().length, 1 + 16, 'a maps b’s FIFO: a descriptor and 16 data pages (64 KiB)');
      const fifo = mt
        .inUse()
        .map((h) => mt.get(h)!)
        .filter((e) => e.granter.domid === b.domid);
      assert.ok(
        fifo.slice(1).some((e) => e.page.some((x) => x !== 0)),
        'frame bytes sit in the shared FIFO pages',
      );
    });
  });
}

describe('shmem: back-pressure, fallback, determinism', () => {
  it('a full FIFO is back-pressure, not loss: a one-page FIFO between guests sharing one pCPU (the receiver cannot drain while the sender runs), udp_stream loses no datagram', () => {
    const { env, ends, na, nb } = build('hvm', { options: { fifoBytes: 4096 }, pinning: [1] });
    assert.ok(na.settled && nb.settled);
    const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1400, timing: { warmup: 1 * MS, duration: 4 * MS } });
    env.run({ until: us });
    assert.ok(us.ok, String(us.error));
    const s = na.stats();
    assert.ok(s['shmem.fifoFull']! > 10, `the sender found the FIFO full ${s['shmem.fifoFull']} times`);
    assert.equal(s['shmem.queueDrops'], 0, 'no frame dropped at the per-peer queue');
    assert.equal(us.value.lostMessages, 0, 'no datagram lost');
    assert.equal(us.value.reordered, 0);
    assert.ok(us.value.receivedMessages > 200, `received ${us.value.receivedMessages}`);
    assert.equal(us.value.receivedMessages, us.value.sentMessages);
    assert.equal(s['shmem.txFrames'], nb.stats()['shmem.rxFrames'], 'every frame copied in was copied out');
    // A datagram bigger than the FIFO is cut into IP fragments first, and still arrives whole.
    const big = udpStream(env, { ...ends, port: 13004 }, { messageSize: 8000, timing: { warmup: 1 * MS, duration: 2 * MS } });
    env.run({ until: big });
    assert.ok(
      big.value.receivedMessages > 20 && big.value.lostMessages === 0,
      `8000-byte datagrams: ${big.value.receivedMessages} received, ${big.value.lostMessages} lost`,
    );
    // The same small FIFO carries 64 KiB TCP GSO frames by cutting them in software first.
    const ts = tcpStream(env, { ...ends, port: 13003 }, { bytes: 1_000_000, messageSize: 65536 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 1_000_000);
    assert.equal(ts.value.retransmissions, 0);
    assert.ok(na.stats()['shmem.segmented']! > 0, 'GSO frames larger than the FIFO were segmented');
  });

  for (const [what, corrupt] of [
    ['a producer index past the FIFO', (f: { desc: { setU32(o: number, v: number): void } }) => f.desc.setU32(FIFO_PROD, 0x7fff_0000)],
    [
      'a record header claiming more than was produced',
      (f: { desc: { getU32(o: number): number; setU32(o: number, v: number): void }; data: { write(o: number, b: Uint8Array): void } }) => {
        const at = f.desc.getU32(FIFO_PROD);
        f.data.write(at & 4095, new Uint8Array([0xff, 0xff, 0x00, 0x00, 0, 0, 0, 0]));
        f.desc.setU32(FIFO_PROD, (at + REC_HEADER + 64) >>> 0);
      },
    ],
  ] as const) {
    it(`a hostile peer writing ${what} into the FIFO: the receiver drops and counts it, closes the channel and falls back; nothing throws`, () => {
      const { env, a, b, ends, na, nb } = build('hvm');
      const ch = na.module.channels.get(b.domid)!;
      corrupt(ch.end.tx!);
      // b's receive poll runs, as a's notification would make it.
      nb.device.stackUpper!.napiSchedule(nb.module.channels.get(a.domid)!.napi);
      env.run({ until: env.now + 1 * MS });
      const pg = ping(env, ends, { count: 3, size: 100 });
      env.run({ until: pg });
      env.run({ until: env.now + 60 * MS });
      assert.equal(nb.stats()['shmem.rxBad'], 1, 'the bad index or record counted once');
      assert.equal(nb.stats()['shmem.faults'], 1);
      assert.equal(na.module.channels.size + nb.module.channels.size, 0, 'the channel is gone on both sides');
      assert.ok(nb.module.barred.has(a.domid), 'and not opened again while a stays listed');
      const ts = tcpStream(env, { ...ends, port: 13005 }, { bytes: 300_000, messageSize: 16384 });
      env.run({ until: ts });
      assert.equal(ts.value.bytesVerified, 300_000, 'traffic goes on over pv, byte-exact');
      assert.ok(na.stats()['front.txPackets']! > 0);
    });
  }

  it('property: whatever a hostile sender writes into the FIFO it maps (indices, event fields, record bytes), the receiver never throws, ends at most that channel, and its channel with a third guest carries a stream byte-exact', () => {
    const action = fc.oneof(
      fc.record({ k: fc.constant('prod' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }),
      fc.record({ k: fc.constant('prodStep' as const), v: fc.integer({ min: 0, max: 70_000 }) }),
      fc.record({ k: fc.constant('event' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }),
      fc.record({ k: fc.constant('bytes' as const), at: fc.integer({ min: 0, max: 65535 }), b: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
      fc.record({
        k: fc.constant('header' as const),
        len: fc.integer({ min: 0, max: 70_000 }),
        flags: fc.integer({ min: 0, max: 255 }),
        gso: fc.integer({ min: 0, max: 65535 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 1000 }), (acts, seed) => {
        const { env, host, a, b, na, nb } = build('hvm', { third: true, seed });
        const c = host.guest('c');
        const f = na.module.channels.get(b.domid)!.end.tx!;
        for (const x of acts) {
          // Once the channel is gone the hostile guest's mapping is too (its writes would fault in its own kernel).
          const rxHalf = nb.module.channels.get(a.domid);
          if (rxHalf === undefined || na.module.channels.get(b.domid)?.end.tx !== f) break;
          const prod = f.desc.getU32(FIFO_PROD);
          if (x.k === 'prod') f.desc.setU32(FIFO_PROD, x.v);
          else if (x.k === 'prodStep') f.desc.setU32(FIFO_PROD, (prod + x.v) >>> 0);
          else if (x.k === 'event') f.desc.setU32(x.v & 1 ? FIFO_PROD_EVENT : FIFO_CONS_EVENT, x.v);
          else if (x.k === 'bytes') f.data.write(x.at & (f.size - 64), x.b);
          else {
            const h = new Uint8Array(REC_HEADER);
            const dv = new DataView(h.buffer);
            dv.setUint32(0, x.len, true);
            dv.setUint8(4, x.flags);
            dv.setUint16(6, x.gso, true);
            f.data.write(prod & (f.size - 1) & ~7, h);
            f.desc.setU32(FIFO_PROD, (prod + REC_HEADER + ((x.len + 7) & ~7)) >>> 0);
          }
          nb.device.stackUpper!.napiSchedule(rxHalf.napi);
          env.run({ until: env.now + 200_000 });
        }
        env.run({ until: env.now + 2 * MS });
        const st = nb.stats();
        assert.ok(st['shmem.rxBad']! <= 1, 'one fault ends the channel: at most one bad record counted');
        if (st['shmem.rxBad'] === 1) assert.ok(nb.module.barred.has(a.domid) && !nb.module.barred.has(c.domid));
        const ts = tcpStream(
          env,
          { client: b.stack, server: c.stack, serverAddr: ipv4('10.0.0.3'), port: 13020 },
          { bytes: 200_000, messageSize: 16384 },
        );
        env.run({ until: ts });
        assert.ok(ts.ok, String(ts.error));
        assert.equal(ts.value.bytesVerified, 200_000);
        assert.ok(nb.module.channels.get(c.domid)?.connected === true, 'b’s channel with c is untouched');
      }),
      { numRuns: 30, seed: 11 },
    );
  });

  it('guests of different tenants get no channel: their traffic takes the pv path, byte-exact', () => {
    const { env, ends, na, nb } = build('hvm', { tenantB: 'other' });
    assert.equal(na.module.channels.size + nb.module.channels.size, 0);
    const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 500_000, messageSize: 16384 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 500_000);
    assert.equal(na.stats()['shmem.diverted'], 0);
    assert.ok(na.stats()['front.txPackets']! > 0);
  });

  it('a shmem guest and an hv2m guest are never paired: the announce flag names the path, and Dom0 lists only guests of the same one', () => {
    const { env, ends, host, a, b, na } = build('hvm', { pathB: 'hv2m' });
    assert.equal(host.discoveryd!.peersOf(a.domid).size + host.discoveryd!.peersOf(b.domid).size, 0);
    assert.equal(na.module.channels.size, 0);
    const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 300_000, messageSize: 16384 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 300_000, 'over pv');
  });

  it('a channel that comes up, then goes, in the middle of a TCP stream: no byte lost, no reordering seen by TCP, no retransmission', () => {
    const deny: Hv2mPolicy = { rules: [{ action: 'deny', a: { name: 'a' }, b: { name: 'b' } }] };
    const { env, host, ends, a, b, na, nb } = build('hvm', { policy: deny, seed: 9 });
    assert.equal(na.module.channels.size, 0, 'denied at first: pv');
    const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 100_000_000, messageSize: 65536 });
    env.run({ until: env.now + 3 * MS });
    assert.ok(na.stats()['front.txPackets']! > 100, 'the stream started on pv');
    host.discoveryd!.setPolicy({});
    const t0 = env.now;
    while (!(na.settled && nb.settled) && env.now - t0 < 50 * MS) env.run({ until: env.now + 1 * MS });
    assert.ok(na.settled && nb.settled, 'the channel came up under load within 50 ms');
    env.run({ until: env.now + 3 * MS });
    const mid = na.stats();
    assert.ok(mid['shmem.txFrames']! > 100, `the stream moved to the FIFO: ${mid['shmem.txFrames']} frames`);
    assert.equal(mid['shmem.fencesSeen']! + nb.stats()['shmem.fencesSeen']!, 2, 'each side passed the other’s fence');
    host.discoveryd!.setPolicy(deny);
    env.run({ until: ts });
    assert.ok(ts.ok, String(ts.error));
    assert.equal(ts.value.bytesVerified, 100_000_000);
    assert.equal(na.module.channels.size + nb.module.channels.size, 0, 'the channel is gone');
    assert.ok(na.stats()['front.txPackets']! > mid['front.txPackets']! + 100, 'and the stream went on over pv');
    assert.equal(ts.value.retransmissions, 0, 'no switch made TCP retransmit');
    assert.equal(ts.value.outOfOrder, 0, 'the receiver saw no segment out of order');
    assert.equal(ts.value.dupAcks, 0, 'the sender got no duplicate ACK');
    assert.equal(na.module.closed + nb.module.closed, 2);
    assert.equal(a.domain.maptrack.inUse().length + b.domain.maptrack.inUse().length, 0, 'both FIFOs unmapped');
  });

  it('a peer destroyed mid-stream: the survivor stops diverting to it within the watchdog bound, ends every grant of its FIFO, and its flow to a third guest goes on', () => {
    const { env, host, a, b, ends, na } = build('hvm', { third: true });
    const c = host.guest('c');
    const toB = na.module.channels.get(b.domid)!;
    assert.ok(toB.connected && na.module.channels.get(c.domid)!.connected);
    const s0 = na.stats()['shmem.txFrames']!;
    const toC = tcpStream(
      env,
      { client: a.stack, server: c.stack, serverAddr: ipv4('10.0.0.3'), port: 13010 },
      { bytes: 20_000_000, messageSize: 65536 },
    );
    const doomed = udpStream(env, { ...ends, port: 13011 }, { messageSize: 1400, timing: { warmup: 1 * MS, duration: 200 * MS } });
    env.run({ until: env.now + 3 * MS });
    host.toolstack.destroyGuest(b.domain);
    const t0 = env.now;
    while (na.module.channels.has(b.domid) && env.now - t0 < 100 * MS) env.run({ until: env.now + 1 * MS });
    assert.ok(!na.module.channels.has(b.domid), 'the channel to the dead peer is gone');
    assert.ok(env.now - t0 <= 60 * MS, `within the watchdog bound (50 ms): ${(env.now - t0) / MS} ms`);
    assert.ok(toB.done, 'torn down, every grant of a’s FIFO to b ended');
    env.run({ until: toC });
    assert.ok(toC.ok, String(toC.error));
    assert.equal(toC.value.bytesVerified, 20_000_000, 'the flow to c was unaffected, byte-exact');
    assert.ok(na.stats()['shmem.txFrames']! > s0, 'and went through its own FIFO');
    void doomed;
  });

  it('the same seed gives the same run', () => {
    const once = (): string =>
      JSON.stringify(
        runCase(
          profile,
          { path: 'shmem', test: 'tcp_rr', size: 1, guestType: 'hvm', seed: 4, warmupNs: 1 * MS, durationNs: 2 * MS },
          { wallMs: () => 0 },
        ),
      );
    assert.equal(once(), once());
  });
});
