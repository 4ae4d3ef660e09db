/**
 * The emulated path (src/vnet/emulated) end to end: two HVM guests on one host, the
 * netperf-style workloads over e1000 driver → MMIO exits → qemu-dm → tap → bridge → tap →
 * qemu-dm → e1000 driver, byte-exact, with the per-frame structure the driver and QEMU's
 * device give. (Here because the whole-host build and the workloads sit above vnet.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, US } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import type { EmulatedNic } from '../vnet/emulated/index.js';
import { E1000_ITR } from '../vnet/emulated/e1000-regs.js';
import { Host } from '../host/host.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

function twoGuests(itr?: number | string, seed = 7): { env: SimEnvironment; host: Host; ends: Endpoints; a: EmulatedNic; b: EmulatedNic } {
  const env = new SimEnvironment({ seed });
  const options = itr === undefined ? {} : { itr };
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: [
        { name: 'a', nics: [{ path: 'emulated', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24', options }] },
        { name: 'b', nics: [{ path: 'emulated', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24', options }] },
      ],
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  const nic = (g: string): EmulatedNic => host.guest(g).nics[0]!.attached as EmulatedNic;
  return {
    env,
    host,
    ends: { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') },
    a: nic('a'),
    b: nic('b'),
  };
}

function snap(
  host: Host,
  a: EmulatedNic,
  b: EmulatedNic,
): { dom: Map<string, CounterSnapshot>; a: Record<string, number>; b: Record<string, number> } {
  const dom = new Map<string, CounterSnapshot>();
  for (const v of host.hv.countersSnapshot().values()) dom.set(v.name, v.counters);
  return { dom, a: a.stats(), b: b.stats() };
}

function delta(from: ReturnType<typeof snap>, to: ReturnType<typeof snap>) {
  const dom = (name: string): CounterSnapshot => diffCounters(to.dom.get(name)!, from.dom.get(name));
  return { dom0: dom('Domain-0'), ga: dom('a'), gb: dom('b'), a: diffCounters(to.a, from.a), b: diffCounters(to.b, from.b) };
}

describe('emulated path: two HVM guests on one host', () => {
  it('ping, tcp_rr and udp_rr: every register access an EPT exit and an ioreq, an ICR read per interrupt, frames through both taps', () => {
    const { env, host, ends, a, b } = twoGuests();
    const pg = ping(env, ends, { count: 10, size: 56 });
    env.run({ until: pg });
    assert.equal(pg.value.received, pg.value.transmitted);
    const s0 = snap(host, a, b);
    const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 4 * MS } });
    env.run({ until: rr });
    const ur = udpRr(env, { ...ends, port: 13000 }, { requestSize: 64, responseSize: 64, timing: { warmup: 1 * MS, duration: 4 * MS } });
    env.run({ until: ur });
    assert.ok(
      rr.value.transactions > 10 && ur.value.transactions > 10,
      `tcp_rr ${rr.value.transactions}, udp_rr ${ur.value.transactions} transactions`,
    );
    const d = delta(s0, snap(host, a, b));
    const accA = d.a['driver.mmioReads']! + d.a['driver.mmioWrites']!;
    assert.equal(d.ga.ioreqs, accA, 'one ioreq per register access of a');
    assert.equal(d.ga['exits.ept'], accA, 'one EPT exit per register access of a');
    assert.equal(d.a['device.mmioReads']! + d.a['device.mmioWrites']!, accA, 'qemu saw each of them');
    assert.equal(d.a['driver.icrReads'], d.a['driver.irqs'], 'one ICR read per interrupt');
    assert.ok(d.a['driver.tdtWrites']! <= d.a['driver.txPackets']! && d.a['driver.tdtWrites']! > 0, 'at most one TDT write per packet');
    // Every frame a sent reached b's guest through both taps; qemu-dm moved it both times.
    assert.equal(d.a['qemu.framesToTap'], d.a['driver.txPackets']);
    assert.equal(d.b['qemu.framesFromTap'], d.a['driver.txPackets']);
    assert.equal(d.b['driver.rxPackets'], d.a['driver.txPackets']);
    assert.equal(d.ga.grantCopies, 0);
    assert.equal(d.dom0.grantCopies, 0, 'no grant copies: qemu copies through its foreign mappings');
    assert.ok(d.dom0['hypercalls.dm_op.set_pci_intx_level']! > 0, 'interrupts raised by dm_op');
    assert.ok(d.ga.vectorsInjected! > 0 && d.ga['exits.eoi'] === d.ga.vectorsInjected, 'each vector EOId (an exit)');
  });

  it('tcp_stream and udp_stream byte-exact; under load fewer interrupts than frames (ITR and the mit_timer), the sender dynamic ITR at 4000 ints/s; Dom0 CPU is qemu', () => {
    const { env, host, ends, a, b } = twoGuests();
    const s0 = snap(host, a, b);
    const cpu0 = host.hv.snapshot();
    // The sender's ITR, sampled every 100 µs: its NAPI runs reclaim TSO packets of many
    // full-sized segments (bulk_latency), so dynamic ITR takes it down to 4000 ints/s.
    let senderMin = a.driver.itrRate;
    const sample = env.timer(() => {
      senderMin = Math.min(senderMin, a.driver.itrRate);
      sample.setIn(100 * US);
    });
    sample.setIn(100 * US);
    const ts = tcpStream(env, ends, { bytes: 1_000_000, messageSize: 65536 });
    env.run({ until: ts });
    sample.cancel();
    assert.equal(ts.value.bytesVerified, 1_000_000);
    assert.equal(senderMin, 4000, 'the sender went to bulk_latency during the stream');
    const d = delta(s0, snap(host, a, b));
    const frames = d.b['driver.rxPackets']!;
    assert.ok(frames > 600, `frames ${frames}`);
    assert.ok(d.b['driver.irqs']! < frames, `b: ${d.b['driver.irqs']} interrupts for ${frames} frames`);
    const dom0 = host.hv.cpuReport(cpu0).domains.find((x) => x.name === 'Domain-0')!;
    assert.ok(dom0.byCategory.qemu > 0, `Dom0 CPU ${JSON.stringify(dom0.byCategory)}`);
    const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 3 * MS } });
    env.run({ until: us });
    assert.ok(us.value.receivedMessages > 20, `udp_stream received ${us.value.receivedMessages}`);
    assert.equal(us.value.reordered, 0);
    assert.equal(us.value.receivedMessages + us.value.lostMessages, us.value.sentMessages);
  });

  it('dynamic ITR (InterruptThrottleRate 3, the default): a bulk receiver drops to 4000 ints/s, fewer interrupts per frame than a fixed 20000; a 1-byte tcp_rr climbs back to 20000 in steps; ITR written only on a change', () => {
    // 8 KiB datagrams leave as six full-sized fragments: each NAPI run of the receiver cleans
    // more than 10000 bytes in frames over 1200 bytes (bulk_latency).
    const bulk = (g: ReturnType<typeof twoGuests>) => {
      const s0 = snap(g.host, g.a, g.b);
      const us = udpStream(g.env, { ...g.ends, port: 13004 }, { messageSize: 8192, timing: { warmup: 2 * MS, duration: 10 * MS } });
      g.env.run({ until: us });
      assert.ok(us.value.receivedMessages > 30, `udp_stream received ${us.value.receivedMessages}`);
      return delta(s0, snap(g.host, g.a, g.b));
    };
    const dyn = twoGuests();
    const fixed = twoGuests(20000);
    const dd = bulk(dyn);
    const df = bulk(fixed);
    assert.equal(dyn.b.driver.itrRate, 4000, 'the receiver went to bulk_latency');
    assert.equal(fixed.b.driver.itrRate, 20000);
    assert.equal(fixed.b.stats()['driver.itrUpdates'], 0, 'a fixed rate is never adjusted');
    assert.equal(fixed.b.stats()['driver.itrWrites'], 1, 'a fixed rate is programmed once, at open');
    const perFrame = (d: ReturnType<typeof delta>): number => d.b['driver.irqs']! / d.b['driver.rxPackets']!;
    assert.ok(
      perFrame(dd) < 0.75 * perFrame(df),
      `interrupts per frame: dynamic ${perFrame(dd).toFixed(3)} (${dd.b['driver.irqs']}), fixed 20000 ${perFrame(df).toFixed(3)} (${df.b['driver.irqs']})`,
    );
    // Request-response: each NAPI run cleans one small frame each way (low_latency; conservative
    // mode never takes lowest_latency): 4000 -> 9000 -> 14000 -> 19000 -> 20000.
    const rrRun = (): ReturnType<typeof delta> => {
      const s0 = snap(dyn.host, dyn.a, dyn.b);
      const rr = tcpRr(dyn.env, dyn.ends, { timing: { warmup: 1 * MS, duration: 4 * MS } });
      dyn.env.run({ until: rr });
      assert.ok(rr.value.transactions > 10);
      return delta(s0, snap(dyn.host, dyn.a, dyn.b));
    };
    const r1 = rrRun();
    assert.equal(dyn.b.driver.itrRate, 20000);
    assert.equal(dyn.a.driver.itrRate, 20000);
    assert.equal(r1.b['driver.itrWrites'], 4, 'four steps back up, one write each');
    assert.ok(r1.b['driver.itrUpdates']! > 5 * r1.b['driver.itrWrites'], `${r1.b['driver.itrUpdates']} adjustments`);
    const r2 = rrRun();
    assert.equal(r2.b['driver.itrWrites'], 0, 'steady at 20000: no writes');
    assert.equal(r2.a['driver.itrWrites'], 0);
    // Every write the driver made reached the device and changed the register.
    for (const s of [dyn.a.stats(), dyn.b.stats()]) {
      assert.equal(s['device.itrWrites'], s['driver.itrWrites']);
      assert.equal(s['device.itrChanges'], s['device.itrWrites']);
    }
  });

  it("dynamic mode (InterruptThrottleRate 1, or 'dynamic') takes 1-byte request-response to lowest_latency: 70000 ints/s (ITR 55)", () => {
    const g = twoGuests('dynamic');
    const rr = tcpRr(g.env, g.ends, { timing: { warmup: 1 * MS, duration: 4 * MS } });
    g.env.run({ until: rr });
    assert.equal(g.a.driver.itrRate, 70000);
    assert.equal(g.b.driver.itrRate, 70000);
    assert.equal(g.b.qemu.device.peek(E1000_ITR), 55, 'the ITR register');
  });

  it('is deterministic: the same seed gives the same counters', () => {
    const once = (): string => {
      const { env, host, ends, a, b } = twoGuests(undefined, 11);
      const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 2 * MS } });
      env.run({ until: rr });
      return JSON.stringify([rr.value.transactions, a.stats(), b.stats(), [...host.hv.countersSnapshot().values()]]);
    };
    assert.equal(once(), once());
  });
});
