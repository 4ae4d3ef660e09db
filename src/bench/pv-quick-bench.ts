/**
 * A quick look at the pv path (not the bench:paths table): two HVM guests on one host, 1-byte
 * tcp_rr and a 64 KiB-message tcp_stream, with the per-frame counts and the simulation speed.
 * Run: npm run build && node dist/bench/pv-quick-bench.js
 */
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { diffCounters, type CounterSnapshot } from '../xen/index.js';
import type { PvNic } from '../vnet/pv/index.js';
import { Host } from '../host/host.js';
import { tcpRr, tcpStream } from './workloads/index.js';

const profile = Profile.load('default');
const env = new SimEnvironment({ seed: 1 });
const built = env.process(
  Host.build(env, profile, {
    pcpus: 4,
    dom0: { vcpus: 2, memoryMiB: 1024 },
    guests: [
      { name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
      { name: 'b', nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
    ],
  }),
);
env.run({ until: built });
if (!built.ok) throw built.error;
const host = built.value;
const ends = { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') };
const nics = ['a', 'b'].map((g) => host.guest(g).nics[0]!.attached as PvNic);
const counters = (): Map<string, CounterSnapshot> => new Map([...host.hv.countersSnapshot().values()].map((v) => [v.name, v.counters]));
const sum = (k: string): number => nics.reduce((n, x) => n + x.stats()[k]!, 0);

function measure(name: string, start: () => { done: () => boolean; report: () => string }): void {
  const c0 = counters();
  const f0 = sum('back.txFrames');
  const n0 = sum('front.txNotify') + sum('front.rxNotify') + sum('back.txNotify') + sum('back.rxNotify');
  const t0 = env.now;
  const w0 = performance.now();
  const w = start();
  while (!w.done()) env.run({ until: env.now + 1 * MS });
  const wall = (performance.now() - w0) / 1e3;
  const sim = (env.now - t0) / 1e9;
  const c1 = counters();
  const d0 = diffCounters(c1.get('Domain-0')!, c0.get('Domain-0'));
  const ga = diffCounters(c1.get('a')!, c0.get('a'));
  const gb = diffCounters(c1.get('b')!, c0.get('b'));
  const frames = sum('back.txFrames') - f0;
  const notes = sum('front.txNotify') + sum('front.rxNotify') + sum('back.txNotify') + sum('back.rxNotify') - n0;
  console.log(`${name}: ${w.report()}`);
  console.log(
    `  frames ${frames}; Dom0 grant copies/frame ${(d0.grantCopies! / frames).toFixed(2)}, copy bytes/frame ${(d0.grantCopyBytes! / frames).toFixed(0)}; guest grant copies ${ga.grantCopies! + gb.grantCopies!}; notifications/frame ${(notes / frames).toFixed(2)}; simulated ${(sim * 1e3).toFixed(1)} ms in ${wall.toFixed(2)} s wall (${(sim / wall).toFixed(3)} sim s per wall s)`,
  );
}

measure('tcp_rr 1/1', () => {
  const p = tcpRr(env, ends, { timing: { warmup: 5 * MS, duration: 50 * MS } });
  return {
    done: () => p.triggered,
    report: () =>
      `${p.value.transactionsPerSecond.toFixed(0)} trans/s, mean ${(p.value.latency.mean / 1e3).toFixed(1)} us, p99 ${(p.value.latency.p99 / 1e3).toFixed(1)} us`,
  };
});
measure('tcp_stream 64 KiB messages', () => {
  const p = tcpStream(env, { ...ends, port: 13001 }, { bytes: 50_000_000, warmupBytes: 5_000_000, messageSize: 65536 });
  return {
    done: () => p.triggered,
    report: () =>
      `${(p.value.throughputMbps / 1e3).toFixed(2)} Gbit/s, ${p.value.bytesVerified} bytes verified, ${p.value.retransmissions} retransmissions`,
  };
});
