/**
 * `npm run bench:sched`: what the credit scheduler model produces, from its mechanisms only.
 * 1. Shares: weights 256:512 on one pCPU; a cap of 50; printed as xentop would. (Weights are
 *    host-wide in credit1: pinning two domains to one pCPU of a larger host does not split
 *    that pCPU by weight, as on real Xen.)
 * 2. Wake-up latency of an I/O-bound vCPU (woken by an event every 1-10 ms, seeded) sharing
 *    a pCPU with a CPU-bound one, with and without BOOST (the effect Ongaro et al., VEE 2008,
 *    §3.4 describe). Latency is from the event to the switch; the
 *    vCPU switch cost follows. The CPU hog itself starts BOOSTed (it woke at time 0) until
 *    its first tick, so a wake-up in the first 10 ms waits for its slice, as on Xen.
 * 3. The same wake-up case, BOOST on, under the Xen release of each profile in profiles/ and
 *    under the other releases whose credit1 rules differ (the default profile with only
 *    xen.version changed): every 1-10 ms as in 2, and every 0.1-1.1 ms, where wakes often
 *    come while the hog is inside its rate limit (4.5-4.7 keep it a full limit from the
 *    decision, 4.8+ only for the remainder, 3.2 has no limit).
 */
import { readdirSync } from 'node:fs';
import { MS, S, SimEnvironment, US, type ProcessGenerator } from '../sim/index.js';
import { Profile, profilesDir } from '../profile/index.js';
import { Hypervisor, TP_SCHED_SWITCH } from '../xen/index.js';
import { formatCpuReport } from './cpu-report.js';

const profile = Profile.load(process.env.HV2M_PROFILE ?? 'default');

function shares(title: string, pcpus: number, specs: { name: string; weight: number; cap: number }[]): void {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, profile, { pcpus });
  hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1 });
  const vcpus = new Map<number, number>([[0, 1]]);
  for (const s of specs) {
    const d = hv.createDomain({ name: s.name, kind: 'hvm', vcpus: 1, weight: s.weight, cap: s.cap });
    vcpus.set(d.domid, 1);
    env.process(
      (function* (): ProcessGenerator<void> {
        for (;;) yield d.vcpus[0]!.exec(1 * MS, 'user');
      })(),
    );
  }
  env.run({ until: 10 * S });
  console.log(`${title}, CPU-bound guests, 10 s`);
  console.log(formatCpuReport(hv.cpuReport(), vcpus));
  console.log();
}

function wakeLatency(boost: boolean, prof: Profile = profile, gap: { min: number; spread: number } = { min: 1 * MS, spread: 9 * MS }): string {
  const env = new SimEnvironment({ seed: 7 });
  const hv = new Hypervisor(env, prof, { pcpus: 1, boost });
  hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1 });
  const hog = hv.createDomain({ name: 'hog', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
  const io = hv.createDomain({ name: 'io', kind: 'hvm', vcpus: 1 }).vcpus[0]!;
  env.process(
    (function* (): ProcessGenerator<void> {
      for (;;) yield hog.exec(1 * MS, 'user');
    })(),
  );
  const lat: number[] = [];
  let wokeAt = -1;
  env.trace.on(TP_SCHED_SWITCH, (t, p) => {
    if (p.to === io.name && wokeAt >= 0) {
      lat.push(t - wokeAt);
      wokeAt = -1;
    }
  });
  const rng = env.rng.fork('io-arrivals');
  env.process(
    (function* (): ProcessGenerator<void> {
      for (;;) {
        yield env.timeout(gap.min + rng.int(gap.spread));
        wokeAt = env.now;
        yield io.exec(20 * US, 'irq');
      }
    })(),
  );
  env.run({ until: 20 * S });
  lat.sort((a, b) => a - b);
  const q = (f: number): number => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))]!;
  const mean = lat.reduce((s, x) => s + x, 0) / lat.length;
  return `BOOST ${boost ? 'on ' : 'off'}: ${lat.length} wake-ups, latency mean ${(mean / MS).toFixed(3)} ms, p50 ${(q(0.5) / MS).toFixed(3)} ms, p99 ${(q(0.99) / MS).toFixed(3)} ms, max ${(lat[lat.length - 1]! / MS).toFixed(3)} ms`;
}

shares('1a. one pCPU, weights 256:512', 1, [
  { name: 'w256', weight: 256, cap: 0 },
  { name: 'w512', weight: 512, cap: 0 },
]);
shares('1b. one pCPU, cap 50', 1, [{ name: 'cap50', weight: 256, cap: 50 }]);
console.log('2. wake-up latency (event to running) of an I/O vCPU sharing one pCPU with a CPU hog, 20 s');
console.log(wakeLatency(true));
console.log(wakeLatency(false));

// 3. Per release.
const named = readdirSync(profilesDir())
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const p = Profile.load(f.slice(0, -'.json'.length));
    return { label: `${p.name} profile (Xen ${p.xenVersion})`, profile: p };
  });
const compared = ['3.2.0', '4.5.0', '4.7.0', '4.8.0', '4.9.0', '4.13.0']
  .filter((v) => !named.some((n) => n.profile.xenVersion === v && n.profile.name === profile.name))
  .map((v) => ({ label: `${profile.name} profile as Xen ${v}`, profile: profile.withXen(v) }));
console.log();
console.log('3. the wake-up case of 2 (BOOST on) under each release, 20 s');
for (const [title, gap] of [
  ['every 1-10 ms', { min: 1 * MS, spread: 9 * MS }],
  ['every 0.1-1.1 ms', { min: 100 * US, spread: 1 * MS }],
] as const) {
  console.log(`  I/O event ${title}:`);
  for (const r of [...named, ...compared]) console.log(`    ${r.label.padEnd(34)} ${wakeLatency(true, r.profile, gap)}`);
}
