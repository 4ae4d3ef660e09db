import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS } from '../sim/index.js';
import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_memory_op,
  DOMID_SELF,
  EBUSY,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTST_general_error,
  GNTST_no_device_space,
  GNTST_okay,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  XENMAPSPACE_shared_info,
  XENMEM_add_to_physmap,
} from './abi/index.js';
import type { GnttabMapGrantRef, GnttabUnmapGrantRef } from './gnttab-op.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { HypercallArgs } from './hypercall.js';
import { xenRelease } from './release.js';
import { filledFrame, makeHost, profile, type TestHost } from './test-fixture.js';

// Grant-table status codes and p2m rules that differ between the releases the model knows.
const P = 4096;

function hc(h: TestHost, g: XenGuest, args: HypercallArgs): number {
  return h.run(h.hv.hypercall(g.domain.vcpus[0]!, args));
}
function map(h: TestHost, g: XenGuest, op: GnttabMapGrantRef): GnttabMapGrantRef {
  assert.equal(hc(h, g, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [op] }), 0);
  return op;
}
function unmap(h: TestHost, g: XenGuest, op: GnttabUnmapGrantRef): number {
  assert.equal(hc(h, g, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops: [op] }), 0);
  return op.status!;
}

/** Granter b, mapper `kind` with a device mapping (PV) or a host mapping (HVM) of b's frame. */
function mapped(version: string, kind: 'pv' | 'hvm'): { h: TestHost; m: XenGuest; b: XenGuest; op: GnttabMapGrantRef; gfn: number; ref: number } {
  const h = makeHost({ profile: profile.withXen(version) });
  const m = h.guest('m', { kind });
  const b = h.guest('b');
  const ref = b.gnttab.grantAccess(m.domid, filledFrame(b, 0xbb), false);
  const gfn = m.frames.allocUnpopulated();
  const op = map(
    h,
    m,
    kind === 'pv' ? { host_addr: 0, flags: GNTMAP_device_map, ref, dom: b.domid } : { host_addr: gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid },
  );
  assert.equal(op.status, GNTST_okay);
  return { h, m, b, op, gfn, ref };
}

describe('GNTTABOP_unmap_grant_ref dev_bus_addr by release (8fdfcb2b6b in 4.10)', () => {
  it('up to 4.9 only the frame of dev_bus_addr is compared; 4.10 compares the whole address', () => {
    const run = (version: string, bus: (real: number) => number): number => {
      const { h, m, op } = mapped(version, 'pv');
      return unmap(h, m, { host_addr: 0, dev_bus_addr: bus(op.dev_bus_addr!), handle: op.handle! });
    };
    const offByBytes = (a: number): number => a + 0x80;
    assert.equal(run('4.9.0', offByBytes), GNTST_okay, '4.9: same frame, the low bits are ignored');
    assert.equal(run('4.10.0', offByBytes), GNTST_general_error, '4.10: the whole address must match');
    const otherFrame = (a: number): number => a + P;
    assert.equal(run('4.9.0', otherFrame), GNTST_general_error);
    assert.equal(run('4.10.0', otherFrame), GNTST_general_error);
    assert.equal(
      run('4.5.0', (a) => a),
      GNTST_okay,
    );
  });

  it('up to 4.9 a dev_bus_addr under one page counts as not given (the device mapping stays); 4.10 rejects it', () => {
    const v49 = mapped('4.9.0', 'pv');
    assert.equal(unmap(v49.h, v49.m, { host_addr: 0, dev_bus_addr: 0x10, handle: v49.op.handle! }), GNTST_okay);
    assert.ok(v49.b.gnttab.queryAccess(v49.ref) !== 0, '4.9: still device-mapped');
    assert.equal(unmap(v49.h, v49.m, { host_addr: 0, dev_bus_addr: v49.op.dev_bus_addr!, handle: v49.op.handle! }), GNTST_okay);
    assert.equal(v49.b.gnttab.queryAccess(v49.ref), 0);
    const v410 = mapped('4.10.0', 'pv');
    assert.equal(unmap(v410.h, v410.m, { host_addr: 0, dev_bus_addr: 0x10, handle: v410.op.handle! }), GNTST_general_error);
  });

  it('a host-only HVM mapping is refused with a wrong dev_bus_addr in every release the model knows (c5bf1295b0, which stops that, is 4.16)', () => {
    for (const version of ['4.5.0', '4.13.0']) {
      assert.equal(xenRelease(version).modernGnttabStatuses, false);
      const { h, m, op, gfn } = mapped(version, 'hvm');
      assert.equal(unmap(h, m, { host_addr: gfn * P, dev_bus_addr: op.dev_bus_addr! + P, handle: op.handle! }), GNTST_general_error, version);
      assert.equal(unmap(h, m, { host_addr: gfn * P, dev_bus_addr: 0, handle: op.handle! }), GNTST_okay, version);
    }
  });
});

describe('maptrack exhaustion', () => {
  it('is GNTST_no_device_space under 3.2, 4.5 and 4.13 (no_space only from 4.16, 5c10b96795)', () => {
    for (const version of ['3.2.0', '4.5.0', '4.13.0']) {
      const h = makeHost({ profile: profile.withXen(version) });
      const a = h.guest('a', { maxMaptrackFrames: 0 });
      const b = h.guest('b');
      const ref = b.gnttab.grantAccess(a.domid, filledFrame(b, 1), false);
      const op = map(h, a, { host_addr: a.frames.allocUnpopulated() * P, flags: GNTMAP_host_map, ref, dom: b.domid });
      assert.equal(op.status, GNTST_no_device_space, version);
      assert.equal(b.gnttab.queryAccess(ref), 0, 'nothing pinned');
    }
  });
});

describe('XENMEM_add_to_physmap over a grant mapping (guest_physmap_add_entry, b37d30c8fc in 4.0)', () => {
  function overGrant(version: string, kind: 'pv' | 'hvm'): { rc: number; crashed: string | null; alive: boolean } {
    const h = makeHost({ profile: profile.withXen(version) });
    const m = h.guest('m', { kind });
    const b = h.guest('b');
    const ref = b.gnttab.grantAccess(m.domid, filledFrame(b, 0xbb), false);
    const gfn = m.frames.allocUnpopulated();
    assert.equal(map(h, m, { host_addr: gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid }).status, GNTST_okay);
    let rc = 1;
    h.env.process(
      (function* () {
        rc = yield* h.hv.hypercall(m.domain.vcpus[0]!, {
          nr: __HYPERVISOR_memory_op,
          cmd: XENMEM_add_to_physmap,
          arg: { domid: DOMID_SELF, space: XENMAPSPACE_shared_info, idx: 0, gpfn: gfn },
        });
      })(),
    );
    h.env.run({ until: h.env.now + 1 * MS });
    return { rc, crashed: m.domain.crashReason, alive: h.hv.domain(m.domid) !== undefined };
  }

  it('crashes an HVM domain from 4.0 (here 4.5); Xen 3.2 had no grant entries in an HVM p2m, and the model refuses with -EBUSY', () => {
    const v45 = overGrant('4.5.0', 'hvm');
    assert.equal(v45.rc, 1, 'the crashed guest never gets back from the hypercall (Xen returns -EINVAL to a dead domain)');
    assert.match(v45.crashed ?? '', /holds a grant mapping/);
    assert.equal(v45.alive, false);
    const v32 = overGrant('3.2.0', 'hvm');
    assert.deepEqual(v32, { rc: -EBUSY, crashed: null, alive: true });
  });

  it('a PV guest (the model’s physmap for it) is refused, not crashed', () => {
    assert.deepEqual(overGrant('4.5.0', 'pv'), { rc: -EBUSY, crashed: null, alive: true });
  });
});
