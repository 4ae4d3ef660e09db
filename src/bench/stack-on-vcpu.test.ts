import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US } from '../sim/index.js';
import { DirectLink, Stack, ipv4, mac } from '../net/index.js';
import { makeHost, profile } from '../xen/test-fixture.js';
import { GuestPacketMemory } from '../vnet/packet-memory.js';
import { tcpStream } from './workloads/index.js';

describe('a stack on a real vCPU', () => {
  it('two guests’ stacks on their vCPUs under the credit scheduler move a TCP stream byte-exact through their own memory', () => {
    const h = makeHost({ pcpus: 2 });
    const a = h.guest('a');
    const b = h.guest('b');
    const ma = new GuestPacketMemory(a.mem, a.frames);
    const mb = new GuestPacketMemory(b.mem, b.frames);
    const client = new Stack({ env: h.env, cpu: a.domain.vcpus[0]!, profile, name: 'a', memory: ma });
    const server = new Stack({ env: h.env, cpu: b.domain.vcpus[0]!, profile, name: 'b', memory: mb });
    const link = new DirectLink(h.env, 'wire', mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), {
      bandwidth: 10e9,
      delay: 10 * US,
      rxRing: 256,
      irqCost: client.costs.irq,
    });
    client.addInterface(link.a, { address: ipv4('10.0.0.1'), prefix: 24 });
    server.addInterface(link.b, { address: ipv4('10.0.0.2'), prefix: 24 });
    const from = h.hv.snapshot();
    const p = tcpStream(h.env, { client, server, serverAddr: ipv4('10.0.0.2') }, { bytes: 20_000_000, messageSize: 65536 });
    h.env.run({ until: p });
    assert.equal(p.value.bytesVerified, 20_000_000);
    const r = h.hv.cpuReport(from);
    const dom = (name: string): number => r.domains.find((d) => d.name === name)!.percent;
    assert.ok(dom('a') > 1 && dom('b') > 1, `guest CPU ${dom('a')}% / ${dom('b')}%`);
    h.env.run({ until: h.env.now + 61_000 * MS });
    assert.equal(ma.outstanding, 0, 'sender buffers all back');
    assert.equal(mb.outstanding, 0, 'receiver buffers all back');
    assert.ok(ma.framesHeld > 0 && ma.framesHeld < 2000, `sender pool ${ma.framesHeld} frames`);
  });
});
