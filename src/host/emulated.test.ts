/**
 * The emulated path on a whole host: two HVM guests whose e1000 drivers talk through their
 * qemu-dms and taps on Dom0's bridge.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import type { EmulatedNic } from '../vnet/emulated/index.js';
import { Host } from './host.js';
import { pingOnce, run } from './test-support.js';

const profile = Profile.load('default');

function build(paths: [string, string] = ['emulated', 'emulated'], seed = 5): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: ['a', 'b'].map((n, i) => ({ name: n, nics: [{ path: paths[i]!, mac: `00:16:3e:00:00:0${i + 1}`, ip: `10.0.0.${i + 1}/24` }] })),
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

const ping = pingOnce;

const nic = (host: Host, g: string): EmulatedNic => host.guest(g).nics[0]!.attached as EmulatedNic;

describe('emulated path: two HVM guests over e1000 / qemu-dm / tap', () => {
  it('ping both ways; every register access is an EPT exit and an ioreq; one ICR read per interrupt; qemu-dm does both copies', () => {
    const { env, host } = build();
    const a = nic(host, 'a');
    const b = nic(host, 'b');
    const ga = host.guest('a').domain.counters;
    const exits0 = ga.exits.ept;
    const ioreqs0 = ga.ioreqs;
    const acc0 = a.driver.stats.mmioReads + a.driver.stats.mmioWrites;
    for (let i = 1; i <= 3; i++) {
      assert.ok(ping(env, host, 'a', '10.0.0.2', i), `ping a→b ${i}`);
      assert.ok(ping(env, host, 'b', '10.0.0.1', i), `ping b→a ${i}`);
    }
    const acc = a.driver.stats.mmioReads + a.driver.stats.mmioWrites - acc0;
    assert.ok(acc > 0);
    assert.equal(ga.ioreqs - ioreqs0, acc, 'one ioreq per driver register access');
    assert.equal(ga.exits.ept - exits0, acc, 'one EPT exit per access');
    assert.equal(a.driver.stats.icrReads, a.driver.stats.irqs, 'one ICR read per interrupt');
    assert.ok(a.driver.stats.tdtWrites >= 1 && a.driver.stats.tdtWrites <= a.driver.stats.txPackets, 'at most one TDT write per packet');
    assert.equal(a.qemu.stats.framesToTap, a.driver.stats.txPackets);
    assert.ok(b.qemu.stats.framesFromTap >= 3);
    assert.ok(host.hv.domain(0)!.counters.hypercalls.get('dm_op.set_pci_intx_level')! > 0);
  });
});

describe('emulated path beside pv on one host', () => {
  it('an emulated guest and a pv guest reach each other through the bridge', () => {
    const { env, host } = build(['emulated', 'pv'], 6);
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1), 'emulated → pv');
    assert.ok(ping(env, host, 'b', '10.0.0.1', 2), 'pv → emulated');
    assert.ok(nic(host, 'a').qemu.stats.framesFromTap >= 1);
  });

  it('a driver programming a TX ring base outside its RAM stalls only its own queue; the other guests keep talking', () => {
    const env = new SimEnvironment({ seed: 8 });
    const p = env.process(
      Host.build(env, profile, {
        name: 'h',
        pcpus: 4,
        dom0: { vcpus: 2, memoryMiB: 1024 },
        guests: ['a', 'b', 'c'].map((n, i) => ({ name: n, nics: [{ path: 'emulated', mac: `00:16:3e:00:00:0${i + 1}`, ip: `10.0.0.${i + 1}/24` }] })),
      }),
    );
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const c = nic(host, 'c');
    const gc = host.guest('c');
    // Guest c's driver points TDBA past its RAM (0xf0000000 is the MMIO hole) and kicks TDT.
    run(env, host.hv.mmio(gc.domain.vcpus[0]!, 0, c.qemu.place.bar + 0x3800, 4, 0xe0000000n));
    run(env, host.hv.mmio(gc.domain.vcpus[0]!, 0, c.qemu.place.bar + 0x3818, 4, 5n));
    assert.equal(c.qemu.device.stats.txFrames, 0, 'zero descriptors: nothing sent');
    assert.equal(gc.domain.dying, false);
    assert.ok(ping(env, host, 'a', '10.0.0.2', 3), 'a and b unaffected');
  });
});
