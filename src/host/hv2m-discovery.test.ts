/**
 * hv2m-discoveryd in Dom0 (src/vnet/hv2m/discoveryd.ts) on a whole host: identity bound by
 * Dom0 (the toolstack's vif keys, never the guest's writes), the policy (same tenant by
 * default, rules, changed at run time), domain release, and who may read or write the table.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { HV2M_ANNOUNCE, HV2M_TABLE, Hv2mTableWatch, type Hv2mPeer } from '../vnet/index.js';
import { Host } from './host.js';
import type { HostInput } from './description.js';
import { run } from './test-support.js';

const profile = Profile.load('default');

const nic = (i: number) => ({ path: 'pv', mac: `02:00:00:00:00:0${i}`, ip: `10.0.0.${i}/24` });

function build(policy?: unknown): { env: SimEnvironment; host: Host } {
  const input: HostInput = {
    name: 'h',
    pcpus: 4,
    hv2m: policy === undefined ? {} : { policy },
    guests: [
      { name: 'a', tenant: 'acme', memoryMiB: 128, nics: [nic(1)] },
      { name: 'b', tenant: 'acme', type: 'pv', memoryMiB: 128, nics: [nic(2)] },
      { name: 'c', tenant: 'other', memoryMiB: 128, nics: [nic(3)] },
    ],
  };
  const env = new SimEnvironment({ seed: 11 });
  const p = env.process(Host.build(env, profile, input));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

/** Every guest announces itself, as the hv2m module does on load: the flag under its own data/. */
function announceAll(env: SimEnvironment, host: Host): number {
  const t0 = env.now;
  for (const g of host.guests.values()) {
    const r = run(env, g.side.xenbus.write(`/local/domain/${g.domid}/${HV2M_ANNOUNCE}`, '1'));
    assert.ok(r.ok, `${g.name} may write its own announce flag`);
  }
  env.run({ until: env.now + 5 * MS });
  return t0;
}

function table(host: Host, name: string): Record<string, string> {
  const d = host.guest(name).domid;
  const out: Record<string, string> = {};
  const dir = host.toolstack.xs.directory(`${HV2M_TABLE}/${d}`);
  if (!dir.ok) return out;
  for (const p of dir.value) {
    const r = host.toolstack.xs.read(`${HV2M_TABLE}/${d}/${p}`);
    if (r.ok) out[host.hv.domain(Number(p))!.name] = Buffer.from(r.value).toString();
  }
  return out;
}

describe('hv2m-discoveryd', () => {
  it('publishes same-tenant peers with their configured MAC and IP within a bounded time of the announcements; other tenants never', () => {
    const { env, host } = build();
    assert.ok(host.discoveryd !== null);
    assert.deepEqual(table(host, 'a'), {}, 'nothing before anyone announced');
    const t0 = announceAll(env, host);
    assert.deepEqual(table(host, 'a'), { b: '02:00:00:00:00:02 10.0.0.2' });
    assert.deepEqual(table(host, 'b'), { a: '02:00:00:00:00:01 10.0.0.1' });
    assert.deepEqual(table(host, 'c'), {}, 'c has no peer of its tenant');
    const took = host.discoveryd.lastUpdate - t0;
    assert.ok(took > 0 && took < 2 * MS, `table published ${took} ns after the announcements (bound 2 ms)`);
  });

  it('a guest writing a fake MAC or IP wherever it can does not change what Dom0 publishes', () => {
    const { env, host } = build();
    announceAll(env, host);
    const c = host.guest('c');
    const b = host.guest('b');
    const a = host.guest('a');
    const xb = c.side.xenbus;
    // c claims a's and b's identity everywhere it may write, and tries where it may not.
    const tries: [string, string, boolean][] = [
      [`/local/domain/${c.domid}/data/mac`, '02:00:00:00:00:01', true],
      [`/local/domain/${c.domid}/data/ip`, '10.0.0.2', true],
      [`/local/domain/${c.domid}/device/vif/0/mac`, '02:00:00:00:00:01', false],
      [`/local/domain/0/backend/vif/${c.domid}/0/ip`, '10.0.0.2', false],
      [`${HV2M_TABLE}/${a.domid}/${c.domid}`, '02:00:00:00:00:02 10.0.0.2', false],
      [`${HV2M_TABLE}/${c.domid}/${a.domid}`, 'x', false],
    ];
    for (const [path, v, allowed] of tries) {
      const r = run(env, xb.write(path, v));
      assert.equal(r.ok, allowed, `write ${path} by c: ${r.ok ? 'ok' : r.error}`);
    }
    // and b (same tenant as a) writes a fake identity under its own data/ too, then re-announces
    run(env, b.side.xenbus.write(`/local/domain/${b.domid}/data/ip`, '10.0.0.3'));
    run(env, b.side.xenbus.write(`/local/domain/${b.domid}/${HV2M_ANNOUNCE}`, '1'));
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(table(host, 'a'), { b: '02:00:00:00:00:02 10.0.0.2' });
    assert.deepEqual(table(host, 'c'), {});
    // a guest reads its own list, not another's
    assert.ok(run(env, a.side.xenbus.directory(`${HV2M_TABLE}/${a.domid}`)).ok);
    const other = run(env, c.side.xenbus.directory(`${HV2M_TABLE}/${a.domid}`));
    assert.equal(other.ok ? 'ok' : other.error, 'EACCES');
  });

  it('a guest whose flag is not "1" is not in anyone’s table; a released guest leaves every table', () => {
    const { env, host } = build();
    announceAll(env, host);
    const b = host.guest('b');
    run(env, b.side.xenbus.write(`/local/domain/${b.domid}/${HV2M_ANNOUNCE}`, '0'));
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(table(host, 'a'), {});
    run(env, b.side.xenbus.write(`/local/domain/${b.domid}/${HV2M_ANNOUNCE}`, '1'));
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(Object.keys(table(host, 'a')), ['b']);
    host.toolstack.destroyGuest(b.domain);
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(table(host, 'a'), {});
    assert.equal(host.toolstack.xs.read(`${HV2M_TABLE}/${b.domid}`).ok, false);
  });

  it('policy: rules by name and tenant, first match wins; a run-time change removes pairs no longer allowed', () => {
    const { env, host } = build({ default: 'same-tenant', rules: [{ action: 'allow', a: { name: 'a' }, b: { tenant: 'other' } }] });
    announceAll(env, host);
    assert.deepEqual(Object.keys(table(host, 'a')).sort(), ['b', 'c']);
    assert.deepEqual(Object.keys(table(host, 'c')), ['a']);
    host.discoveryd!.setPolicy({ rules: [{ action: 'deny', a: { name: 'a' }, b: { name: 'b' } }] });
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(table(host, 'a'), {});
    assert.deepEqual(table(host, 'b'), {});
    host.discoveryd!.setPolicy({ default: 'allow' });
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(Object.keys(table(host, 'c')).sort(), ['a', 'b']);
  });

  it('a bad policy in the description is an error naming the field', () => {
    assert.throws(
      () => build({ default: 'sometimes', rules: [{ action: 'maybe', a: { name: 'a' }, b: 'x' }] }),
      (e: Error) =>
        /hv2m\.policy/.test(e.message) &&
        /default: expected same-tenant/.test(e.message) &&
        /rules\.0\.action/.test(e.message) &&
        /rules\.0\.b/.test(e.message),
    );
  });

  it('the guest module announces on load, learns its peers by IP from Dom0’s list, and hears of arrivals, departures and its own unload', () => {
    const { env, host } = build();
    const w = new Map<string, Hv2mTableWatch>();
    const log: string[] = [];
    const names = new Map([...host.guests.values()].map((g) => [g.domid, g.name]));
    for (const g of host.guests.values()) {
      const t = new Hv2mTableWatch(env, g.side.xenbus, g.domid);
      const fmt = (p: Hv2mPeer): string => names.get(p.domid)!;
      t.onChange = (add, rem) => log.push(`${g.name}: +${add.map(fmt).join(',')} -${rem.map(fmt).join(',')}`);
      assert.equal(run(env, t.load()), true);
      w.set(g.name, t);
    }
    env.run({ until: env.now + 5 * MS });
    const b = host.guest('b');
    assert.deepEqual([...w.get('a')!.peers.values()], [{ domid: b.domid, mac: '02:00:00:00:00:02', ip: '10.0.0.2' }]);
    assert.deepEqual([...w.get('b')!.peers.keys()], ['10.0.0.1']);
    assert.equal(w.get('c')!.peers.size, 0);
    assert.deepEqual(log.sort(), ['a: +b -', 'b: +a -']);
    log.length = 0;
    run(env, w.get('a')!.unload());
    env.run({ until: env.now + 5 * MS });
    assert.equal(w.get('b')!.peers.size, 0);
    assert.deepEqual(log.sort(), ['a: + -b', 'b: + -a']);
    log.length = 0;
    run(env, w.get('a')!.load());
    env.run({ until: env.now + 5 * MS });
    host.toolstack.destroyGuest(b.domain);
    env.run({ until: env.now + 5 * MS });
    assert.deepEqual(log.sort(), ['a: + -b', 'a: +b -', 'b: +a -'], 'a and b met again, then a heard b go');
    assert.equal(w.get('a')!.peers.size, 0);
    assert.equal(w.get('a')!.badEntries, 0);
  });

  it('reads only what changed: each announcement costs a constant number of XenStore reads, not one per guest already known', () => {
    const n = 12;
    const env = new SimEnvironment({ seed: 11 });
    const guests = Array.from({ length: n }, (_, i) => ({
      name: `g${i}`,
      tenant: 'acme',
      memoryMiB: 64,
      nics: [{ path: 'pv', mac: `02:00:00:00:01:${(i + 1).toString(16).padStart(2, '0')}`, ip: `10.0.1.${i + 1}/24` }],
    }));
    const p = env.process(Host.build(env, profile, { name: 'h', pcpus: 4, hv2m: {}, guests }));
    env.run({ until: p });
    if (!p.ok) throw p.error;
    const host = p.value;
    const d = host.discoveryd!;
    env.run({ until: env.now + 5 * MS });
    const r0 = d.reads;
    const watches: Hv2mTableWatch[] = [];
    for (const g of host.guests.values()) {
      // The guest module's load: watch its list, then announce.
      const t = new Hv2mTableWatch(env, g.side.xenbus, g.domid);
      assert.equal(run(env, t.load()), true);
      watches.push(t);
      env.run({ until: env.now + 2 * MS });
    }
    env.run({ until: env.now + 5 * MS });
    for (const g of host.guests.values()) assert.equal(Object.keys(table(host, g.name)).length, n - 1, `${g.name} has every other guest as a peer`);
    // Per announcement: its flag, the vif directory, and the first vif's mac and ip.
    assert.equal(d.reads - r0, 4 * n, 'reads for n announcements');
    // Each guest reads its list whole when the watch first fires and when Dom0 creates or
    // re-permits the directory, then one entry per arrival: O(n), where a whole re-read per
    // event would be about n²/2 (66 here).
    for (const t of watches) {
      assert.equal(t.peers.size, n - 1);
      assert.ok(t.reads <= 2 * n, `d${t.domid} read its list ${t.reads} times for ${n - 1} arrivals`);
    }
    // A withdrawal reads one flag; the others' entries go without re-reading anyone.
    const g0 = host.guest('g0');
    const r1 = d.reads;
    run(env, g0.side.xenbus.write(`/local/domain/${g0.domid}/${HV2M_ANNOUNCE}`, '0'));
    env.run({ until: env.now + 2 * MS });
    assert.equal(d.reads - r1, 1);
    assert.equal(Object.keys(table(host, 'g1')).length, n - 2);
    assert.equal(watches[1]!.peers.size, n - 2, 'g1 heard g0 go');
    assert.ok(![...watches[1]!.peers.values()].some((p) => p.domid === g0.domid));
    assert.deepEqual(table(host, 'g0'), {});
  });
});
