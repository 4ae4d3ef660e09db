/**
 * HV²M's channel handshake between two co-resident guests (src/vnet/hv2m/handshake.ts): the
 * control plane only — rings, grants, ports and XenbusState under data/hv2m/peer/<domid>/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { GTF_permit_access, GTF_readonly, XenbusStateClosed, XenbusStateConnected } from '../xen/abi/index.js';
import { ChannelEnd, Hv2mModule, channelNode, hv2mCosts } from '../vnet/index.js';
import { Host, type Guest } from './host.js';
import { run } from './test-support.js';

const profile = Profile.load('default');

function build(): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed: 12 });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      guests: [
        { name: 'a', memoryMiB: 128 },
        { name: 'b', type: 'pv', memoryMiB: 128 },
      ],
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

const end = (g: Guest, peer: Guest, rxBuffers = 32): ChannelEnd =>
  new ChannelEnd(g.side.kernel, g.side.xenbus, g.domain.vcpus[0]!, g.side.memory, peer.domid, {
    rxBuffers,
    eagainStep: profile.ns('guest.gnttab.eagainRetryStep'),
  });

describe('hv2m channel handshake', () => {
  it('an HVM and a PV guest connect: each maps the other’s control ring, sees its posted write-granted buffers, binds its port; close revokes and closes', () => {
    const { env, host } = build();
    const a = host.guest('a');
    const b = host.guest('b');
    const ea = end(a, b);
    const eb = end(b, a);
    run(env, ea.open());
    run(env, eb.open());
    env.run({ until: env.now + 5 * MS });
    assert.equal(ea.error, null);
    assert.equal(eb.error, null);
    assert.ok(ea.connected && eb.connected);
    const rd = (p: string): string | null => {
      const r = host.toolstack.xs.read(p);
      return r.ok ? Buffer.from(r.value).toString() : null;
    };
    assert.equal(rd(`${channelNode(a.domid, b.domid)}/state`), String(XenbusStateConnected));
    assert.equal(rd(`${channelNode(b.domid, a.domid)}/state`), String(XenbusStateConnected));
    // the sender side sees exactly the receiver's posted buffers, each granted to it writable
    assert.equal(ea.tx!.unconsumedRequests(), 32);
    assert.equal(eb.tx!.unconsumedRequests(), 32);
    for (const { gref } of eb.posted.values()) {
      const f = b.side.kernel.gnttab.flags(gref);
      assert.ok((f & GTF_permit_access) !== 0 && (f & GTF_readonly) === 0, `b's buffer grant ${gref} writable`);
    }
    const req = ea.tx!.consumeRequest();
    assert.equal(req.gref, eb.posted.get(req.id)!.gref, 'a reads b’s {id, gref} off the mapped ring');
    // teardown: grants ended, ports closed, Closed
    const busyA = run(env, ea.close());
    const busyB = run(env, eb.close());
    env.run({ until: env.now + 5 * MS });
    assert.equal(busyA, 1, 'a’s ring grant is still mapped by b when a closes first: its end is deferred, as Xen makes it');
    assert.equal(busyB, 0, 'a had already unmapped b’s ring');
    assert.equal(ea.pendingGrants, 0, 'a ended its ring grant once b said Closing (b had unmapped it)');
    assert.ok(ea.closed && eb.closed);
    assert.equal(rd(`${channelNode(a.domid, b.domid)}/state`), String(XenbusStateClosed));
    for (const g of [a, b]) assert.equal(g.side.memory.outstanding, 0, `${g.name}: every posted buffer freed`);
  });

  it('a peer whose node holds garbage is a handshake error, not a crash', () => {
    const { env, host } = build();
    const a = host.guest('a');
    const b = host.guest('b');
    const ea = end(a, b);
    run(env, ea.open());
    const n = channelNode(b.domid, a.domid);
    run(env, b.side.xenbus.mkdir(n));
    run(env, b.side.xenbus.setPerms(n, [`n${b.domid}`, `r${a.domid}`]));
    run(env, b.side.xenbus.write(`${n}/ring-ref`, 'lots'));
    run(env, b.side.xenbus.write(`${n}/state`, '3'));
    env.run({ until: env.now + 5 * MS });
    assert.match(ea.error ?? '', /bad ring-ref/);
    assert.equal(ea.connected, false);
  });

  it('a peer that names a grant it never gave, or a port it never opened, fails the handshake without a crash; closing still ends every grant', () => {
    for (const bad of [
      { ref: '77', port: '3' },
      { ref: 'own', port: '999' },
    ]) {
      const { env, host } = build();
      const a = host.guest('a');
      const b = host.guest('b');
      const ea = end(a, b);
      const base = a.side.memory.outstanding;
      run(env, ea.open());
      const n = channelNode(b.domid, a.domid);
      const xb = b.side.xenbus;
      run(env, xb.mkdir(n));
      run(env, xb.setPerms(n, [`n${b.domid}`, `r${a.domid}`]));
      // 'own': a real grant of b's to a (so the map works), with a port that does not exist
      const ref = bad.ref === 'own' ? String(b.side.kernel.gnttab.grantAccess(a.domid, b.side.kernel.frames.alloc()!, false)) : bad.ref;
      run(env, xb.write(`${n}/ring-ref`, ref));
      run(env, xb.write(`${n}/event-channel`, bad.port));
      run(env, xb.write(`${n}/state`, '3'));
      env.run({ until: env.now + 5 * MS });
      assert.match(ea.error ?? '', bad.ref === 'own' ? /cannot bind its port/ : /cannot map its control ring/);
      assert.equal(ea.connected, false);
      run(env, ea.close());
      env.run({ until: env.now + 5 * MS });
      assert.equal(ea.pendingGrants, 0);
      assert.equal(a.side.memory.outstanding, base);
    }
  });

  it('the module opens a channel with each peer Dom0 lists, within a bounded time; a policy change or the peer’s destruction closes it and ends its grants', () => {
    const env = new SimEnvironment({ seed: 13 });
    const nic = (i: number) => ({ path: 'pv', mac: `02:00:00:00:00:0${i}`, ip: `10.0.0.${i}/24` });
    const hp = env.process(
      Host.build(env, profile, {
        name: 'h',
        pcpus: 4,
        hv2m: {},
        guests: [
          { name: 'a', tenant: 't', memoryMiB: 128, nics: [nic(1)] },
          { name: 'b', tenant: 't', type: 'pv', memoryMiB: 128, nics: [nic(2)] },
          { name: 'c', tenant: 't', memoryMiB: 128, nics: [nic(3)] },
          { name: 'x', tenant: 'other', memoryMiB: 128, nics: [nic(4)] },
        ],
      }),
    );
    env.run({ until: hp });
    if (!hp.ok) throw hp.error;
    const host = hp.value;
    const mods = new Map<string, Hv2mModule>();
    const base = new Map<string, number>();
    const t0 = env.now;
    let allUp = -1;
    const up = (): boolean =>
      ['a', 'b', 'c'].every((n) => {
        const m = mods.get(n);
        return m !== undefined && m.channels.size === 2 && [...m.channels.values()].every((e) => e.connected);
      });
    for (const g of host.guests.values()) {
      base.set(g.name, g.side.memory.outstanding);
      const link = { mac: 0, upper: () => null, iface: () => null, memory: g.side.memory };
      const m = new Hv2mModule(env, g.side.kernel, g.side.xenbus, g.domain.vcpus[0]!, link, hv2mCosts(profile), {
        rxBuffers: 16,
        batchOps: 64,
        queueLen: 64,
        eagainStep: profile.ns('guest.gnttab.eagainRetryStep'),
      });
      m.onChange = () => {
        if (allUp < 0 && up()) allUp = env.now;
      };
      mods.set(g.name, m);
      run(env, m.load());
    }
    env.run({ until: env.now + 20 * MS });
    assert.ok(allUp > 0, 'a, b and c each have two connected channels');
    assert.ok(allUp - t0 < 10 * MS, `all channels up ${allUp - t0} ns after the modules loaded (bound 10 ms)`);
    assert.equal(mods.get('x')!.channels.size, 0, 'the other tenant has no channel');
    // policy: a and b may no longer talk; both ends close, c keeps its channels
    host.discoveryd!.setPolicy({ rules: [{ action: 'deny', a: { name: 'a' }, b: { name: 'b' } }] });
    env.run({ until: env.now + 20 * MS });
    const a = host.guest('a');
    const b = host.guest('b');
    assert.deepEqual([...mods.get('a')!.channels.keys()], [host.guest('c').domid]);
    assert.deepEqual([...mods.get('b')!.channels.keys()], [host.guest('c').domid]);
    assert.equal([...mods.get('c')!.channels.values()].filter((e) => e.connected).length, 2, 'c is unaffected');
    for (const n of ['a', 'b'])
      assert.equal(host.guest(n).side.memory.outstanding, base.get(n)! + 16, `${n}: only the 16 buffers posted to c are still out`);
    const st = host.toolstack.xs.read(`${channelNode(a.domid, b.domid)}/state`);
    assert.equal(st.ok ? Buffer.from(st.value).toString() : null, String(XenbusStateClosed));
    // c is destroyed: a and b close their channels with it; every buffer they posted is back
    host.toolstack.destroyGuest(host.guest('c').domain);
    env.run({ until: env.now + 20 * MS });
    for (const n of ['a', 'b']) {
      const m = mods.get(n)!;
      assert.equal(m.channels.size, 0, `${n} has no channel left`);
      assert.equal(host.guest(n).side.memory.outstanding, base.get(n), `${n}: every buffer it granted is back`);
    }
  });

  it('24 guests on 4 pCPUs, each opening a channel with each of its 23 peers at once: every end posts all its buffers and every state switch succeeds (refs claimed at once, one state transaction at a time)', () => {
    const n = 24;
    const env = new SimEnvironment({ seed: 12 });
    const guests = Array.from({ length: n }, (_, i) => ({
      name: `g${i}`,
      tenant: 't',
      memoryMiB: 128,
      nics: [{ path: 'hv2m', mac: `02:00:00:00:02:${(i + 1).toString(16).padStart(2, '0')}`, ip: `10.0.2.${i + 1}/24`, options: { rxBuffers: 32 } }],
    }));
    const p = env.process(Host.build(env, profile, { name: 'h', pcpus: 4, dom0: { vcpus: 2, memoryMiB: 1024 }, guests }));
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const modules = [...host.guests.values()].map((g) => (g.nics[0]!.attached as unknown as { module: Hv2mModule }).module);
    env.run({ until: env.now + 300 * MS });
    for (const m of modules) {
      assert.equal(m.channels.size, n - 1, `d${m.table.domid}: a channel per peer`);
      for (const [peer, ch] of m.channels) {
        assert.equal(ch.end.error, null, `d${m.table.domid}-d${peer}`);
        assert.ok(ch.connected && ch.rxOpen, `d${m.table.domid}-d${peer} connected`);
        assert.equal(ch.end.posted.size, 32, `d${m.table.domid}-d${peer}: every buffer posted`);
      }
    }
  });
});
