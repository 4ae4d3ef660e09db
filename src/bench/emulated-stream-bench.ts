/**
 * `node dist/bench/emulated-stream-bench.js` (after `npm run build`): the emulated path's
 * 64 KiB tcp_stream on the bench host's shape (4 pCPUs, Dom0 with 2 vCPUs, two 1-vCPU HVM
 * guests), as a timeline of what explains its throughput: per slot, the bytes the receiving
 * driver took off its ring, the receiver's tap queue and its drops, the sender's
 * retransmissions (fast and by timeout), interrupts and each driver's ITR rate. Ends with the
 * throughput tcp_stream measures over windows of several lengths after a 20 ms warm-up.
 * Environment: HV2M_EMULATED_ITR (the NICs' `itr` option, e.g. 20000; default: the path's),
 * HV2M_SLOT_MS (slot, simulated ms; default 5), HV2M_RUN_MS (simulated ms; default 300),
 * HV2M_SEED (default 1).
 */
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import type { EmulatedNic } from '../vnet/emulated/index.js';
import { Host } from '../host/host.js';
import { tcpStream } from './workloads/index.js';

const profile = Profile.load('default');
const itrEnv = process.env.HV2M_EMULATED_ITR;
const itr = itrEnv === undefined ? undefined : Number.isNaN(Number(itrEnv)) ? itrEnv : Number(itrEnv);
const slotMs = Number(process.env.HV2M_SLOT_MS ?? 5);
const runMs = Number(process.env.HV2M_RUN_MS ?? 300);
const seed = Number(process.env.HV2M_SEED ?? 1);
const WARMUP_MS = 20;

function build(): { env: SimEnvironment; host: Host; a: EmulatedNic; b: EmulatedNic } {
  const env = new SimEnvironment({ seed });
  const options = itr === undefined ? {} : { itr };
  const guest = (n: number) => ({
    name: `vm${n}`,
    vcpus: 1,
    memoryMiB: 512,
    tenant: 'bench',
    nics: [{ path: 'emulated', mac: `00:16:3e:00:00:0${n}`, ip: `10.0.0.${n}/24`, options }],
  });
  const p = env.process(Host.build(env, profile, { name: 'h1', pcpus: 4, dom0: { vcpus: 2, memoryMiB: 1024 }, guests: [guest(1), guest(2)] }));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  const nic = (g: string): EmulatedNic => host.guest(g).nics[0]!.attached as EmulatedNic;
  return { env, host, a: nic('vm1'), b: nic('vm2') };
}

// The timeline.
{
  const { env, host, a, b } = build();
  const client = host.guest('vm1').stack;
  const server = host.guest('vm2').stack;
  const t0 = env.now;
  const ts = tcpStream(
    env,
    { client, server, serverAddr: ipv4('10.0.0.2') },
    { messageSize: 65536, timing: { warmup: WARMUP_MS * MS, duration: runMs * MS } },
  );
  const head = ['ms', 'rx Mbit/s', 'tap queue', 'tap drops', 'retrans', 'fast rtx', 'timeouts', 'irqs snd', 'irqs rcv', 'ITR snd', 'ITR rcv'];
  console.log(
    `emulated tcp_stream 64 KiB, seed ${seed}, itr ${itr ?? 'default'}: per ${slotMs} ms slot (counters cumulative, rx Mbit/s of the slot; snd = vm1, rcv = vm2)`,
  );
  console.log(head.map((h) => h.padStart(10)).join(''));
  let lastRx = 0;
  for (let t = slotMs; t <= runMs; t += slotMs) {
    env.run({ until: t0 + t * MS });
    const sb = b.stats();
    const sa = a.stats();
    const tcp = client.tcp.stats;
    const rx = sb['driver.rxBytes']!;
    const row = [
      t,
      ((rx - lastRx) * 8) / (slotMs * 1000),
      b.tap.pending,
      sb['tap.dropped']!,
      tcp.retransSegs,
      tcp.fastRetransmits,
      tcp.timeouts,
      sa['driver.irqs']!,
      sb['driver.irqs']!,
      a.driver.itrRate,
      b.driver.itrRate,
    ];
    lastRx = rx;
    console.log(row.map((x, i) => (i === 1 ? x.toFixed(0) : String(x)).padStart(10)).join(''));
  }
  env.run({ until: ts });
}

// tcp_stream's own figure over windows of several lengths (a fresh host each).
{
  const out: string[] = [];
  for (const w of [30, 50, 100, 200, 300, 500]) {
    const { env, host } = build();
    const ts = tcpStream(
      env,
      { client: host.guest('vm1').stack, server: host.guest('vm2').stack, serverAddr: ipv4('10.0.0.2') },
      { messageSize: 65536, timing: { warmup: WARMUP_MS * MS, duration: w * MS } },
    );
    env.run({ until: ts });
    out.push(`${w} ms: ${ts.value.throughputMbps.toFixed(0)} Mbit/s (${ts.value.retransmissions} retransmissions)`);
  }
  console.log(`tcp_stream over a window after ${WARMUP_MS} ms warm-up: ${out.join('; ')}`);
}
