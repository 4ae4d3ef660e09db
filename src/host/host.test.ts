import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, US, type MovableCpu, type SimEvent } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { DirectLink, ipv4, mac, type NetDevice } from '../net/index.js';
import { PathRegistry, type AttachedNic, type IoPath, type NicSpec, type PathHost, type PathKernel } from '../vnet/index.js';
import { HostDescriptionError, parseHost } from './description.js';
import { Host } from './host.js';

const profile = Profile.load('default');

/** A test path: NICs attached in pairs are joined by a direct link (no Xen in between). */
class PairPath implements IoPath {
  readonly name = 'pair';
  readonly description = 'test: two NICs joined by a direct link';
  readonly calls: { guest: string; nic: NicSpec; devid: number }[] = [];
  private link: DirectLink | null = null;
  detached = 0;
  *detachOne(host: PathHost): Generator<SimEvent<unknown>, void, unknown> {
    yield host.env.timeout(0);
    this.detached++;
  }
  *attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): Generator<SimEvent<unknown>, AttachedNic, unknown> {
    this.calls.push({ guest: guest.domain.name, nic, devid });
    let dev: NetDevice;
    if (this.link === null) {
      this.link = new DirectLink(host.env, 'pair', mac(nic.mac), mac('02:00:00:00:00:ff'), {
        bandwidth: 1e9,
        delay: 10 * US,
        rxRing: 256,
        irqCost: 0,
      });
      dev = this.link.a;
    } else {
      dev = this.link.b;
      this.link = null;
    }
    yield host.env.timeout(0);
    return {
      device: dev,
      stats: () => ({}),
      detach: () => this.detachOne(host),
    };
  }
}

function build(input: Parameters<typeof Host.build>[2], paths?: PathRegistry): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed: 3 });
  const p = env.process(Host.build(env, profile, input, paths === undefined ? {} : { paths }));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

describe('host builder', () => {
  it('builds Dom0 and guests from a description: domains, vCPUs, tenants, stacks on their vCPUs, XenStore homes', () => {
    const { host } = build({
      name: 'h1',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024, pinning: [0, 1] },
      guests: [
        { name: 'a', vcpus: 2, memoryMiB: 256, tenant: 'acme', weight: 512 },
        { name: 'b', type: 'pv', memoryMiB: 128, cap: 50 },
      ],
    });
    const a = host.guest('a');
    const b = host.guest('b');
    assert.equal(a.domain.vcpus.length, 2);
    assert.equal(a.domain.tenant, 'acme');
    assert.equal(a.domain.config.weight, 512);
    assert.equal(b.domain.kind, 'pv');
    assert.equal(b.domain.tenant, 'b');
    assert.equal(b.domain.config.cap, 50);
    assert.equal((a.stack.cpu as MovableCpu).current, a.domain.vcpus[0], "the stack runs on the guest's first vCPU");
    assert.equal(a.domain.vcpus[0]!.name, `h1:d${a.domid}v0`);
    assert.equal(host.dom0.domain.vcpus.length, 2);
    assert.deepEqual(host.dom0.domain.config.affinity, [
      [0, 1],
      [0, 1],
    ]);
    assert.equal(host.dom0.threads.length, 2);
    const name = host.toolstack.xs.read(`/local/domain/${b.domid}/name`);
    assert.ok(name.ok && Buffer.from(name.value).toString() === 'b');
  });

  it('attaches each NIC through the path it names, which plugs in without the builder knowing it; guests then talk', () => {
    const pair = new PairPath();
    const { env, host } = build(
      {
        pcpus: 2,
        guests: [
          { name: 'a', nics: [{ path: 'pair', mac: '00:16:3e:00:00:01', ip: '10.1.0.1/24' }] },
          { name: 'b', nics: [{ path: 'pair', mac: '00:16:3e:00:00:02', ip: '10.1.0.2/24', options: { x: 1 } }] },
        ],
      },
      new PathRegistry().register(pair),
    );
    assert.deepEqual(
      pair.calls.map((c) => [c.guest, c.devid, c.nic.ip, c.nic.prefix, c.nic.bridge]),
      [
        ['a', 0, '10.1.0.1', 24, 'xenbr0'],
        ['b', 0, '10.1.0.2', 24, 'xenbr0'],
      ],
    );
    assert.deepEqual(pair.calls[1]!.nic.options, { x: 1 });
    const a = host.guest('a');
    const sock = a.stack.icmp.openPing();
    const rtt = env.process(
      (function* () {
        yield* sock.send(ipv4('10.1.0.2'), 1, new Uint8Array(56));
        return yield* sock.recv();
      })(),
    );
    env.run({ until: rtt });
    assert.equal(rtt.value.seq, 1);
  });

  it('adds a guest to a running host and removes one (its NICs detached, the domain gone)', () => {
    const pair = new PairPath();
    const { env, host } = build(
      { pcpus: 2, guests: [{ name: 'a', nics: [{ path: 'pair', mac: '00:16:3e:00:00:01', ip: '10.1.0.1/24' }] }] },
      new PathRegistry().register(pair),
    );
    const add = env.process(host.addGuest({ name: 'b', nics: [{ path: 'pair', mac: '00:16:3e:00:00:02', ip: '10.1.0.2/24' }] }));
    env.run({ until: add });
    assert.ok(add.ok);
    const domid = host.guest('b').domid;
    const rm = env.process(host.removeGuest('b'));
    env.run({ until: rm });
    assert.equal(pair.detached, 1);
    assert.equal(host.hv.domain(domid), undefined);
    assert.throws(() => host.guest('b'), /no guest named "b"/);
  });

  it('rejects a bad description naming every field at fault', () => {
    const bad = (input: unknown, re: RegExp): void => {
      assert.throws(
        () => parseHost(input, 'scenario.yaml'),
        (e: unknown) => e instanceof HostDescriptionError && re.test(e.message),
      );
    };
    bad({ pcpus: 0 }, /scenario\.yaml: invalid host description:\n {2}- pcpus: /);
    bad({ pcpus: 2, guests: [{ name: 'a b' }] }, /guests\.0\.name: 1-64 letters/);
    bad(
      { pcpus: 2, guests: [{ name: 'a', nics: [{ path: 'pv', mac: '00:16:3E:00:00:01', ip: '10.0.0.1/24' }] }] },
      /guests\.0\.nics\.0\.mac: a MAC address/,
    );
    bad(
      { pcpus: 2, guests: [{ name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.300/24' }] }] },
      /guests\.0\.nics\.0\.ip: "10\.0\.0\.300\/24" is not/,
    );
    bad(
      { pcpus: 2, guests: [{ name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24', bridge: 'br9' }] }] },
      /bridge: "br9" is not one of the host's bridges \(xenbr0\)/,
    );
    bad(
      {
        pcpus: 2,
        guests: [
          { name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
          { name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
        ],
      },
      /guests\.1\.name: "a" is used twice[\s\S]*guests\.1\.nics\.0\.mac: 00:16:3e:00:00:01 is already guests\.0\.nics\.0's[\s\S]*ip: 10\.0\.0\.1 is already/,
    );
    bad({ pcpus: 2, gusts: [] }, /Unrecognized key/i);
    const env = new SimEnvironment({ seed: 1 });
    const p = env.process(
      Host.build(env, profile, { pcpus: 1, guests: [{ name: 'a', nics: [{ path: 'warp', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] }] }),
    );
    assert.throws(() => env.run({ until: p }), /guests\.0\.nics\.0\.path: "warp" is not an I\/O path this build knows/);
  });
});
