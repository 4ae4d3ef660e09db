/**
 * Guests on two hosts joined by a wire (src/host/cluster.ts, src/vnet/phys): guest → netfront
 * → netback → Dom0 bridge → physical NIC → cable → NIC → bridge → netback → netfront → guest,
 * byte-exact under every workload, with the counts that path implies. (Here because the
 * cluster build and the workloads sit above vnet in the dependency rule.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import type { PvNic } from '../vnet/pv/index.js';
import { Cluster, HostDescriptionError, parseCluster, type Host } from '../host/index.js';
import { benchHosts, runCase } from './experiment.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

function wired(type: 'hvm' | 'pv', seed = 5): { env: SimEnvironment; cluster: Cluster; ends: Endpoints } {
  const env = new SimEnvironment({ seed });
  const p = env.process(Cluster.build(env, profile, benchHosts({ path: 'wire', guestType: type })));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const cluster = p.value;
  const g = (n: string) => cluster.hostOf(n).guest(n);
  return { env, cluster, ends: { client: g('vm1').stack, server: g('vm2').stack, serverAddr: ipv4('10.0.0.2') } };
}

function dom0Counters(h: Host): CounterSnapshot {
  for (const v of h.hv.countersSnapshot().values()) if (v.name === 'Domain-0') return v.counters;
  throw new Error('no Dom0');
}

function guestCopies(h: Host): number {
  let n = 0;
  for (const v of h.hv.countersSnapshot().values()) if (v.name !== 'Domain-0') n += v.counters.grantCopies ?? 0;
  return n;
}

for (const type of ['hvm', 'pv'] as const) {
  describe(`wire: one ${type.toUpperCase()} guest on each of two hosts over pv`, () => {
    it('ping, tcp_rr, udp_rr, tcp_stream, udp_stream arrive byte-exact; each frame grant-copied once by each Dom0 and carried by both NICs', () => {
      const { env, cluster, ends } = wired(type);
      const [h1, h2] = cluster.hosts as [Host, Host];
      const [n1, n2] = cluster.wires[0]!;
      const c1 = dom0Counters(h1);
      const c2 = dom0Counters(h2);
      const pg = ping(env, ends, { count: 10, size: 1000 });
      env.run({ until: pg });
      assert.ok(pg.value.received >= 10 && pg.value.received === pg.value.transmitted, `ping ${pg.value.received}/${pg.value.transmitted}`);
      const rr = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 3 * MS } });
      env.run({ until: rr });
      const ur = udpRr(env, { ...ends, port: 13000 }, { requestSize: 64, responseSize: 64, timing: { warmup: 1 * MS, duration: 3 * MS } });
      env.run({ until: ur });
      assert.ok(rr.value.transactions > 30 && ur.value.transactions > 30, `tcp_rr ${rr.value.transactions}, udp_rr ${ur.value.transactions}`);
      const ts = tcpStream(env, { ...ends, port: 13001 }, { bytes: 2_000_000, messageSize: 65536 });
      env.run({ until: ts });
      assert.equal(ts.value.bytesVerified, 2_000_000);
      const us = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 2 * MS } });
      env.run({ until: us });
      assert.ok(us.value.receivedMessages > 100, `udp_stream received ${us.value.receivedMessages}`);
      assert.equal(us.value.reordered, 0);
      assert.equal(us.value.receivedMessages + us.value.lostMessages, us.value.sentMessages);

      // What vm1's netback sent into h1's bridge left on h1's NIC, and h2's NIC took it in; h2's Dom0 copied it to vm2.
      const vif1 = cluster.hostOf('vm1').guest('vm1').nics[0]!.attached as PvNic;
      const vif2 = cluster.hostOf('vm2').guest('vm2').nics[0]!.attached as PvNic;
      const s1 = vif1.stats();
      const s2 = vif2.stats();
      assert.ok(n1.end.stats.frames > 0 && n2.end.stats.frames > 0);
      assert.equal(s2['back.rxForeign'], 0, 'frames from the wire land in Dom0 memory (the NIC DMAs into Dom0 pages)');
      // Both Dom0s copy: TX out of their guest, RX into it. The guests copy nothing.
      const d1 = diffCounters(dom0Counters(h1), c1);
      const d2 = diffCounters(dom0Counters(h2), c2);
      assert.equal(d1.grantCopyBytes, s1['back.txBytes']! + s1['back.rxBytes']!);
      assert.equal(d2.grantCopyBytes, s2['back.txBytes']! + s2['back.rxBytes']!);
      assert.equal(guestCopies(h1) + guestCopies(h2), 0);
      // Nothing vm1 sent stayed on h1: every frame netback took from vm1 went out on eth0 (TSO may cut it up).
      assert.ok(
        n1.end.stats.bytes >= s1['back.txBytes']! - 14 * s1['back.txFrames']!,
        `h1 eth0 sent ${n1.end.stats.bytes} B, vm1 sent ${s1['back.txBytes']} B`,
      );
      assert.equal(n1.end.stats.rxDropped + n2.end.stats.rxDropped, 0);
    });
  });
}

describe('wire: the bench reference', () => {
  it('runCase path "wire": verified, two bridges per frame, CPU per host', () => {
    const r = runCase(
      profile,
      { path: 'wire', test: 'tcp_rr', size: 1, guestType: 'hvm', seed: 2, warmupNs: 1 * MS, durationNs: 3 * MS },
      { wallMs: () => 0 },
    );
    assert.equal(r.verified, true);
    assert.ok(r.transactionsPerSec! > 1000);
    // Per frame over the window (a frame in flight at either edge is counted on one side only).
    const near2 = (x: number): boolean => Math.abs(x - 2) < 0.02;
    assert.ok(near2(r.perFrame.dom0Packets), `every frame crosses the sending and the receiving host's bridge: ${r.perFrame.dom0Packets}`);
    assert.ok(near2(r.perFrame.grantCopies), `one TX copy on the sender's Dom0, one RX copy on the receiver's: ${r.perFrame.grantCopies}`);
    for (const k of ['h1:Domain-0', 'h1:vm1', 'h2:Domain-0', 'h2:vm2']) assert.ok(r.cpu[k]! > 0, `${k} ${r.cpu[k]}`);
    const same = runCase(
      profile,
      { path: 'pv', test: 'tcp_rr', size: 1, guestType: 'hvm', seed: 2, warmupNs: 1 * MS, durationNs: 3 * MS },
      { wallMs: () => 0 },
    );
    assert.ok(r.latencyUs!.mean > same.latencyUs!.mean, `across the wire ${r.latencyUs!.mean} µs, on one host ${same.latencyUs!.mean} µs`);
  });

  it('the same seed gives the same run', () => {
    const once = (): string =>
      JSON.stringify(
        runCase(
          profile,
          { path: 'wire', test: 'tcp_stream', size: 16384, guestType: 'hvm', seed: 4, warmupNs: 1 * MS, durationNs: 2 * MS },
          { wallMs: () => 0 },
        ),
      );
    assert.equal(once(), once());
  });
});

describe('cluster descriptions', () => {
  const host = (name: string, guest: string, ip: string, mac: string) => ({
    name,
    pcpus: 2,
    guests: [{ name: guest, nics: [{ path: 'pv', mac, ip }] }],
  });
  const problems = (input: Parameters<typeof parseCluster>[0]): string[] => {
    try {
      parseCluster(input, 'c.yaml');
    } catch (e) {
      assert.ok(e instanceof HostDescriptionError);
      return e.problems;
    }
    return [];
  };

  it('accepts two wired hosts, with the default bridge', () => {
    const d = parseCluster({
      hosts: [host('a', 'x', '10.0.0.1/24', '00:16:3e:00:00:01'), host('b', 'y', '10.0.0.2/24', '00:16:3e:00:00:02')],
      wires: [{ between: ['a', 'b:xenbr0'] }],
    });
    assert.deepEqual(d.wires, [{ a: { host: 'a', bridge: 'xenbr0' }, b: { host: 'b', bridge: 'xenbr0' } }]);
  });

  it('names each bad wire end and each name or address used twice across hosts', () => {
    const p = problems({
      hosts: [
        host('a', 'x', '10.0.0.1/24', '00:16:3e:00:00:01'),
        host('b', 'x', '10.0.0.1/24', '00:16:3e:00:00:01'),
        host('a', 'z', '10.0.0.3/24', '00:16:3e:00:00:03'),
      ],
      wires: [{ between: ['a', 'nohost'] }, { between: ['a', 'b:xenbr9'] }, { between: ['a', 'a'] }, { between: ['a'] }],
    });
    const has = (re: RegExp): void =>
      assert.ok(
        p.some((x) => re.test(x)),
        `${re} in\n${p.join('\n')}`,
      );
    has(/^hosts\.2\.name: host name "a" is already hosts\.0\.name's/);
    has(/^hosts\.1\.guests\.0\.name: guest name "x" is already/);
    has(/^hosts\.1\.guests\.0\.nics\.0\.mac: 00:16:3e:00:00:01 is already/);
    has(/^hosts\.1\.guests\.0\.nics\.0\.ip: 10\.0\.0\.1 is already/);
    has(/^wires\.0\.between\.1: no host named "nohost"/);
    has(/^wires\.1\.between\.1: host b has no bridge "xenbr9"/);
    has(/^wires\.2\.between: both ends on host a/);
    has(/^wires\.3\.between/);
  });
});
