/**
 * The pv path (src/vnet/pv) end to end: two guests on one host built by Host.build, the
 * netperf-style workloads over netfront → netback → bridge → netback → netfront, byte-exact,
 * and the per-frame counts the front-back model is known for. (Here rather than in
 * src/vnet/pv because the whole-host build and the workloads sit above vnet in the
 * dependency rule.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import type { PvNic } from '../vnet/pv/index.js';
import { Host } from '../host/host.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

function twoGuests(type: 'hvm' | 'pv', seed = 7): { env: SimEnvironment; host: Host; ends: Endpoints; a: PvNic; b: PvNic } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: [
        { name: 'a', type, nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
        { name: 'b', type, nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
      ],
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  const nic = (g: string): PvNic => host.guest(g).nics[0]!.attached as PvNic;
  return {
    env,
    host,
    ends: { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') },
    a: nic('a'),
    b: nic('b'),
  };
}

/** Counters of every domain and both NICs at one instant. */
function snap(host: Host, a: PvNic, b: PvNic): { dom: Map<string, CounterSnapshot>; a: Record<string, number>; b: Record<string, number> } {
  const dom = new Map<string, CounterSnapshot>();
  for (const v of host.hv.countersSnapshot().values()) dom.set(v.name, v.counters);
  return { dom, a: a.stats(), b: b.stats() };
}

function delta(from: ReturnType<typeof snap>, to: ReturnType<typeof snap>) {
  const d = (x: Record<string, number>, y: Record<string, number>): Record<string, number> => diffCounters(y, x);
  const dom = (name: string): CounterSnapshot => diffCounters(to.dom.get(name)!, from.dom.get(name));
  return { dom0: dom('Domain-0'), ga: dom('a'), gb: dom('b'), a: d(from.a, to.a), b: d(from.b, to.b) };
}

for (const type of ['hvm', 'pv'] as const) {
  describe(`pv path: two ${type.toUpperCase()} guests on one host`, () => {
    it('ping, tcp_rr and udp_rr: two grant copies per frame, both by Dom0, none by the guests', () => {
      const { env, host, ends, a, b } = twoGuests(type);
      assert.ok(a.connected && b.connected, 'both NICs connected');
      const pg = ping(env, ends, { count: 10, size: 56 });
      env.run({ until: pg });
      assert.equal(pg.value.received, pg.value.transmitted);
      const s0 = snap(host, a, b);
      const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 4 * MS } });
      env.run({ until: rr });
      const ur = udpRr(env, { ...ends, port: 13000 }, { requestSize: 64, responseSize: 64, timing: { warmup: 1 * MS, duration: 4 * MS } });
      env.run({ until: ur });
      assert.ok(
        rr.value.transactions > 50 && ur.value.transactions > 50,
        `tcp_rr ${rr.value.transactions}, udp_rr ${ur.value.transactions} transactions`,
      );
      const d = delta(s0, snap(host, a, b));
      const frames = d.a['back.txFrames']! + d.b['back.txFrames']!;
      assert.ok(frames >= 2 * (rr.value.transactions + ur.value.transactions), `frames ${frames}`);
      // Every frame crossed the bridge to the other guest: one TX copy and one RX copy, each one op.
      assert.equal(d.a['back.rxFrames']! + d.b['back.rxFrames']!, frames);
      assert.equal(d.dom0.grantCopies, 2 * frames, 'two grant copies per frame');
      assert.equal(d.ga.grantCopies, 0);
      assert.equal(d.gb.grantCopies, 0);
      assert.equal(d.ga.grantCopyBytes, 0);
      assert.equal(d.gb.grantCopyBytes, 0);
      assert.equal(d.a['front.copiedBytes'], 0);
      assert.equal(d.b['front.copiedBytes'], 0);
      // Each guest notified its backend (TX) and was interrupted by it (RX): by hypercall, and for an HVM an exit each.
      assert.ok(d.ga.notifySent! > 0 && d.gb.notifySent! > 0);
      if (type === 'hvm') assert.ok(d.ga['exits.vmcall']! >= d.ga.notifySent!, 'HVM notifies by hypercall (VMCALL exit)');
      else assert.ok(d.ga.pvTraps! >= d.ga.notifySent!);
      assert.ok(d.ga.upcalls! > 0 && d.gb.upcalls! > 0, 'interrupted through the event-channel upcall');
    });

    it('tcp_stream and udp_stream byte-exact; every byte grant-copied twice by Dom0; fewer notifications than frames', () => {
      const { env, host, ends, a, b } = twoGuests(type, 11);
      const s0 = snap(host, a, b);
      const cpu0 = host.hv.snapshot();
      const ts = tcpStream(env, ends, { bytes: 4_000_000, messageSize: 65536 });
      env.run({ until: ts });
      const cpu = host.hv.cpuReport(cpu0).domains.find((x) => x.name === 'Domain-0')!;
      // netback's work is Dom0's: the guest-RX kthread ('kthread'), the TX NAPI and the bridge (softirq, 'kernel'), the copies ('xen').
      assert.ok(cpu.byCategory.kthread > 0 && cpu.byCategory.kernel > 0 && cpu.byCategory.xen > 0, `Dom0 CPU ${JSON.stringify(cpu.byCategory)}`);
      assert.equal(ts.value.bytesVerified, 4_000_000);
      assert.equal(ts.value.retransmissions, 0);
      const d = delta(s0, snap(host, a, b));
      const dataFrames = d.a['back.txFrames']!;
      assert.ok(dataFrames > 50, `frames ${dataFrames}`);
      // Every byte a guest sent was copied into Dom0 and every byte Dom0 delivered was copied out.
      const bytes = d.a['back.txBytes']! + d.b['back.txBytes']! + d.a['back.rxBytes']! + d.b['back.rxBytes']!;
      assert.equal(d.dom0.grantCopyBytes, bytes);
      assert.ok(d.dom0.grantCopies! >= 2 * (dataFrames + d.b['back.txFrames']!));
      assert.equal(d.ga.grantCopies, 0);
      assert.equal(d.gb.grantCopies, 0);
      // GSO frames cross netif whole: more slots than frames, the extra-info slot used.
      assert.ok(d.a['front.txSlots']! > dataFrames, 'multi-slot (SG + GSO) frames');
      // Under load the ring rules hold notifications back, on every ring the data uses.
      assert.ok(d.a['front.txNotify']! < dataFrames, `netfront TX kicks ${d.a['front.txNotify']} for ${dataFrames} frames`);
      assert.ok(d.a['back.txNotify']! < dataFrames, `netback TX-response kicks ${d.a['back.txNotify']} for ${dataFrames} frames`);
      assert.ok(d.b['back.rxNotify']! < d.b['back.rxFrames']!, `netback RX kicks ${d.b['back.rxNotify']} for ${d.b['back.rxFrames']} frames`);
      const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 3 * MS } });
      env.run({ until: us });
      assert.ok(us.value.receivedMessages > 100, `udp_stream received ${us.value.receivedMessages}`);
      assert.equal(us.value.reordered, 0);
      assert.equal(us.value.receivedMessages + us.value.lostMessages, us.value.sentMessages);
    });
  });
}

describe('pv path: determinism', () => {
  it('the same seed gives the same run, counter for counter', () => {
    const once = (): string => {
      const { env, host, ends, a, b } = twoGuests('hvm', 3);
      const rr = tcpRr(env, ends, { requestSize: 100, responseSize: 200, timing: { warmup: 1 * MS, duration: 2 * MS } });
      env.run({ until: rr });
      return JSON.stringify([env.now, rr.value, a.stats(), b.stats(), [...host.hv.countersSnapshot().values()]]);
    };
    assert.equal(once(), once());
  });
});
