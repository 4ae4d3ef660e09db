/**
 * `npm run bench:scale`: how the simulator grows with the number of guests. One host of 16
 * pCPUs (Dom0 with 2 vCPUs) and N one-vCPU HVM guests of one tenant, each with an hv2m NIC,
 * so that every pair has an HV²M channel (N·(N−1)/2 pairs, two rings each); then concurrent
 * traffic: guest i runs tcp_rr to guest i+1 (a ring of N flows, all through channels) for the
 * measured window. Per N it prints: the channels up and the simulated time after the build they took
 * (bounded at 5 s), the build's and the traffic's wall time,
 * kernel entries fired and their rate, peak resident memory, and simulated seconds per wall
 * second during the traffic; then the growth of wall time per simulated second against N.
 * Environment: HV2M_SCALE_NS (comma-separated N; default 2,4,8,16,32,64), HV2M_SCALE_MS
 * (measured window, simulated ms; default 20), HV2M_SCALE_BUFFERS (RX buffers per channel end;
 * default 32 — 256 per end would post 64·63·256 pages at N = 64).
 */
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import type { Hv2mNic } from '../vnet/index.js';
import { Host } from '../host/index.js';
import { tcpRr } from './workloads/index.js';

const profile = Profile.load('default');
const ns = (process.env.HV2M_SCALE_NS ?? '2,4,8,16,32,64').split(',').map(Number);
const windowMs = Number(process.env.HV2M_SCALE_MS ?? 20);
const buffers = Number(process.env.HV2M_SCALE_BUFFERS ?? 32);
for (const n of ns) if (!Number.isInteger(n) || n < 2 || n > 250) throw new Error(`HV2M_SCALE_NS: ${n} is not a guest count from 2 to 250`);

const ip = (i: number): string => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const mac = (i: number): string => `00:16:3e:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

interface Row {
  n: number;
  buildS: number;
  channels: number;
  upMs: number;
  trafficS: number;
  simMs: number;
  events: number;
  eventsPerS: number;
  peakMiB: number;
  simPerWall: number;
  transactions: number;
}

const rows: Row[] = [];
let peak = 0;
const sample = (): void => {
  peak = Math.max(peak, process.memoryUsage().rss);
};
for (const n of ns) {
  peak = 0;
  const t0 = performance.now();
  const env = new SimEnvironment({ seed: 1 });
  const guests = Array.from({ length: n }, (_, i) => ({
    name: `vm${i}`,
    tenant: 'scale',
    vcpus: 1,
    memoryMiB: 256,
    nics: [{ path: 'hv2m', mac: mac(i + 1), ip: `${ip(i)}/16`, options: { rxBuffers: buffers } }],
  }));
  const built = env.process(Host.build(env, profile, { name: 'h', pcpus: 16, dom0: { vcpus: 2, memoryMiB: 2048 }, guests }));
  env.run({ until: built });
  if (!built.ok) throw built.error;
  const host = built.value;
  const nics = [...host.guests.values()].map((g) => g.nics[0]!.attached as Hv2mNic);
  // Every channel up, or a bounded wait (simulated) and say so. The control plane is bound by
  // xenstored (each request a round trip on a guest's ring, served one at a time): at N = 64 it
  // serves about 94,000 requests before the last channel is up.
  const tb = env.now;
  const until = env.now + 5000 * MS;
  while (!nics.every((x) => x.settled) && env.now < until) {
    env.run({ until: env.now + 1 * MS });
    sample();
  }
  const channels = nics.reduce((k, x) => k + [...x.module.channels.values()].filter((c) => c.connected).length, 0) / 2;
  const upMs = (env.now - tb) / MS;
  const t1 = performance.now();
  const e0 = env.eventsFired;
  const s0 = env.now;
  const flows = Array.from({ length: n }, (_, i) => {
    const a = host.guest(`vm${i}`);
    const b = host.guest(`vm${(i + 1) % n}`);
    return tcpRr(
      env,
      { client: a.stack, server: b.stack, serverAddr: ipv4(ip((i + 1) % n)), port: 14000 + i },
      { timing: { warmup: 1 * MS, duration: windowMs * MS } },
    );
  });
  for (const f of flows) {
    while (!f.triggered) {
      env.run({ until: env.now + 1 * MS });
      sample();
    }
    if (!f.ok) throw f.error;
  }
  const t2 = performance.now();
  const events = env.eventsFired - e0;
  const trafficS = (t2 - t1) / 1000;
  const simMs = (env.now - s0) / MS;
  sample();
  rows.push({
    n,
    buildS: (t1 - t0) / 1000,
    channels,
    upMs,
    trafficS,
    simMs,
    events,
    eventsPerS: events / trafficS,
    peakMiB: peak / 2 ** 20,
    simPerWall: simMs / 1000 / trafficS,
    transactions: flows.reduce((k, f) => k + f.value.transactions, 0),
  });
  const diverted = nics.reduce((k, x) => k + x.module.stats.txFrames, 0);
  console.error(`N=${n}: ${channels}/${(n * (n - 1)) / 2} channels, ${diverted} frames through channels`);
}

const pad = (s: string, w: number): string => s.padStart(w);
console.log(
  `bench:scale — default profile, one host of 16 pCPUs, N HVMs with hv2m NICs (${buffers} RX buffers per channel end), N concurrent tcp_rr flows (guest i to i+1) for ${windowMs} ms after 1 ms warm-up`,
);
console.log(
  ['N', 'channels', 'up sim ms', 'build s', 'traffic s', 'sim ms', 'entries', 'entries/s', 'peak MiB', 'sim s/wall s', 'transactions']
    .map((h, i) => pad(h, i === 0 ? 4 : 13))
    .join(''),
);
for (const r of rows) {
  console.log(
    [
      pad(String(r.n), 4),
      pad(`${r.channels}/${(r.n * (r.n - 1)) / 2}`, 13),
      pad(r.upMs.toFixed(0), 13),
      pad(r.buildS.toFixed(2), 13),
      pad(r.trafficS.toFixed(2), 13),
      pad(r.simMs.toFixed(1), 13),
      pad(String(r.events), 13),
      pad(Math.round(r.eventsPerS).toLocaleString('en-US'), 13),
      pad(r.peakMiB.toFixed(0), 13),
      pad(r.simPerWall.toFixed(4), 13),
      pad(String(r.transactions), 13),
    ].join(''),
  );
}
// Growth: wall seconds per simulated second of traffic, against N and against the traffic (transactions).
const first = rows[0]!;
for (const r of rows.slice(1)) {
  const wallPerSim = (x: Row): number => x.trafficS / (x.simMs / 1000);
  console.log(
    `N ${first.n} -> ${r.n} (x${(r.n / first.n).toFixed(0)}): wall per simulated second x${(wallPerSim(r) / wallPerSim(first)).toFixed(1)}, transactions x${(r.transactions / first.transactions).toFixed(1)}, wall per transaction x${(r.trafficS / r.transactions / (first.trafficS / first.transactions)).toFixed(2)}, build x${(r.buildS / first.buildS).toFixed(1)}`,
  );
}
