/**
 * The SR-IOV path (src/vnet/sriov) end to end: two HVM guests on one host, each with a VF of
 * the host's 82599-class NIC, the netperf-style workloads over ixgbevf → PCIe → VEB → PCIe →
 * ixgbevf, byte-exact, with the per-frame structure the mechanisms give: no Dom0, no software
 * copy, two PCIe data crossings per frame, exits only for interrupts (EOI), none for doorbells.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { Packet, PacketBuffer, ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import type { SriovVfNic } from '../vnet/sriov/index.js';
import { Host } from '../host/host.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

function twoGuests(seed = 7): { env: SimEnvironment; host: Host; ends: Endpoints; a: SriovVfNic; b: SriovVfNic } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: [
        { name: 'a', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
        { name: 'b', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
      ],
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  const nic = (g: string): SriovVfNic => host.guest(g).nics[0]!.attached as SriovVfNic;
  return {
    env,
    host,
    ends: { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') },
    a: nic('a'),
    b: nic('b'),
  };
}

function snap(host: Host, a: SriovVfNic, b: SriovVfNic) {
  const dom = new Map<string, CounterSnapshot>();
  for (const v of host.hv.countersSnapshot().values()) dom.set(v.name, v.counters);
  return {
    dom,
    a: a.stats(),
    b: b.stats(),
    cpu: host.hv.snapshot(),
    pt: { ...host.hv.pt.stats },
    bridge: [...host.dom0.network.bridges.values()].reduce((n, br) => n + br.stats.rxFrames, 0),
  };
}

function delta(host: Host, from: ReturnType<typeof snap>, to: ReturnType<typeof snap>) {
  const dom = (name: string): CounterSnapshot => diffCounters(to.dom.get(name)!, from.dom.get(name));
  const rep = host.hv.cpuReport(from.cpu);
  return {
    dom0: dom('Domain-0'),
    ga: dom('a'),
    gb: dom('b'),
    a: diffCounters(to.a, from.a),
    b: diffCounters(to.b, from.b),
    cpu: rep,
    physIrqs: to.pt.physIrqs - from.pt.physIrqs,
    bridge: to.bridge - from.bridge,
  };
}

describe('sriov path: two HVM guests on one host', () => {
  it('ping, tcp_rr and udp_rr byte-exact: no Dom0, no copy, two PCIe crossings per frame, exits only for interrupts, none for doorbells', () => {
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
    const d = delta(host, s0, snap(host, a, b));
    const frames = d.a['vf.txFrames']! + d.b['vf.txFrames']!;
    assert.ok(frames > 40, `frames ${frames}`);
    // Every frame one sent reached the other's guest: read over PCIe once, written once.
    assert.equal(d.b['vf.rxFrames'], d.a['vf.txFrames']);
    assert.equal(d.a['vf.rxFrames'], d.b['vf.txFrames']);
    assert.equal(d.a['driver.rxPackets'], d.a['vf.rxFrames']);
    const crossings = d.a['vf.dataReads']! + d.b['vf.dataReads']! + d.a['vf.dataWrites']! + d.b['vf.dataWrites']!;
    assert.equal(crossings, 2 * frames, 'two PCIe data crossings per frame');
    // No Dom0 in the data path: no bridge frame, no Dom0 CPU, no grant copy (no software copy at all).
    assert.equal(d.bridge, 0);
    const dom0 = d.cpu.domains.find((x) => x.name === 'Domain-0')!;
    assert.equal(dom0.total, 0, `Dom0 CPU ${JSON.stringify(dom0.byCategory)}`);
    for (const g of [d.ga, d.gb, d.dom0]) {
      assert.equal(g.grantCopies, 0);
      assert.equal(g.ioreqs, 0);
    }
    // Exits: an EOI per injected vector, an external-interrupt exit only when the interrupt
    // found the vCPU running; nothing else (the doorbell is a mapped BAR write).
    for (const g of [d.ga, d.gb]) {
      assert.ok(g.vectorsInjected! > 0);
      assert.equal(g['exits.eoi'], g.vectorsInjected, 'one EOI exit per injected vector');
      assert.equal(g['exits.ept'], 0, 'no MMIO exit (doorbells are not trapped)');
      assert.equal(g['exits.io'], 0);
      assert.equal(g['exits.vmcall'], 0);
      assert.ok(g['exits.extint']! + g['exits.intwin']! <= g.vectorsInjected!);
    }
    assert.ok(d.a['driver.tailWrites']! >= d.a['driver.txPackets']!, 'one tail doorbell per packet');
    assert.equal(d.physIrqs, d.a['vf.msix']! + d.b['vf.msix']!, 'each MSI-X a physical interrupt Xen took');
    assert.ok(d.cpu.xenOwn > 0, "Xen's handling of the physical interrupts is charged to the pCPUs");
    const nic = d.cpu.devices.find((x) => x.name === 'nic');
    assert.ok(nic !== undefined && nic.busy > 0, "the NIC's own work is its own row");
  });

  it('tcp_stream and udp_stream byte-exact; TSO in the NIC; no Dom0 CPU', () => {
    const { env, host, ends, a, b } = twoGuests();
    // ARP first: its broadcasts are replicated to the PF (Dom0's bridge), as the 82599 does; the data path has no Dom0.
    const pg = ping(env, ends, { count: 2, size: 56 });
    env.run({ until: pg });
    const s0 = snap(host, a, b);
    const ts = tcpStream(env, ends, { bytes: 2_000_000, messageSize: 65536 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 2_000_000);
    const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 3 * MS } });
    env.run({ until: us });
    assert.ok(us.value.receivedMessages > 20, `udp_stream received ${us.value.receivedMessages}`);
    assert.equal(us.value.reordered, 0);
    assert.equal(us.value.receivedMessages + us.value.lostMessages, us.value.sentMessages);
    const d = delta(host, s0, snap(host, a, b));
    assert.ok(d.a['vf.txFrames']! > d.a['vf.txPackets']!, 'the NIC segmented TSO packets');
    assert.equal(d.bridge, 0);
    assert.equal(d.cpu.domains.find((x) => x.name === 'Domain-0')!.total, 0);
    assert.equal(d.ga.grantCopies, 0);
    assert.equal(d.a['vf.txMalformed'], 0);
    assert.equal(d.a['vf.txIommuFaults'], 0);
  });

  it("a driver that programs a buffer outside its guest's memory gets an IOMMU fault: the frame dropped and counted, nothing reaches the peer, traffic goes on, nothing throws", () => {
    const { env, host, ends, a, b } = twoGuests();
    const pg = ping(env, ends, { count: 2, size: 56 });
    env.run({ until: pg });
    const domA = host.guest('a').domain;
    // A buffer the guest's driver believes is at gfn 0xf0000 — the MMIO hole, not its RAM.
    class Stray extends PacketBuffer {
      readonly bytes = new Uint8Array(128).fill(0x5a);
      readonly domid = domA.domid;
      readonly gfn = 0xf0000;
      readonly offset = 0;
      freed = false;
      protected recycle(): void {
        this.freed = true;
      }
    }
    const buf = new Stray();
    const faults0 = host.hv.iommu.faultsByDomain.get(domA.domid) ?? 0;
    const rx0 = b.vf.stats.rxFrames;
    assert.equal(a.driver.xmit(new Packet(buf.bytes.subarray(0, 100), buf, 0)), true);
    env.run({ until: env.now + 1 * MS });
    assert.equal(a.vf.stats.txIommuFaults, 1);
    assert.equal((host.hv.iommu.faultsByDomain.get(domA.domid) ?? 0) - faults0, 1, "the fault names a's domain");
    assert.equal(b.vf.stats.rxFrames, rx0, 'nothing reached b');
    assert.equal(host.hv.iommu.faultsByDomain.get(host.guest('b').domain.domid) ?? 0, 0);
    // The descriptor completed: the driver's clean-up freed the packet on the next poll.
    const again = ping(env, ends, { count: 3, size: 56 });
    env.run({ until: again });
    assert.ok(again.value.received >= 3 && again.value.received === again.value.transmitted, 'the queue goes on');
    assert.ok(buf.freed, 'the dropped packet was completed and freed');
  });

  it('is deterministic: the same seed gives the same counters', () => {
    const once = (): string => {
      const { env, host, ends, a, b } = twoGuests(11);
      const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 2 * MS } });
      env.run({ until: rr });
      return JSON.stringify([rr.value.transactions, a.stats(), b.stats(), [...host.hv.countersSnapshot().values()]]);
    };
    assert.equal(once(), once());
  });
});
