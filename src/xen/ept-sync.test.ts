import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US, type ProcessGenerator } from '../sim/index.js';
import { GNTMAP_host_map, GNTST_okay, GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref, __HYPERVISOR_grant_table_op } from './abi/index.js';
import type { GnttabMapGrantRef, GnttabUnmapGrantRef } from './gnttab-op.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { Vcpu } from './vcpu.js';
import { filledFrame, makeHost, profile, type TestHost } from './test-fixture.js';

// An HVM mapper's grant unmap removes a p2m entry, and ept_sync_domain IPIs every other pCPU
// holding one of its vCPUs, waiting for each (xen/arch/x86/mm/p2m-ept.c); the handler does
// INVEPT up to 4.6, nothing from 4.7 (8eb2235599), which invalidates at VM entry instead.
const P = 4096;

/** Work on `v`, run to its end (the clock moves on). */
function work(h: TestHost, v: Vcpu, ns: number): void {
  h.run(
    (function* (): ProcessGenerator<void> {
      yield v.exec(ns, 'kernel');
    })(),
  );
}

interface Run {
  h: TestHost;
  a: XenGuest;
  /** How long the unmap hypercall took on a's vCPU0, from the VMCALL to its return. */
  took: number;
  ipis: number;
  /** Xen time charged for a on pCPU1 during the unmap and 1 ms after it. */
  remoteXen: number;
}

/**
 * Mapper `a` (HVM) has vCPU0 on pCPU0 and vCPU1 on pCPU1; the granter and Dom0 share pCPU2.
 * `other`: what a's vCPU1 does meanwhile — runs a CPU hog, idles after having run (its state
 * still loaded on pCPU1), or `none` for a one-vCPU mapper.
 */
function unmapWith(version: string, other: 'busy' | 'idle' | 'none'): Run {
  const h = makeHost({ pcpus: 3, dom0: { pinning: [2] }, profile: profile.withXen(version) });
  const a = other === 'none' ? h.guest('a', { pinning: [0] }) : h.guest('a', { vcpus: 2, pinning: [[0], [1]] });
  const b = h.guest('b', { pinning: [2] });
  const ref = b.gnttab.grantAccess(a.domid, filledFrame(b, 0xbb), false);
  const gfn = a.frames.allocUnpopulated();
  const v0 = a.domain.vcpus[0]!;
  const m: GnttabMapGrantRef[] = [{ host_addr: gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid }];
  h.run(h.hv.hypercall(v0, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: m }));
  assert.equal(m[0]!.status, GNTST_okay);
  const v1 = a.domain.vcpus[1];
  if (other !== 'none') {
    // vCPU1 runs on pCPU1 (so its state is loaded there), and for `busy` keeps running.
    work(h, v1!, 100 * US);
    if (other === 'busy') {
      h.env.process(
        (function* (): ProcessGenerator<void> {
          for (;;) yield v1!.exec(1 * MS, 'user');
        })(),
      );
    }
  }
  h.env.run({ until: h.env.now + 1 * MS });
  assert.equal(h.hv.pcpus[1]!.loadedVcpu === v1 && v1 !== undefined, other !== 'none');
  const before = h.hv.snapshot();
  const ops: GnttabUnmapGrantRef[] = [{ host_addr: gfn * P, dev_bus_addr: 0, handle: m[0]!.handle! }];
  let took = -1;
  h.run(
    (function* (): ProcessGenerator<void> {
      yield v0.exec(1 * US, 'kernel'); // running, so the hypercall starts at once
      const t0 = h.env.now;
      yield* h.hv.hypercall(v0, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops });
      took = h.env.now - t0;
    })(),
  );
  assert.equal(ops[0]!.status, GNTST_okay);
  h.env.run({ until: h.env.now + 1 * MS });
  const mid = h.hv.snapshot();
  const perPcpu = (s: typeof before): number => {
    const row = s.domains.get(a.domid)!.ns;
    return row[1 * 5 + 2]!; // pCPU1, category 'xen'
  };
  return { h, a, took, ipis: a.domain.counters.eptSyncIpis, remoteXen: perPcpu(mid) - perPcpu(before) };
}

describe('EPT sync on an HVM unmap (ept_sync_domain)', () => {
  const c = makeHost().hv.costs;
  const idleWake = profile.ns('xen.pcpu.idleWake');
  const base = c.exit.vmcall + c.unmapOp + c.tlbFlush + c.vmentry;

  it('a one-vCPU mapper sends no IPI: one INVEPT on its own pCPU', () => {
    for (const ver of ['4.5.0', '4.7.0']) {
      const r = unmapWith(ver, 'none');
      assert.equal(r.ipis, 0);
      assert.equal(r.took, base, ver);
    }
  });

  it('a sibling vCPU running a guest on another pCPU: 4.5 waits for its IPI and its INVEPT, 4.7 only for the IPI', () => {
    const v45 = unmapWith('4.5.0', 'busy');
    const v47 = unmapWith('4.7.0', 'busy');
    assert.equal(v45.ipis, 1);
    assert.equal(v47.ipis, 1);
    const reach = c.ipiLatency + c.exit.extint + c.ipiCallFunction;
    assert.equal(v45.took, base + reach + c.tlbFlush, '4.5: the handler runs INVEPT before it acknowledges');
    assert.equal(v47.took, base + reach, '4.7 (8eb2235599): the handler is empty');
    // The interrupted pCPU does the same work in both: exit, handler, INVEPT (in the handler
    // or at the VM entry that follows), entry — on the mapper's account.
    const remote = c.exit.extint + c.ipiCallFunction + c.tlbFlush + c.vmentry;
    assert.equal(v45.remoteXen, remote);
    assert.equal(v47.remoteXen, remote);
  });

  it('a sibling vCPU idle with its state still loaded is in the dirty mask: the IPI waits for the pCPU to leave C1; 4.7 defers its INVEPT to the vCPU’s next entry', () => {
    const v45 = unmapWith('4.5.0', 'idle');
    const v47 = unmapWith('4.7.0', 'idle');
    assert.equal(v45.ipis, 1);
    assert.equal(v45.took, base + c.ipiLatency + idleWake + c.ipiCallFunction + c.tlbFlush);
    assert.equal(v47.took, base + c.ipiLatency + idleWake + c.ipiCallFunction);
    assert.equal(v45.remoteXen, c.ipiCallFunction + c.tlbFlush);
    assert.equal(v47.remoteXen, c.ipiCallFunction);
    assert.ok(v47.h.hv.pcpus[1]!.inveptPending.has(v47.a.domain), '4.7: pending on pCPU1');
    assert.ok(!v45.h.hv.pcpus[1]!.inveptPending.has(v45.a.domain), '4.5: done in the handler');
    // When vCPU1 next runs there, 4.7 pays the INVEPT on entry.
    const again = (r: Run): number => {
      const s0 = r.h.hv.snapshot();
      work(r.h, r.a.domain.vcpus[1]!, 10 * US);
      const s1 = r.h.hv.snapshot();
      return s1.domains.get(r.a.domid)!.ns[1 * 5 + 2]! - s0.domains.get(r.a.domid)!.ns[1 * 5 + 2]!;
    };
    const e45 = again(v45);
    const e47 = again(v47);
    assert.equal(e47 - e45, c.tlbFlush);
    assert.ok(!v47.h.hv.pcpus[1]!.inveptPending.has(v47.a.domain));
  });

  it('a PV mapper keeps the batch flush share: no IPI', () => {
    const h = makeHost({ pcpus: 2 });
    const a = h.guest('a', { kind: 'pv', vcpus: 2, pinning: [[0], [1]] });
    const b = h.guest('b');
    const ref = b.gnttab.grantAccess(a.domid, filledFrame(b, 0xbb), false);
    const gfn = a.frames.allocUnpopulated();
    const v0 = a.domain.vcpus[0]!;
    const m: GnttabMapGrantRef[] = [{ host_addr: gfn * P, flags: GNTMAP_host_map, ref, dom: b.domid }];
    h.run(h.hv.hypercall(v0, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: m }));
    work(h, a.domain.vcpus[1]!, 10 * US);
    h.run(
      h.hv.hypercall(v0, {
        nr: __HYPERVISOR_grant_table_op,
        cmd: GNTTABOP_unmap_grant_ref,
        ops: [{ host_addr: gfn * P, dev_bus_addr: 0, handle: m[0]!.handle! }],
      }),
    );
    assert.equal(a.domain.counters.eptSyncIpis, 0);
  });
});
