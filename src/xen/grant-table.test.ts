import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, type ProcessGenerator } from '../sim/index.js';
import type { HypercallArgs } from './hypercall.js';
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_device_space,
  GNTST_okay,
  GNTST_permission_denied,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  GTF_reading,
  GTF_writing,
} from './abi/index.js';
import type { GnttabCopy, GnttabMapGrantRef, GnttabQuerySize, GnttabSetupTable, GnttabUnmapGrantRef } from './gnttab-op.js';
import type { XenGuest } from './guest/xen-guest.js';
import { GuestFault } from './memory.js';
import { filledFrame, makeHost, profile, type TestHost } from './test-fixture.js';
import { TP_COPY, TP_MAP, TP_UNMAP } from './trace-points.js';

const P = 4096;

function copy(h: TestHost, g: XenGuest, ops: GnttabCopy[]): GnttabCopy[] {
  assert.equal(h.run(h.hv.hypercall(g.domain.vcpus[0]!, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_copy, ops })), 0);
  return ops;
}
function map(h: TestHost, g: XenGuest, ops: GnttabMapGrantRef[]): GnttabMapGrantRef[] {
  assert.equal(h.run(h.hv.hypercall(g.domain.vcpus[0]!, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops })), 0);
  return ops;
}
function unmap(h: TestHost, g: XenGuest, ops: GnttabUnmapGrantRef[]): GnttabUnmapGrantRef[] {
  assert.equal(h.run(h.hv.hypercall(g.domain.vcpus[0]!, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops })), 0);
  return ops;
}
/** Copy from the caller's own frame into a grant of `dstDom`. */
function toGref(src: number, dstDom: number, ref: number, len = 64, so = 0, dof = 0): GnttabCopy {
  return { source: { u: src, domid: DOMID_SELF, offset: so }, dest: { u: ref, domid: dstDom, offset: dof }, len, flags: GNTCOPY_dest_gref };
}
/** Copy from a grant of `srcDom` into the caller's own frame. */
function fromGref(srcDom: number, ref: number, dst: number, len = 64, so = 0, dof = 0): GnttabCopy {
  return { source: { u: ref, domid: srcDom, offset: so }, dest: { u: dst, domid: DOMID_SELF, offset: dof }, len, flags: GNTCOPY_source_gref };
}

/**
 * Runs hypercall `args` on g's vCPU once it is already running (so its time starts at once),
 * and calls `probe` `at` ns into the hypercall.
 */
function probeDuring(h: TestHost, g: XenGuest, args: HypercallArgs, at: number, probe: () => void): ReturnType<TestHost['env']['process']> {
  const v = g.domain.vcpus[0]!;
  return h.env.process(
    (function* (): ProcessGenerator<number> {
      yield v.exec(1000, 'kernel');
      h.env.process(
        (function* (): ProcessGenerator<void> {
          yield h.env.timeout(at);
          probe();
        })(),
      );
      return yield* h.hv.hypercall(v, args);
    })(),
  );
}

/** Two guests: `a` (the caller), `b` (granter) with a frame filled with 0xbb granted to a. */
function setup(readonly = false, xen?: string): { h: TestHost; a: XenGuest; b: XenGuest; bFrame: number; ref: number; aFrame: number } {
  const h = makeHost(xen === undefined ? {} : { profile: profile.withXen(xen) });
  const a = h.guest('a');
  const b = h.guest('b');
  const bFrame = filledFrame(b, 0xbb);
  const aFrame = filledFrame(a, 0xaa);
  const ref = b.gnttab.grantAccess(a.domid, bFrame, readonly);
  return { h, a, b, bFrame, ref, aFrame };
}

describe('GNTTABOP_copy', () => {
  it('moves the bytes between the two domains, to and from a grant, and only those bytes', () => {
    const { h, a, b, bFrame, ref, aFrame } = setup();
    const [op] = copy(h, a, [toGref(aFrame, b.domid, ref, 100, 10, 200)]);
    assert.equal(op!.status, GNTST_okay);
    const page = b.mem.read(bFrame * P, P);
    assert.ok(page.subarray(0, 200).every((x) => x === 0xbb));
    assert.ok(page.subarray(200, 300).every((x) => x === 0xaa));
    assert.ok(page.subarray(300).every((x) => x === 0xbb));
    b.mem.fill(bFrame * P + 4000, 96, 0x42);
    const [back] = copy(h, a, [fromGref(b.domid, ref, aFrame, 96, 4000, 0)]);
    assert.equal(back!.status, GNTST_okay);
    assert.deepEqual([...a.mem.read(aFrame * P, 97)], [...new Array<number>(96).fill(0x42), 0xaa]);
    assert.equal(a.domain.counters.grantCopies, 2);
    assert.equal(a.domain.counters.grantCopyBytes, 196);
    assert.equal(b.gnttab.queryAccess(ref), 0, 'pins released after the copy');
  });

  it('a batch gets one status per op; a failure does not stop the others', () => {
    const { h, a, b, ref, aFrame } = setup();
    const ops = copy(h, a, [
      toGref(aFrame, b.domid, ref),
      toGref(aFrame, b.domid, 9999),
      toGref(aFrame, b.domid, ref, 8, 0, 4090),
      toGref(aFrame, b.domid, ref),
    ]);
    assert.deepEqual(
      ops.map((o) => o.status),
      [GNTST_okay, GNTST_bad_gntref, GNTST_bad_copy_arg, GNTST_okay],
    );
    assert.equal(a.domain.counters.grantFailures, 2);
  });

  it('bad_gntref for a ref beyond the granter table', () => {
    const { h, a, b, aFrame } = setup();
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, 512)])[0]!.status, GNTST_bad_gntref);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, 0xffffffff)])[0]!.status, GNTST_bad_gntref);
  });

  it('general_error when the entry names another domain, and for a third domain using it', () => {
    const { h, a, b, bFrame, aFrame } = setup();
    const c = h.guest('c');
    const refForC = b.gnttab.grantAccess(c.domid, bFrame, false);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, refForC)])[0]!.status, GNTST_general_error);
    assert.equal(b.mem.readU8(bFrame * P), 0xbb);
  });

  it('permission_denied for a frame-addressed side naming another domain (a foreign gmfn)', () => {
    const { h, a, b, bFrame, aFrame } = setup();
    const op: GnttabCopy = { source: { u: aFrame, domid: DOMID_SELF, offset: 0 }, dest: { u: bFrame, domid: b.domid, offset: 0 }, len: 64, flags: 0 };
    assert.equal(copy(h, a, [op])[0]!.status, GNTST_permission_denied);
    const rd: GnttabCopy = { source: { u: bFrame, domid: b.domid, offset: 0 }, dest: { u: aFrame, domid: DOMID_SELF, offset: 0 }, len: 64, flags: 0 };
    assert.equal(copy(h, a, [rd])[0]!.status, GNTST_permission_denied);
    assert.equal(a.mem.readU8(aFrame * P), 0xaa, 'nothing read');
    assert.equal(b.mem.readU8(bFrame * P), 0xbb, 'nothing written');
  });

  it('a read-only grant may be a source, never a destination (general_error)', () => {
    const { h, a, b, bFrame, ref, aFrame } = setup(true);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref)])[0]!.status, GNTST_general_error);
    assert.equal(b.mem.readU8(bFrame * P), 0xbb);
    assert.equal(copy(h, a, [fromGref(b.domid, ref, aFrame)])[0]!.status, GNTST_okay);
    assert.equal(a.mem.readU8(aFrame * P), 0xbb);
  });

  it('bad_copy_arg when offset + len passes the page on either side; len 4096 at offset 0 is fine', () => {
    const { h, a, b, ref, aFrame } = setup();
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref, 100, 0, 4000)])[0]!.status, GNTST_bad_copy_arg);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref, 100, 4000, 0)])[0]!.status, GNTST_bad_copy_arg);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref, 4096, 0, 0)])[0]!.status, GNTST_okay);
    assert.equal(b.gnttab.queryAccess(ref), 0, 'a failed op leaves no pin');
  });

  it('a revoked grant (end access) fails with general_error, and so does its ref reused for another domain', () => {
    const { h, a, b, bFrame, ref, aFrame } = setup();
    assert.ok(b.gnttab.endAccess(ref));
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref)])[0]!.status, GNTST_general_error);
    const c = h.guest('c');
    const again = b.gnttab.grantAccess(c.domid, bFrame, false);
    assert.equal(again, ref, 'the ref is reused');
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, again)])[0]!.status, GNTST_general_error);
    assert.equal(b.mem.readU8(bFrame * P), 0xbb);
  });

  it('bad_domain for a domain that does not exist or was destroyed', () => {
    const { h, a, b, ref, aFrame } = setup();
    assert.equal(copy(h, a, [toGref(aFrame, 77, ref)])[0]!.status, GNTST_bad_domain);
    h.hv.destroyDomain(b.domain);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref)])[0]!.status, GNTST_bad_domain);
  });

  it('bad_page for a frame that is not RAM of its domain: a granted non-RAM frame, or the caller copying from a page it only has mapped', () => {
    const { h, a, b, aFrame } = setup();
    const ref = b.gnttab.grantAccess(a.domid, b.mem.firstFreeGfn + 5, false);
    assert.equal(copy(h, a, [toGref(aFrame, b.domid, ref)])[0]!.status, GNTST_bad_page);
    assert.equal(b.gnttab.queryAccess(ref), 0, 'the failed pin is undone');
    const bFrame = filledFrame(b, 0x5a);
    const r2 = b.gnttab.grantAccess(a.domid, bFrame, false);
    const at = a.frames.allocUnpopulated();
    assert.equal(map(h, a, [{ host_addr: at * P, flags: GNTMAP_host_map, ref: r2, dom: b.domid }])[0]!.status, GNTST_okay);
    const c = h.guest('c');
    const cFrame = filledFrame(c, 0xcc);
    const rc = c.gnttab.grantAccess(a.domid, cFrame, false);
    // a cannot pass b's page on by naming its mapping as its own frame
    assert.equal(copy(h, a, [toGref(at, c.domid, rc)])[0]!.status, GNTST_bad_page);
    assert.equal(c.mem.readU8(cFrame * P), 0xcc);
  });

  it('pins the grant while Xen copies: GTF_writing set and end access refused until the op is done', () => {
    const { h, a, b, ref, aFrame } = setup();
    const seen: number[] = [];
    const ended: boolean[] = [];
    h.env.trace.on(TP_COPY, () => seen.push(b.gnttab.flags(ref)));
    const op = toGref(aFrame, b.domid, ref, 4096);
    // Probe in the middle of the op's time on the (already running) vCPU.
    const c = h.hv.costs;
    const p = probeDuring(h, a, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_copy, ops: [op] }, c.exit.vmcall + Math.round(c.copyOp / 2), () => {
      seen.push(b.gnttab.flags(ref));
      ended.push(b.gnttab.endAccessRef(ref));
    });
    h.env.run({ until: p });
    assert.equal(op.status, GNTST_okay);
    assert.equal(seen[0]! & (GTF_reading | GTF_writing), GTF_reading | GTF_writing, 'pinned in the middle of the copy');
    assert.deepEqual(ended, [false]);
    assert.equal(seen[1]! & (GTF_reading | GTF_writing), 0, 'released when the op completes');
    assert.ok(b.gnttab.endAccessRef(ref));
  });

  it('charges exit, per-op and per-byte cost and VM entry to the caller, as Xen time', () => {
    const { h, a, b, ref, aFrame } = setup();
    const before = h.hv.snapshot();
    const t0 = h.env.now;
    copy(h, a, [toGref(aFrame, b.domid, ref, 1000), toGref(aFrame, b.domid, ref, 3000)]);
    const c = h.hv.costs;
    // Xen 4.5 (the default profile) claims both sides for each op.
    assert.equal(h.hv.release.batchedGnttabCopy, false);
    const expected =
      c.exit.vmcall + 2 * (c.copyOp + 2 * c.copyClaim) + Math.round(1000 * c.copyPerByte) + Math.round(3000 * c.copyPerByte) + c.vmentry;
    const r = h.hv.cpuReport(before).domains.find((d) => d.domid === a.domid)!;
    assert.equal(r.byCategory.xen, expected);
    assert.equal(r.total, expected);
    assert.ok(h.env.now - t0 >= expected);
    assert.equal(c.exit.vmcall + c.vmentry, Math.round(1228 / profile.clockGHz), 'HVM hypercall round trip = Dall 1228 cycles');
  });
});

describe('GNTTABOP_copy by release (d28f42f270 in 4.6)', () => {
  /** Xen time `ops` cost the caller, besides the hypercall round trip and the bytes. */
  function overhead(
    xen: string,
    build: (s: ReturnType<typeof setup>, ref2: number, aFrame2: number) => GnttabCopy[],
  ): { t: number; ops: GnttabCopy[]; s: ReturnType<typeof setup> } {
    const s = setup(false, xen);
    const ref2 = s.b.gnttab.grantAccess(s.a.domid, filledFrame(s.b, 0xcc), false);
    const aFrame2 = filledFrame(s.a, 0x11);
    const ops = build(s, ref2, aFrame2);
    const before = s.h.hv.snapshot();
    copy(s.h, s.a, ops);
    const c = s.h.hv.costs;
    const bytes = ops.reduce((n, op) => n + (op.status === GNTST_okay ? Math.round((op.len & 0xffff) * c.copyPerByte) : 0), 0);
    const xenTime = s.h.hv.cpuReport(before).domains.find((d) => d.domid === s.a.domid)!.byCategory.xen;
    return { t: xenTime - c.exit.vmcall - c.vmentry - bytes, ops, s };
  }

  it('4.5 claims both sides for every op; 4.6 keeps them claimed over a run of ops on the same pages', () => {
    // Four 1 KiB pieces of one frame into one granted page, as netback or HV²M copy a frame.
    const run = (s: ReturnType<typeof setup>): GnttabCopy[] => [0, 1, 2, 3].map((i) => toGref(s.aFrame, s.b.domid, s.ref, 1024, i * 1024, i * 1024));
    const v45 = overhead('4.5.0', run);
    const v46 = overhead('4.6.0', run);
    const c = v45.s.h.hv.costs;
    assert.ok(c.copyClaim > 0);
    assert.equal(v45.t, 4 * (c.copyOp + 2 * c.copyClaim), '4.5: 8 claims');
    assert.equal(v46.t, 4 * c.copyOp + 2 * c.copyClaim, '4.6: 2 claims for the run');
    for (const v of [v45, v46]) {
      assert.deepEqual(
        v.ops.map((o) => o.status),
        [0, 0, 0, 0],
      );
      assert.ok(
        v.s.b.mem.read(v.s.bFrame * P, P).every((x) => x === 0xaa),
        'the whole granted page now holds a’s bytes',
      );
      assert.equal(v.s.b.domain.grants.pinnedCount, 0, 'every claim released at the batch end');
    }
  });

  it('4.6 re-claims a side when its target changes, and after an error', () => {
    const v46 = overhead('4.6.0', (s, ref2) => [
      toGref(s.aFrame, s.b.domid, s.ref, 64), // claims src + dest
      toGref(s.aFrame, s.b.domid, ref2, 64), // dest changes: 1 claim
      toGref(s.aFrame, s.b.domid, 9999, 64), // bad ref: 1 failed claim attempt, both released
      toGref(s.aFrame, s.b.domid, ref2, 64), // both claimed again
    ]);
    const c = v46.s.h.hv.costs;
    assert.deepEqual(
      v46.ops.map((o) => o.status),
      [GNTST_okay, GNTST_okay, GNTST_bad_gntref, GNTST_okay],
    );
    assert.equal(v46.t, 4 * c.copyOp + (2 + 1 + 0 + 2) * c.copyClaim);
    assert.equal(v46.s.b.domain.grants.pinnedCount, 0);
  });

  it('4.5 checks offset + len before anything else; 4.6 only once both sides are claimed', () => {
    const bad = (s: ReturnType<typeof setup>): GnttabCopy[] => [
      toGref(s.aFrame, s.b.domid, 9999, 200, 0, 4000),
      toGref(s.aFrame, 77, s.ref, 200, 4000, 0),
    ];
    assert.deepEqual(
      overhead('4.5.0', bad).ops.map((o) => o.status),
      [GNTST_bad_copy_arg, GNTST_bad_copy_arg],
    );
    assert.deepEqual(
      overhead('4.6.0', bad).ops.map((o) => o.status),
      [GNTST_bad_gntref, GNTST_bad_domain],
    );
  });
});

describe('GNTTABOP_map_grant_ref / unmap_grant_ref', () => {
  function mapAt(h: TestHost, a: XenGuest, dom: number, ref: number, flags = GNTMAP_host_map): { op: GnttabMapGrantRef; gfn: number } {
    const gfn = a.frames.allocUnpopulated();
    const [op] = map(h, a, [{ host_addr: gfn * P, flags, ref, dom }]);
    return { op: op!, gfn };
  }

  it('a writable host map makes the page accessible to the mapper while mapped, and not after the unmap', () => {
    const { h, a, b, bFrame, ref } = setup();
    const { op, gfn } = mapAt(h, a, b.domid, ref);
    assert.equal(op.status, GNTST_okay);
    assert.equal(op.handle, 0);
    assert.equal(a.mem.readU8(gfn * P + 7), 0xbb, 'the mapper reads the granter page');
    a.mem.writeU32(gfn * P + 8, 0xdeadbeef);
    assert.equal(b.mem.readU32(bFrame * P + 8), 0xdeadbeef, 'the granter sees the write');
    assert.equal(b.gnttab.queryAccess(ref), GTF_reading | GTF_writing);
    assert.equal(b.gnttab.endAccessRef(ref), false, 'end access fails while mapped');
    assert.equal(b.domain.pageRefs, 1);
    const [u] = unmap(h, a, [{ host_addr: gfn * P, dev_bus_addr: 0, handle: op.handle }]);
    assert.equal(u!.status, GNTST_okay);
    assert.throws(() => a.mem.readU8(gfn * P), GuestFault);
    assert.equal(b.gnttab.queryAccess(ref), 0);
    assert.equal(b.domain.pageRefs, 0);
    assert.ok(b.gnttab.endAccessRef(ref), 'end access succeeds after the unmap');
    assert.equal(a.domain.counters.grantMaps, 1);
    assert.equal(a.domain.counters.grantUnmaps, 1);
  });

  it('read-only rules: a readonly map of a writable grant sets only GTF_reading and faults on writes; a writable map of a readonly grant fails', () => {
    const { h, a, b, bFrame, ref } = setup();
    const ro = mapAt(h, a, b.domid, ref, GNTMAP_host_map | GNTMAP_readonly);
    assert.equal(ro.op.status, GNTST_okay);
    assert.equal(b.gnttab.queryAccess(ref), GTF_reading);
    assert.throws(() => a.mem.writeU8(ro.gfn * P, 1), GuestFault);
    assert.equal(b.mem.readU8(bFrame * P), 0xbb);
    const rw = mapAt(h, a, b.domid, ref);
    assert.equal(rw.op.status, GNTST_okay, 'a second, writable map of the same grant');
    assert.equal(b.gnttab.queryAccess(ref), GTF_reading | GTF_writing);
    unmap(h, a, [{ host_addr: rw.gfn * P, dev_bus_addr: 0, handle: rw.op.handle! }]);
    assert.equal(b.gnttab.queryAccess(ref), GTF_reading, 'GTF_writing goes with the last writable pin');
    unmap(h, a, [{ host_addr: ro.gfn * P, dev_bus_addr: 0, handle: ro.op.handle! }]);
    assert.equal(b.gnttab.queryAccess(ref), 0);

    const roRef = b.gnttab.grantAccess(a.domid, bFrame, true);
    assert.equal(mapAt(h, a, b.domid, roRef).op.status, GNTST_general_error);
    assert.equal(b.gnttab.queryAccess(roRef), 0);
    assert.equal(mapAt(h, a, b.domid, roRef, GNTMAP_host_map | GNTMAP_readonly).op.status, GNTST_okay);
  });

  it("handles: reused after unmap; bad_handle for an unused, already unmapped or another domain's handle", () => {
    const { h, a, b, ref } = setup();
    const c = h.guest('c');
    const first = mapAt(h, a, b.domid, ref);
    const second = mapAt(h, a, b.domid, ref);
    assert.deepEqual([first.op.handle, second.op.handle], [0, 1]);
    assert.equal(unmap(h, a, [{ host_addr: 0, dev_bus_addr: 0, handle: 7 }])[0]!.status, GNTST_bad_handle);
    assert.equal(unmap(h, c, [{ host_addr: first.gfn * P, dev_bus_addr: 0, handle: 0 }])[0]!.status, GNTST_bad_handle, 'c has no handle 0');
    assert.equal(unmap(h, a, [{ host_addr: first.gfn * P, dev_bus_addr: 0, handle: 0 }])[0]!.status, GNTST_okay);
    assert.equal(unmap(h, a, [{ host_addr: first.gfn * P, dev_bus_addr: 0, handle: 0 }])[0]!.status, GNTST_bad_handle, 'double unmap');
    assert.equal(mapAt(h, a, b.domid, ref).op.handle, 0, 'the freed handle is reused');
  });

  it('unmap at the wrong host address fails and keeps the mapping; so does a wrong bus address, whatever the mapping (Xen 4.5)', () => {
    const { h, a, b, bFrame, ref } = setup();
    const m = mapAt(h, a, b.domid, ref);
    assert.equal(unmap(h, a, [{ host_addr: (m.gfn + 1) * P, dev_bus_addr: 0, handle: m.op.handle! }])[0]!.status, GNTST_general_error);
    assert.equal(a.mem.readU8(m.gfn * P), 0xbb, 'still mapped');
    // Up to 4.15 a given dev_bus_addr is checked even for a host-only mapping ("Bad frame number").
    assert.equal(unmap(h, a, [{ host_addr: m.gfn * P, dev_bus_addr: m.op.dev_bus_addr! + P, handle: m.op.handle! }])[0]!.status, GNTST_general_error);
    assert.equal(a.mem.readU8(m.gfn * P), 0xbb, 'still mapped');
    assert.equal(unmap(h, a, [{ host_addr: m.gfn * P, dev_bus_addr: 0, handle: m.op.handle! }])[0]!.status, GNTST_okay);
    // A PV device mapping: the wrong bus address is general_error and the mapping stays.
    const pv = h.guest('pv', { kind: 'pv' });
    const pref = b.gnttab.grantAccess(pv.domid, bFrame, false);
    const d = mapAt(h, pv, b.domid, pref, GNTMAP_device_map);
    assert.equal(unmap(h, pv, [{ host_addr: 0, dev_bus_addr: d.op.dev_bus_addr! + P, handle: d.op.handle! }])[0]!.status, GNTST_general_error);
    assert.ok(b.gnttab.queryAccess(pref) !== 0, 'still mapped');
    assert.equal(unmap(h, pv, [{ host_addr: 0, dev_bus_addr: d.op.dev_bus_addr!, handle: d.op.handle! }])[0]!.status, GNTST_okay);
  });

  it('flag checks: no host/device map is bad_gntref; an HVM caller may only host-map; a PV caller may device-map', () => {
    const { h, a, b, bFrame, ref } = setup();
    assert.equal(mapAt(h, a, b.domid, ref, GNTMAP_readonly).op.status, GNTST_bad_gntref);
    assert.equal(mapAt(h, a, b.domid, ref, GNTMAP_device_map | GNTMAP_host_map).op.status, GNTST_general_error);
    assert.equal(b.gnttab.queryAccess(ref), 0);
    const pv = h.guest('pv', { kind: 'pv' });
    const pref = b.gnttab.grantAccess(pv.domid, bFrame, false);
    const m = mapAt(h, pv, b.domid, pref, GNTMAP_device_map);
    assert.equal(m.op.status, GNTST_okay);
    assert.ok(m.op.dev_bus_addr! > 0);
    assert.equal(unmap(h, pv, [{ host_addr: 0, dev_bus_addr: m.op.dev_bus_addr!, handle: m.op.handle! }])[0]!.status, GNTST_okay);
    assert.equal(b.gnttab.queryAccess(pref), 0);
  });

  it('bad_domain, bad_gntref, and general_error for a grant pinned by another domain or naming another domain', () => {
    const { h, a, b, bFrame, ref } = setup();
    assert.equal(mapAt(h, a, 99, ref).op.status, GNTST_bad_domain);
    assert.equal(mapAt(h, a, DOMID_SELF, ref).op.status, GNTST_bad_domain, 'map takes a real domid');
    assert.equal(mapAt(h, a, b.domid, 600).op.status, GNTST_bad_gntref);
    const c = h.guest('c');
    assert.equal(mapAt(h, c, b.domid, ref).op.status, GNTST_general_error, 'the grant names a');
    mapAt(h, a, b.domid, ref);
    // b rewrites the entry's domid behind Xen's back while a has it mapped: Xen's active entry still says a.
    const refC = ref;
    b.gnttab.grantAccessRef(refC, c.domid, bFrame, false);
    assert.equal(mapAt(h, c, b.domid, refC).op.status, GNTST_general_error, 'pinned by another domain');
  });

  it('no_device_space when the maptrack is full (every release up to 4.15)', () => {
    const h = makeHost();
    const a = h.guest('a', { maxMaptrackFrames: 0 });
    const b = h.guest('b');
    const ref = b.gnttab.grantAccess(a.domid, filledFrame(b, 1), false);
    const gfn = a.frames.allocUnpopulated();
    assert.equal(map(h, a, [{ host_addr: gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid }])[0]!.status, GNTST_no_device_space);
    assert.equal(b.gnttab.queryAccess(ref), 0);
  });

  it('an HVM map onto a frame that already holds a grant mapping crashes the mapper (guest_physmap_add_entry); the granter gets every pin back', () => {
    const { h, a, b, ref } = setup();
    const m = mapAt(h, a, b.domid, ref);
    const ops: GnttabMapGrantRef[] = [{ host_addr: m.gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid }];
    const p = h.env.process(h.hv.hypercall(a.domain.vcpus[0]!, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops }));
    h.env.run({ until: h.env.now + 1 * MS });
    assert.equal(ops[0]!.status, GNTST_general_error);
    assert.match(a.domain.crashReason ?? '', /already holds a grant mapping/);
    assert.equal(h.hv.domain(a.domid), undefined, 'crashed: destroyed');
    assert.equal(b.gnttab.queryAccess(ref), 0, 'its mappings were released');
    assert.ok(b.gnttab.endAccessRef(ref));
    void p;
  });

  it('charges map, unmap and one TLB flush per batch of unmaps, and traces map/unmap', () => {
    const { h, a, b, ref } = setup();
    const events: string[] = [];
    h.env.trace.on(TP_MAP, (_t, p) => events.push(`map ${p.ref} ${p.status}`));
    h.env.trace.on(TP_UNMAP, (_t, p) => events.push(`unmap ${p.handle} ${p.status}`));
    const gfns = [a.frames.allocUnpopulated(), a.frames.allocUnpopulated()];
    const c = h.hv.costs;
    let before = h.hv.snapshot();
    const ms = map(
      h,
      a,
      gfns.map((g) => ({ host_addr: g * P, flags: GNTMAP_host_map, ref, dom: b.domid })),
    );
    const xenOf = (): number => h.hv.cpuReport(before).domains.find((d) => d.domid === a.domid)!.byCategory.xen;
    assert.equal(xenOf(), c.exit.vmcall + 2 * c.mapOp + c.vmentry);
    before = h.hv.snapshot();
    unmap(
      h,
      a,
      ms.map((m, i) => ({ host_addr: gfns[i]! * P, dev_bus_addr: 0, handle: m.handle! })),
    );
    assert.equal(xenOf(), c.exit.vmcall + 2 * (c.unmapOp + c.tlbFlush) + c.vmentry);
    assert.deepEqual(events, [`map ${ref} 0`, `map ${ref} 0`, 'unmap 0 0', 'unmap 1 0']);
  });

  it('keeps pins until the TLB flush of the batch: the granter cannot end access in between', () => {
    const { h, a, b, ref } = setup();
    const m = mapAt(h, a, b.domid, ref);
    const probe: boolean[] = [];
    const c = h.hv.costs;
    const ops: GnttabUnmapGrantRef[] = [{ host_addr: m.gfn * P, dev_bus_addr: 0, handle: m.op.handle! }];
    const p = probeDuring(
      h,
      a,
      { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops },
      c.exit.vmcall + c.unmapOp + Math.round(c.tlbFlush / 2),
      () => {
        probe.push(b.gnttab.endAccessRef(ref));
        probe.push(a.mem.accessible(m.gfn * P, false));
      },
    );
    h.env.run({ until: p });
    assert.deepEqual(probe, [false, false], 'pinned, though already unmapped from the mapper');
    assert.equal(ops[0]!.status, GNTST_okay);
    assert.ok(b.gnttab.endAccessRef(ref));
  });
});

describe('GNTTABOP_setup_table / query_size and XENMEM_add_to_physmap', () => {
  it('grows the table up to max_grant_frames; beyond it general_error; another domain only for the privileged', () => {
    const h = makeHost();
    const a = h.guest('a', { maxGrantFrames: 4 });
    const b = h.guest('b');
    const v = a.domain.vcpus[0]!;
    const q: GnttabQuerySize = { dom: DOMID_SELF };
    h.run(h.hv.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_query_size, ops: [q] }));
    assert.deepEqual([q.status, q.nr_frames, q.max_nr_frames], [GNTST_okay, 1, 4]);
    const s: GnttabSetupTable = { dom: DOMID_SELF, nr_frames: 3 };
    h.run(h.hv.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_setup_table, ops: [s] }));
    assert.equal(s.status, GNTST_okay);
    assert.equal(s.frame_list!.length, 3);
    assert.equal(s.frame_list![1], -1, 'frame 1 is not in the physmap yet');
    assert.equal(a.domain.grants.nrFrames, 3);
    const big: GnttabSetupTable = { dom: DOMID_SELF, nr_frames: 5 };
    h.run(h.hv.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_setup_table, ops: [big] }));
    assert.equal(big.status, GNTST_general_error);
    const other: GnttabQuerySize = { dom: b.domid };
    h.run(h.hv.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_query_size, ops: [other] }));
    assert.equal(other.status, GNTST_permission_denied);
    const priv: GnttabQuerySize = { dom: a.domid };
    h.run(h.hv.hypercall(h.dom0.domain.vcpus[0]!, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_query_size, ops: [priv] }));
    assert.deepEqual([priv.status, priv.nr_frames], [GNTST_okay, 3]);
    const none: GnttabQuerySize = { dom: 42 };
    h.run(h.hv.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_query_size, ops: [none] }));
    assert.equal(none.status, GNTST_bad_domain);
  });

  it('the guest client grows its table through add_to_physmap and gets -ENOSPC, then -EINVAL past the maximum', () => {
    const h = makeHost();
    const a = h.guest('a', { maxGrantFrames: 2 });
    const b = h.guest('b');
    const f = filledFrame(a, 0);
    for (let i = 8; i < 512; i++) assert.equal(a.gnttab.grantAccess(b.domid, f, true), i);
    assert.equal(a.gnttab.grantAccess(b.domid, f, true), -28);
    assert.equal(h.run(a.gnttab.expand(a.domain.vcpus[0]!, 1)), 0);
    assert.equal(a.gnttab.grantAccess(b.domid, f, true), 512);
    assert.equal(h.run(a.gnttab.expand(a.domain.vcpus[0]!, 1)), -22);
  });
});
