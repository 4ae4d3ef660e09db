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
});
