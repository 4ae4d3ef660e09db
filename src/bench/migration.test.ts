/**
 * Live migration (src/host/migration.ts) end to end: two hosts wired, a TCP stream from a
 * guest on host 1 to a co-resident receiver over an HV²M channel; the receiver migrates to
 * host 2 in the middle of the stream and back. (Here because it needs the cluster and the
 * workloads.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, type Process } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import type { Hv2mNic } from '../vnet/index.js';
import { Cluster, MigrationError, parseCluster, type MigrationOptions, type MigrationResult } from '../host/index.js';
import { tcpStream } from './workloads/index.js';

const profile = Profile.load('default');

function world(seed = 7, opts: { peerOnHost2?: boolean } = {}): { env: SimEnvironment; cluster: Cluster } {
  const env = new SimEnvironment({ seed });
  const nic = (i: number) => ({ path: 'hv2m', mac: `00:16:3e:00:00:0${i}`, ip: `10.0.0.${i}/24` });
  const desc = parseCluster({
    hosts: [
      {
        name: 'h1',
        pcpus: 4,
        dom0: { vcpus: 2, memoryMiB: 1024, ip: '10.0.0.251/24' },
        guests: [
          { name: 'a', type: 'hvm', tenant: 't', nics: [nic(1)] },
          { name: 'b', type: 'hvm', tenant: 't', memoryMiB: 16, nics: [nic(2)] },
        ],
      },
      {
        name: 'h2',
        pcpus: 4,
        dom0: { vcpus: 2, memoryMiB: 1024, ip: '10.0.0.252/24' },
        hv2m: {},
        guests: opts.peerOnHost2 === true ? [{ name: 'c', type: 'hvm', tenant: 't', nics: [nic(3)] }] : [],
      },
    ],
    wires: [{ between: ['h1', 'h2'] }],
  });
  const p = env.process(Cluster.build(env, profile, desc));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  env.run({ until: env.now + 5 * MS });
  return { env, cluster: p.value };
}

function hv2mOf(c: Cluster, guest: string): Hv2mNic {
  return c.hostOf(guest).guest(guest).nics[0]!.attached as Hv2mNic;
}

function migrate(env: SimEnvironment, c: Cluster, guest: string, to: string, opts: MigrationOptions = {}): MigrationResult {
  const m: Process<MigrationResult> = env.process(c.migrate(guest, to, opts), `migrate ${guest}`);
  env.run({ until: m });
  if (!m.ok) throw m.error;
  return m.value;
}

describe('live migration', () => {
  it('an idle and a busy guest: every page copied over the wire; migration time, pause and pages sent grow with the dirtying rate', () => {
    const idle = world();
    const ri = migrate(idle.env, idle.cluster, 'b', 'h2');
    assert.equal(idle.cluster.hostOf('b').name, 'h2');
    assert.equal(ri.rounds[0]!.pages, 16 * 256, 'round 1 sends every page');
    assert.ok(ri.streamBytes > 16 * 1024 * 1024);
    assert.ok(
      idle.cluster.wires[0]![0].end.stats.bytes >= ri.streamBytes,
      `the pages went over the wire: ${idle.cluster.wires[0]![0].end.stats.bytes} bytes`,
    );
    assert.ok(ri.liveRounds < 29, `an idle guest converges: ${ri.liveRounds} rounds`);

    const busy = world();
    const a = busy.cluster.host('h1').guest('a');
    const b = busy.cluster.host('h1').guest('b');
    const ts = tcpStream(
      busy.env,
      { client: a.stack, server: b.stack, serverAddr: ipv4('10.0.0.2'), port: 13200 },
      { timing: { warmup: 0, duration: 400 * MS }, messageSize: 65536 },
    );
    busy.env.run({ until: busy.env.now + 2 * MS });
    const rb = migrate(busy.env, busy.cluster, 'b', 'h2');
    busy.env.run({ until: ts });
    assert.ok(ts.ok, String(ts.error));
    if (process.env.MIG_DEBUG) console.log(JSON.stringify({ ri, rb }));
    const brief = (r: MigrationResult) =>
      `${r.liveRounds} rounds, ${r.pagesSent} pages, ${(r.totalNs / 1e6).toFixed(1)} ms, pause ${(r.pauseNs / 1e6).toFixed(2)} ms`;
    assert.ok(rb.pagesSent > ri.pagesSent && rb.liveRounds > ri.liveRounds, `busy: ${brief(rb)}; idle: ${brief(ri)}`);
    assert.ok(rb.totalNs > ri.totalNs, `migration time grows: ${brief(rb)} vs ${brief(ri)}`);
    assert.ok(rb.pauseNs > ri.pauseNs, `the pause grows: ${brief(rb)} vs ${brief(ri)}`);
  });

  it('the receiver of a TCP stream migrates to host 2 mid-stream and back: no byte lost, the switch reorders nothing, the channel goes and comes back', () => {
    const { env, cluster } = world(11);
    const a = cluster.host('h1').guest('a');
    const b = cluster.host('h1').guest('b');
    assert.ok(hv2mOf(cluster, 'a').settled && hv2mOf(cluster, 'b').settled, 'a and b have their channel');
    const ts = tcpStream(
      env,
      { client: a.stack, server: b.stack, serverAddr: ipv4('10.0.0.2'), port: 13100 },
      { timing: { warmup: 0, duration: 600 * MS }, messageSize: 65536 },
    );
    env.run({ until: env.now + 3 * MS });
    const na = hv2mOf(cluster, 'a');
    assert.ok(na.module.stats.txFrames > 100, `the stream is on the channel: ${na.module.stats.txFrames} frames pushed`);
    const ta = a.stack.tcp.stats;
    const tb = b.stack.tcp.stats;
    // Frames the hosts' bridges dropped (a full port queue: congestion, e.g. the migration stream sharing the wire).
    const drops = (): number => {
      let n = 0;
      for (const h of cluster.hosts) for (const br of h.dom0.network.bridges.values()) for (const v of Object.values(br.stats.dropped)) n += v;
      return n;
    };
    const snap = () => ({
      t: env.now,
      retrans: ta.retransSegs + tb.retransSegs,
      dupAcks: ta.dupAcksIn + tb.dupAcksIn,
      ofo: tb.ofoSegs + ta.ofoSegs,
      timeouts: ta.timeouts,
      fast: ta.fastRetransmits,
      drops: drops(),
    });
    const log: Record<string, ReturnType<typeof snap>> = { start: snap() };
    const wire = cluster.wires[0]![0].end.stats;
    const m1 = migrate(env, cluster, 'b', 'h2', { maxIterations: 5, onPhase: (p) => (log[`out.${p}`] = snap()) });
    log.out = snap();
    assert.equal(cluster.hostOf('b').name, 'h2');
    assert.equal(na.module.channels.size, 0, 'the channel is gone');
    const w0 = wire.bytes;
    const pv0 = na.stats()['front.txPackets']!;
    // The pause lost what was in flight to b: the sender's retransmission timer brings it back.
    const stall = env.now;
    while (ta.timeouts === log.out.timeouts && env.now - stall < 400 * MS) env.run({ until: env.now + 1 * MS });
    log.rto = snap();
    env.run({ until: env.now + 5 * MS });
    assert.ok(wire.bytes - w0 > 1_000_000, `the stream goes on over the wire: ${wire.bytes - w0} bytes in 5 ms`);
    assert.ok(na.stats()['front.txPackets']! - pv0 > 100, 'out of a’s pv NIC');
    log.beforeBack = snap();
    const m2 = migrate(env, cluster, 'b', 'h1', { maxIterations: 5, onPhase: (p) => (log[`back.${p}`] = snap()) });
    log.back = snap();
    const nb = hv2mOf(cluster, 'b');
    const t0 = env.now;
    while (!(na.settled && nb.settled) && env.now - t0 < 100 * MS) env.run({ until: env.now + 1 * MS });
    assert.ok(na.settled && nb.settled, 'the channel came back within 100 ms of landing');
    const f0 = na.module.stats.txFrames;
    log.channel = snap();
    // The second pause too: recovered by the sender's timer, then the flow runs on the channel.
    const stall2 = env.now;
    while (ta.timeouts === log.back.timeouts && env.now - stall2 < 400 * MS) env.run({ until: env.now + 1 * MS });
    env.run({ until: env.now + 10 * MS });
    log.recovered = snap();
    env.run({ until: ts });
    assert.ok(ts.ok, String(ts.error));
    log.end = snap();
    const d = (x: string, y: string) => {
      const p = log[x]!;
      const q = log[y]!;
      return { retrans: q.retrans - p.retrans, dupAcks: q.dupAcks - p.dupAcks, ofo: q.ofo - p.ofo };
    };
    const none = { retrans: 0, dupAcks: 0, ofo: 0 };
    if (process.env.MIG_DEBUG) console.log(JSON.stringify({ m1, m2, log }));
    assert.ok(ts.value.bytesVerified > 100_000_000, `every byte sent arrived, in order, intact (the workload checks): ${ts.value.bytesVerified}`);
    // The switch off the channel and the pre-copy rounds: nothing lost, reordered or re-sent.
    assert.deepEqual(d('start', 'out.paused'), none, 'leaving host 1: from the channel teardown to the pause');
    // On the wire, the pre-copy stream competes with the flow for the link and Dom0's queues: a
    // frame a full queue dropped is congestion, recovered by TCP as loss, not a reordering by the
    // switch. So out-of-order arrivals there are allowed only after a counted drop.
    for (const [x, y] of [
      ['rto', 'back.switched'],
      ['back.switched', 'back.paused'],
    ] as const) {
      const dd = d(x, y);
      const dropped = log[y]!.drops - log[x]!.drops;
      assert.ok(
        dd.ofo === 0 || dropped > 0,
        `${x} → ${y}: ${dd.ofo} segments out of order with no frame dropped on the way (a reordering): ${JSON.stringify(dd)}`,
      );
    }
    assert.deepEqual(d('beforeBack', 'back.switched'), none, 'leaving host 2: the channel teardown itself');
    // The pauses lost what was in flight to b; each is recovered by one retransmission timeout, not by the switch.
    assert.equal(log.rto.timeouts - log.out.timeouts, 1, 'one RTO after the first pause');
    assert.ok(log.rto.t - log['out.paused']!.t >= 200 * MS, 'no sooner than TCP’s minimum RTO after the pause');
    // Back on host 1, on the channel once more: nothing more re-sent or reordered.
    assert.deepEqual(d('recovered', 'end'), none, 'after the channel came back');
    assert.ok(na.module.stats.txFrames - f0 > 100, `the stream went back on the channel: ${na.module.stats.txFrames - f0} frames pushed`);
    assert.equal(m1.stuckGrants + m2.stuckGrants, 0);
    assert.ok(m1.pauseNs > 0 && m1.pauseNs < m1.totalNs && m2.pauseNs > 0 && m2.pauseNs < m2.totalNs);
  });

  it('a migration that cannot be done says why and leaves the guest where it was', () => {
    const env = new SimEnvironment({ seed: 3 });
    const desc = parseCluster({
      hosts: [
        {
          name: 'h1',
          pcpus: 2,
          dom0: { vcpus: 1, memoryMiB: 1024, ip: '10.0.0.251/24' },
          guests: [
            { name: 'b', type: 'hvm', memoryMiB: 16, nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
            { name: 'e', type: 'hvm', memoryMiB: 16, nics: [{ path: 'emulated', mac: '00:16:3e:00:00:05', ip: '10.0.0.5/24' }] },
          ],
        },
        { name: 'h2', pcpus: 2, dom0: { vcpus: 1, memoryMiB: 1024 }, guests: [] },
        { name: 'h3', pcpus: 2, dom0: { vcpus: 1, memoryMiB: 1024, ip: '10.0.0.253/24' }, guests: [] },
      ],
      wires: [{ between: ['h1', 'h2'] }, { between: ['h1', 'h3'] }],
    });
    const p = env.process(Cluster.build(env, profile, desc));
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const c = p.value;
    const fails = (guest: string, to: string, re: RegExp) => {
      const m = env.process(c.migrate(guest, to));
      assert.throws(
        () => {
          env.run({ until: m });
          if (!m.ok) throw m.error;
        },
        (e: unknown) => e instanceof MigrationError && re.test(e.message),
      );
    };
    fails('b', 'h2', /both Dom0s need an address \(dom0\.ip\)/);
    fails('e', 'h3', /path "emulated", which cannot migrate/);
    fails('b', 'h1', /already on h1/);
    assert.equal(c.hostOf('b').name, 'h1');
    assert.equal(c.hostOf('e').name, 'h1');
    assert.equal(c.host('h3').hv.domain(1), undefined, 'no domain left behind on the target');
    // And a pv guest (no hv2m) migrates.
    const r = env.process(c.migrate('b', 'h3'));
    env.run({ until: r });
    assert.ok(r.ok, String(r.error));
    assert.equal(c.hostOf('b').name, 'h3');
    assert.equal(c.host('h1').hv.domain(r.value.oldDomid), undefined, 'the old domain is gone from h1');
    assert.ok(c.host('h3').hv.domain(r.value.newDomid) !== undefined);
  });

  it('the same seed gives the same migration', () => {
    const once = (): string => {
      const w = world(5);
      return JSON.stringify(migrate(w.env, w.cluster, 'b', 'h2'));
    };
    assert.equal(once(), once());
  });
});
