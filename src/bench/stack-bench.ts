/**
 * `npm run bench:stack`: how many simulated packets per second of wall time the guest stack
 * handles, for a tcp_stream over a direct link (10 Gbit/s, 20 us one way, no offloads: every
 * checksum computed and verified in software, every byte checked by the workload).
 * Packets = frames that crossed the link in either direction. Wall time covers everything:
 * the kernel, both stacks, the link, the workload's pattern fill and verification.
 */
import { SimEnvironment, US } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { directPair } from '../net/pair.js';
import { tcpStream } from './workloads/index.js';

function once(bytes: number): { packets: number; wallMs: number; simMs: number; mbps: number; events: number } {
  const env = new SimEnvironment({ seed: 1 });
  const pair = directPair(env, Profile.load('default'), { bandwidth: 10e9, delay: 20 * US });
  const t0 = performance.now();
  const p = tcpStream(env, { client: pair.client, server: pair.server, serverAddr: pair.serverAddr }, { bytes, messageSize: 65536 });
  env.run({ until: p });
  const wallMs = performance.now() - t0;
  const packets = pair.link.a.stats.frames + pair.link.b.stats.frames;
  return { packets, wallMs, simMs: env.now / 1e6, mbps: p.value.throughputMbps, events: env.eventsFired };
}

const bytes = Number(process.env.HV2M_BENCH_BYTES ?? 200_000_000);
once(bytes / 20); // JIT warm-up
const r = once(bytes);
console.log(
  `stack: tcp_stream ${bytes / 1e6} MB over a 10 Gbit/s direct link: ${r.packets} packets in ${r.wallMs.toFixed(0)} ms wall (${r.simMs.toFixed(1)} ms simulated, ${r.mbps.toFixed(0)} Mbit/s, ${r.events} kernel events)`,
);
console.log(`stack packets/s of wall time: ${Math.round((r.packets / r.wallMs) * 1000).toLocaleString('en-US')}`);
