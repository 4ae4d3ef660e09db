import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment, US, type ProcessGenerator } from '../sim/index.js';
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  EINVAL,
  EPERM,
  ESRCH,
  GNTCOPY_dest_gref,
  GNTMAP_host_map,
  GNTST_bad_domain,
  GNTST_general_error,
  GNTST_okay,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
} from './abi/index.js';
import type { Domain } from './domain.js';
import { diffCounters } from './counters.js';
import { Hypervisor } from './hypervisor.js';
import type { GnttabCopy, GnttabMapGrantRef } from './gnttab-op.js';
import { filledFrame, makeHost, profile } from './test-fixture.js';

const P = 4096;

describe('domains: lifecycle', () => {
  it('creates Dom0, HVM and PV guests from a plain config and tells listeners of creation and release', () => {
    const h = makeHost();
    const log: string[] = [];
    const offIn = h.hv.onDomainIntroduced((d) => log.push(`+${d.domid} ${d.name} ${d.kind}`));
    h.hv.onDomainReleased((d) => log.push(`-${d.domid} ${d.name}`));
    const a = h.hv.createDomain({ name: 'web', kind: 'hvm', vcpus: 2, memoryMiB: 1024, pinning: [[0], [1]], weight: 512, cap: 50 });
    const b = h.hv.createDomain({ name: 'old', kind: 'pv', vcpus: 1 });
    offIn();
    h.hv.createDomain({ name: 'quiet', kind: 'hvm', vcpus: 1 });
    h.hv.destroyDomain(b);
    h.hv.destroyDomain(b);
    assert.deepEqual(log, ['+1 web hvm', '+2 old pv', '-2 old']);
    assert.equal(a.memory.ramPages, 1024 * 256);
    assert.equal(a.grants.maxFrames, 64);
    assert.deepEqual(a.config.affinity, [[0], [1]]);
    assert.equal(h.hv.domain(b.domid), undefined);
    assert.ok(a.isHvm && !b.isHvm && h.dom0.domain.privileged && !a.privileged);
  });

  it('rejects bad grant and maptrack limits', () => {
    const h = makeHost();
    assert.throws(() => h.hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, maxGrantFrames: 0 }), /maxGrantFrames 0/);
    assert.throws(() => h.hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, maxMaptrackFrames: -1 }), /maxMaptrackFrames -1/);
    assert.throws(() => h.hv.createDomain({ name: 'x', kind: 'hvm', vcpus: 1, memoryMiB: 0 }), /memoryMiB 0/);
  });

  it('stops the vCPUs of a destroyed domain: its work never runs and it takes no events', () => {
    const h = makeHost();
    const g = h.guest('g');
    const v = g.domain.vcpus[0]!;
    let ran = false;
    h.env.process(
      (function* (): ProcessGenerator<void> {
        yield h.env.timeout(1 * MS);
        yield v.exec(10 * US, 'kernel');
        ran = true;
      })(),
    );
    h.hv.destroyDomain(g.domain);
    h.env.run({ until: h.env.now + 5 * MS });
    assert.equal(ran, false);
    assert.equal(v.runstate, 'offline');
  });

  it('a destroyed granter stays a zombie while mapped: the mapper keeps the page until it unmaps; meanwhile it is still found (general_error, -EINVAL), then bad_domain / -ESRCH', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const bFrame = filledFrame(b, 0xbb);
    const ref = b.gnttab.grantAccess(a.domid, bFrame, false);
    const av = a.domain.vcpus[0]!;
    const at = a.frames.allocUnpopulated();
    const m: GnttabMapGrantRef = { host_addr: at * P, flags: GNTMAP_host_map, ref, dom: b.domid };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [m] }));
    assert.equal(m.status, GNTST_okay);
    h.hv.destroyDomain(b.domain);
    assert.ok(h.hv.zombies.has(b.domain));
    assert.equal(a.mem.readU8(at * P), 0xbb, 'still mapped');
    a.mem.writeU8(at * P, 0x01);
    const again: GnttabMapGrantRef = { host_addr: (at + 1) * P, flags: GNTMAP_host_map, ref, dom: b.domid };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [again] }));
    // rcu_lock_domain_by_id still finds the dying domain; its frames can no longer be pinned.
    assert.equal(again.status, GNTST_general_error);
    const aFrame = filledFrame(a, 0xaa);
    const cp: GnttabCopy = {
      source: { u: aFrame, domid: DOMID_SELF, offset: 0 },
      dest: { u: ref, domid: b.domid, offset: 0 },
      len: 8,
      flags: GNTCOPY_dest_gref,
    };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_copy, ops: [cp] }));
    assert.equal(cp.status, GNTST_general_error);
    assert.equal(h.run(a.evtchn.bindInterdomain(av, b.domid, 1, () => undefined)), -EINVAL, 'its ports are closed');
    const u = { host_addr: at * P, dev_bus_addr: 0, handle: m.handle! };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops: [u] }));
    assert.equal((u as { status?: number }).status, GNTST_okay);
    assert.equal(h.hv.zombies.size, 0, 'freed with the last mapping');
    const late: GnttabMapGrantRef = { host_addr: (at + 2) * P, flags: GNTMAP_host_map, ref, dom: b.domid };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [late] }));
    assert.equal(late.status, GNTST_bad_domain, 'gone once freed');
    assert.equal(h.run(a.evtchn.bindInterdomain(av, b.domid, 1, () => undefined)), -ESRCH);
  });

  it('a destroyed mapper drops its mappings and the pins of a copy it had in progress: the granter can end access', () => {
    const h = makeHost();
    const a = h.guest('a');
    const b = h.guest('b');
    const bFrame = filledFrame(b, 0xbb);
    const r1 = b.gnttab.grantAccess(a.domid, bFrame, false);
    const r2 = b.gnttab.grantAccess(a.domid, bFrame, false);
    const av = a.domain.vcpus[0]!;
    const m: GnttabMapGrantRef = { host_addr: a.frames.allocUnpopulated() * P, flags: GNTMAP_host_map, ref: r1, dom: b.domid };
    h.run(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [m] }));
    const src = filledFrame(a, 0xaa);
    const cp: GnttabCopy = {
      source: { u: src, domid: DOMID_SELF, offset: 0 },
      dest: { u: r2, domid: b.domid, offset: 0 },
      len: 4096,
      flags: GNTCOPY_dest_gref,
    };
    h.env.process(h.hv.hypercall(av, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_copy, ops: [cp] }));
    let pinnedMidCopy = false;
    h.env.process(
      (function* (): ProcessGenerator<void> {
        for (;;) {
          yield h.env.timeout(50);
          if (b.gnttab.queryAccess(r2) !== 0) {
            pinnedMidCopy = true;
            h.hv.destroyDomain(a.domain);
            return;
          }
        }
      })(),
    );
    h.env.run({ until: h.env.now + 1 * MS });
    assert.ok(pinnedMidCopy);
    assert.equal(cp.status, undefined, 'the copy never completed');
    assert.equal(b.mem.readU8(bFrame * P), 0xbb);
    assert.ok(b.gnttab.endAccessRef(r1), 'mapping released');
    assert.ok(b.gnttab.endAccessRef(r2), 'copy pin released');
    assert.equal(b.domain.pageRefs, 0);
  });

  it("foreign mapping is for the privileged: Dom0 maps a guest's RAM frames (real bytes), a guest gets -EPERM", () => {
    const h = makeHost();
    const g = h.guest('g');
    const other = h.guest('other');
    const f = filledFrame(g, 0x3c);
    const dv = h.dom0.domain.vcpus[0]!;
    const r = h.run(h.hv.foreignMap(dv, g.domid, [f]));
    assert.equal(r.rc, 0);
    assert.equal(r.mapping!.read(0, 10, 1)[0], 0x3c);
    r.mapping!.write(0, 0, Uint8Array.of(9));
    assert.equal(g.mem.readU8(f * P), 9);
    assert.equal(g.domain.pageRefs, 1);
    r.mapping!.unmap();
    assert.equal(g.domain.pageRefs, 0);
    assert.equal(h.run(h.hv.foreignMap(other.domain.vcpus[0]!, g.domid, [f])).rc, -EPERM);
    assert.equal(h.run(h.hv.foreignMap(dv, 77, [f])).rc, -ESRCH);
    assert.equal(h.run(h.hv.foreignMap(dv, g.domid, [g.mem.firstFreeGfn])).rc, -EINVAL);
    assert.equal(h.dom0.domain.counters.hypercalls.get('mmu_update.foreign_map'), 3);
  });

  it('listeners see a domain once its resources are released', () => {
    const h = makeHost();
    const g = h.guest('g');
    let seen: Domain | null = null;
    h.hv.onDomainReleased((d) => {
      seen = d;
      assert.equal(d.evtchn.ports().length, 1, 'only the reserved port 0 is left');
      assert.equal(d.maptrack.inUse().length, 0);
    });
    h.hv.destroyDomain(g.domain);
    assert.equal(seen, g.domain);
  });
});

describe('domains: identity and per-run counters', () => {
  it('a tenant label (default: the name), validated', () => {
    const h = makeHost();
    assert.equal(h.guest('web1', { tenant: 'acme' }).domain.tenant, 'acme');
    assert.equal(h.guest('db1').domain.tenant, 'db1');
    assert.throws(() => h.guest('x', { tenant: 'a b' }), /domain "x"\.tenant "a b": expected/);
  });

  it('a host tag names its vCPUs and its random streams', () => {
    const env = new SimEnvironment({ seed: 5 });
    const one = new Hypervisor(env, profile, { pcpus: 1, tag: 'h1' });
    const two = new Hypervisor(env, profile, { pcpus: 1, tag: 'h2' });
    for (const hv of [one, two]) hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1 });
    const a = one.createDomain({ name: 'g', kind: 'hvm', vcpus: 1 });
    const b = two.createDomain({ name: 'g', kind: 'hvm', vcpus: 1 });
    assert.equal(a.vcpus[0]!.name, 'h1:d1v0');
    assert.equal(b.vcpus[0]!.name, 'h2:d1v0');
    assert.notEqual(one.rng('x').int(1 << 30), two.rng('x').int(1 << 30));
    assert.throws(() => new Hypervisor(env, profile, { pcpus: 1, tag: 'a/b' }), /host\.tag "a\/b": expected/);
  });

  it('counter snapshots difference to a window, and a destroyed domain keeps its counts', () => {
    const h = makeHost();
    const g = h.guest('g');
    g.domain.counters.grantCopies = 5;
    g.domain.counters.hypercall('grant_table_op.copy');
    const before = h.hv.countersSnapshot();
    g.domain.counters.grantCopies += 3;
    g.domain.counters.exits.vmcall += 2;
    g.domain.counters.hypercall('grant_table_op.copy');
    h.hv.destroyDomain(g.domain);
    const after = h.hv.countersSnapshot();
    const d = diffCounters(after.get(g.domid)!.counters, before.get(g.domid)!.counters);
    assert.equal(d.grantCopies, 3);
    assert.equal(d['exits.vmcall'], 2);
    assert.equal(d.exitTotal, 2);
    assert.equal(d['hypercalls.grant_table_op.copy'], 1);
    assert.equal(after.get(g.domid)!.name, 'g');
  });
});
