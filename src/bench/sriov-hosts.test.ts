/**
 * The SR-IOV path on whole hosts: a VF guest beside a pv guest on one host (they meet through
 * the PF and Dom0's bridge, as on real hosts), VF guests on two hosts joined by the NIC's wire
 * port, and a VF named by an xl.cfg `pci=` entry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { sriovNicOf, type SriovVfNic } from '../vnet/index.js';
import { ping, tcpRr, tcpStream } from './workloads/index.js';
import { Cluster, parseCluster } from '../host/cluster.js';
import { Host } from '../host/host.js';
import { xlGuest } from '../host/xl-config.js';

const profile = Profile.load('default');

describe('sriov on a host', () => {
  it("a VF guest and a pv guest on one host talk through the PF and Dom0's bridge, byte-exact", () => {
    const env = new SimEnvironment({ seed: 3 });
    const p = env.process(
      Host.build(env, profile, {
        name: 'h',
        pcpus: 4,
        dom0: { vcpus: 2, memoryMiB: 1024 },
        guests: [
          { name: 'a', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
          { name: 'b', nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
        ],
      }),
    );
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const nic = sriovNicOf(host.hv)!;
    const ends = { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') };
    const pg = ping(env, ends, { count: 5, size: 56 });
    env.run({ until: pg });
    assert.ok(pg.value.received >= 5 && pg.value.received === pg.value.transmitted);
    const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 2 * MS } });
    env.run({ until: rr });
    assert.ok(rr.value.transactions > 10);
    const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 500_000, messageSize: 65536 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 500_000);
    assert.ok(nic.stats.toPf > 0 && nic.stats.fromPf > 0, `PF ${nic.stats.toPf} in, ${nic.stats.fromPf} out`);
    assert.equal(nic.stats.toWire, 0, 'nothing for b went to the wire: the PF filter has its MAC');
    const br = host.dom0.network.bridge('xenbr0');
    assert.ok(br.stats.rxFrames > 0, "through Dom0's bridge");
  });

  it("VF guests on two hosts reach each other through the NICs' wire ports, with no Dom0 in the path; and a pv guest beyond the wire", () => {
    const env = new SimEnvironment({ seed: 4 });
    const desc = parseCluster({
      hosts: [
        { name: 'h1', pcpus: 4, dom0: { vcpus: 2 }, guests: [{ name: 'a', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] }] },
        {
          name: 'h2',
          pcpus: 4,
          dom0: { vcpus: 2 },
          guests: [
            { name: 'b', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
            { name: 'c', nics: [{ path: 'pv', mac: '00:16:3e:00:00:03', ip: '10.0.0.3/24' }] },
          ],
        },
      ],
      wires: [{ between: ['h1', 'h2'] }],
    });
    const p = env.process(Cluster.build(env, profile, desc));
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const cl = p.value;
    const n1 = sriovNicOf(cl.host('h1').hv)!;
    const n2 = sriovNicOf(cl.host('h2').hv)!;
    assert.equal(cl.wires[0]![0].end, n1.wire, "the wire joins the SR-IOV NICs' own ports");
    assert.equal(cl.host('h1').nics.length, 0, 'no separate Dom0 NIC');
    const a = cl.host('h1').guest('a').stack;
    const ends = { client: a, server: cl.host('h2').guest('b').stack, serverAddr: ipv4('10.0.0.2') };
    const pg = ping(env, ends, { count: 3, size: 56 });
    env.run({ until: pg });
    assert.ok(pg.value.received >= 3 && pg.value.received === pg.value.transmitted);
    const cpu0 = cl.hosts.map((h) => h.hv.snapshot());
    const br0 = cl.hosts.map((h) => h.dom0.network.bridge('xenbr0').stats.rxFrames);
    const ts = tcpStream(env, ends, { bytes: 1_000_000, messageSize: 65536 });
    env.run({ until: ts });
    assert.equal(ts.value.bytesVerified, 1_000_000);
    assert.ok(n1.stats.toWire > 0 && n2.stats.fromWire > 0);
    cl.hosts.forEach((h, i) => {
      assert.equal(h.dom0.network.bridge('xenbr0').stats.rxFrames, br0[i], `${h.name}: no frame through Dom0's bridge`);
      assert.equal(h.hv.cpuReport(cpu0[i]).domains.find((d) => d.name === 'Domain-0')!.total, 0, `${h.name}: no Dom0 CPU`);
    });
    // a → c: over the wire, then h2's VEB hands it to the PF (its filter has c's MAC) and Dom0's bridge to c's vif.
    const toC = { client: a, server: cl.host('h2').guest('c').stack, serverAddr: ipv4('10.0.0.3') };
    const rr = tcpRr(env, { ...toC, port: 13010 }, { timing: { warmup: 1 * MS, duration: 2 * MS } });
    env.run({ until: rr });
    assert.ok(rr.value.transactions > 10);
    assert.ok(n2.stats.toPf > 0);
  });

  it('an xl.cfg pci= entry names the VF the guest gets; a VF already assigned is an error naming it', () => {
    const env = new SimEnvironment({ seed: 5 });
    const g1 = xlGuest('a.cfg', 'name="a"\ntype="hvm"\npci=["01:10.1,mac=00:16:3e:00:00:01,ip=10.0.0.1"]');
    const g2 = xlGuest('b.cfg', 'name="b"\ntype="hvm"\npci=["0000:01:10.1,mac=00:16:3e:00:00:02,ip=10.0.0.2"]');
    const p = env.process(Host.build(env, profile, { name: 'h', pcpus: 2, guests: [g1] }));
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const vf = (host.guest('a').nics[0]!.attached as SriovVfNic).vf;
    assert.equal(vf.bdf, '01:10.1');
    assert.equal(vf.owner, host.guest('a').domain);
    assert.throws(() => {
      const q = env.process(host.addGuest(g2));
      env.run({ until: q });
      if (!q.ok) throw q.error;
    }, /b: nic 0: VF 01:10\.1 is already assigned to a/);
  });

  it('hot-unplug (a guest removed): its VF goes back to the PF, its IOMMU context and interrupt binding with it, and a new guest gets it', () => {
    const env = new SimEnvironment({ seed: 6 });
    const p = env.process(
      Host.build(env, profile, {
        name: 'h',
        pcpus: 2,
        guests: [{ name: 'a', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] }],
      }),
    );
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const vf = (host.guest('a').nics[0]!.attached as SriovVfNic).vf;
    const r = env.process(host.removeGuest('a'));
    env.run({ until: r });
    if (!r.ok) throw r.error;
    assert.equal(vf.owner, null);
    assert.equal(host.hv.iommu.owner(vf.bdf), undefined);
    const q = env.process(host.addGuest({ name: 'c', nics: [{ path: 'sriov', mac: '00:16:3e:00:00:03', ip: '10.0.0.3/24' }] }));
    env.run({ until: q });
    if (!q.ok) throw q.error;
    const vc = (host.guest('c').nics[0]!.attached as SriovVfNic).vf;
    assert.equal(vc, vf, 'the freed VF is reused');
    assert.equal(host.hv.iommu.owner(vf.bdf), host.guest('c').domain);
  });
});
