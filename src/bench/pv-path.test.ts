import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { Host } from '../host/host.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints } from './workloads/index.js';

const profile = Profile.load('default');

function twoGuests(type: 'hvm' | 'pv', seed = 7): { env: SimEnvironment; host: Host; ends: Endpoints } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: [
        { name: 'a', type, nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
        { name: 'b', type, nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
      ],
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  const host = p.value;
  return { env, host, ends: { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2') } };
}

describe('pv path: two guests on one host', () => {
  it('ping works', () => {
    const { env, ends } = twoGuests('hvm');
    const p = ping(env, ends, { count: 5, size: 56 });
    env.run({ until: p });
    console.log(p.value);
  });

  it('all workloads', () => {
    const { env, host, ends } = twoGuests('hvm');
    const t0 = env.now;
    const snap = host.hv.countersSnapshot();
    let p: any = tcpRr(env, ends, { timing: { warmup: 1 * MS, duration: 5 * MS } });
    env.run({ until: p });
    console.log('tcp_rr', p.value.transactionsPerSecond, p.value.latency ?? '');
    p = udpRr(env, { ...ends, port: 13000 }, { requestSize: 64, responseSize: 64, timing: { warmup: 1 * MS, duration: 5 * MS } });
    env.run({ until: p });
    console.log('udp_rr', p.value.transactionsPerSecond);
    p = tcpStream(env, { ...ends, port: 13001 }, { bytes: 5_000_000, messageSize: 65536 });
    env.run({ until: p });
    console.log('tcp_stream', p.value.throughputMbps, p.value.bytesVerified, p.value.retransmissions);
    p = udpStream(env, { ...ends, port: 13002 }, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 5 * MS } });
    env.run({ until: p });
    console.log('udp_stream', p.value);
    const a = host.guest('a').nics[0]!.attached.stats();
    const b = host.guest('b').nics[0]!.attached.stats();
    console.log(a, b, env.now - t0);
    const after = host.hv.countersSnapshot();
    for (const [id, v] of after) console.log(id, v.name, v.counters.grantCopies! - (snap.get(id)?.counters.grantCopies ?? 0), v.counters.notifySent! - (snap.get(id)?.counters.notifySent ?? 0));
  });
});
