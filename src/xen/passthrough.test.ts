/**
 * Passed-through devices' interrupts and DMA remapping (passthrough.ts, iommu.ts, and the
 * pCPU's own interrupt work in pcpu.ts): Xen's handling is charged to the pCPU that takes the
 * interrupt, as Xen's own time, and holds up what runs there; the guest gets its vector and
 * exits for the EOI; the IOMMU lets a device reach its owner's RAM only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US } from '../sim/index.js';
import { PAGE_SIZE } from './abi/index.js';
import { isIommuFault } from './iommu.js';
import { makeHost, profile } from './test-fixture.js';

describe('passed-through MSI', () => {
  it("is taken on the target vCPU's pCPU as Xen's own time, injected (waking the blocked vCPU), and its handler ends with an EOI exit", () => {
    const h = makeHost({ pcpus: 2 });
    const g = h.guest('g');
    const v = g.domain.vcpus[0]!;
    let handled = 0;
    g.domain.idt.set(0x41, function* (cpu) {
      handled++;
      yield cpu.exec(1000, 'irq');
    });
    const b = h.hv.pt.bindMsi(g.domain, '01:10.0', 0, 0x41);
    h.env.run({ until: h.env.now + 1 * MS });
    const p = v.processor;
    const before = h.hv.snapshot();
    const c0 = { eoi: g.domain.counters.exits.eoi, inj: g.domain.counters.vectorsInjected };
    h.hv.pt.raise(b);
    h.env.run({ until: h.env.now + 1 * MS });
    const r = h.hv.cpuReport(before);
    assert.equal(handled, 1);
    assert.equal(g.domain.counters.vectorsInjected - c0.inj, 1);
    assert.equal(g.domain.counters.exits.eoi - c0.eoi, 1, 'one EOI exit');
    assert.equal(h.hv.pt.stats.physIrqs, 1);
    const ptIrq = profile.ns('xen.irq.passthrough');
    assert.ok(r.xenOwn >= ptIrq, `Xen's own ${r.xenOwn} ns ≥ ${ptIrq}`);
    assert.equal(before.xenOwn[p.id]! + ptIrq <= h.hv.snapshot().xenOwn[p.id]!, true, 'on the pCPU of the target vCPU');
    let sum = r.xenOwn + r.idle;
    for (const d of r.domains) sum += d.total;
    assert.equal(sum, r.capacity, 'the accounting still sums exactly');
  });

  it("holds up another domain's vCPU running on that pCPU by Xen's handling time", () => {
    const h = makeHost({ pcpus: 1 });
    const g = h.guest('g');
    const hog = h.guest('hog');
    g.domain.idt.set(0x41, function* () {});
    const b = h.hv.pt.bindMsi(g.domain, '01:10.0', 0, 0x41);
    h.env.run({ until: h.env.now + 1 * MS });
    let done = 0;
    const start = h.env.now;
    h.env.process(
      (function* () {
        yield hog.domain.vcpus[0]!.exec(100 * US, 'user');
        done = h.env.now;
      })(),
    );
    h.env.run({ until: h.env.now + 10 * US });
    h.hv.pt.raise(b);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.ok(h.hv.pt.stats.onOtherPcpu >= 1);
    assert.ok(done - start >= 100 * US + profile.ns('xen.irq.passthrough'), `the hog finished after ${done - start} ns`);
  });

  it('an interrupt for an unbound MSI or a dying domain is dropped and counted', () => {
    const h = makeHost({ pcpus: 1 });
    const g = h.guest('g');
    const b = h.hv.pt.bindMsi(g.domain, '01:10.0', 0, 0x41);
    h.hv.pt.unbind(b);
    h.hv.pt.raise(b);
    h.env.run({ until: h.env.now + 1 * MS });
    assert.equal(h.hv.pt.stats.dropped, 1);
    assert.equal(h.hv.pt.stats.physIrqs, 0);
  });
});

describe('IOMMU', () => {
  it("translates DMA to the owner's RAM only: other frames, the MMIO hole, an unassigned device fault; the IOTLB misses once per page and evicts LRU", () => {
    const h = makeHost({ pcpus: 1 });
    const a = h.guest('a', { memoryMiB: 16 });
    const b = h.guest('b', { memoryMiB: 16 });
    const io = h.hv.iommu;
    io.assign('01:10.0', a.domain);
    io.assign('01:10.1', b.domain);
    const gfn = a.frames.alloc()!;
    a.mem.fill(gfn * PAGE_SIZE, PAGE_SIZE, 0xaa);
    const m = io.translate('01:10.0', gfn * PAGE_SIZE + 100, 200, false);
    assert.ok(!isIommuFault(m));
    assert.equal(m.pieces.length, 1);
    assert.equal(m.pieces[0]![0], 0xaa);
    assert.equal(m.ns, profile.ns('iommu.lookup') + profile.ns('iommu.iotlbMiss'));
    const again = io.translate('01:10.0', gfn * PAGE_SIZE, 8, false);
    assert.ok(!isIommuFault(again) && again.ns === profile.ns('iommu.lookup'), 'a hit the second time');
    // Across a page boundary: two pieces.
    const run = a.frames.allocRun(2)!;
    const two = io.translate('01:10.0', run * PAGE_SIZE + PAGE_SIZE - 4, 8, true);
    assert.ok(!isIommuFault(two) && two.pieces.length === 2);
    // The same guest-physical address through b's VF is b's page, never a's.
    const mb = io.translate('01:10.1', gfn * PAGE_SIZE + 100, 1, false);
    assert.ok(!isIommuFault(mb) && mb.pieces[0]![0] !== 0xaa);
    // Beyond RAM (16 MiB), in the MMIO hole, an unassigned BDF, a negative address.
    for (const [bdf, gpa] of [
      ['01:10.0', 16 * 1024 * 1024],
      ['01:10.0', 0xfee00000],
      ['01:10.2', gfn * PAGE_SIZE],
      ['01:10.0', -4096],
    ] as const) {
      const f = io.translate(bdf, gpa, 64, true);
      assert.ok(isIommuFault(f), `${bdf} ${gpa} should fault`);
    }
    assert.equal(io.stats.faults, 4);
    assert.equal(io.faultsByDomain.get(a.domain.domid), 3);
    // LRU: touching more pages than the IOTLB holds evicts the first.
    const entries = profile.count('iommu.iotlbEntries');
    for (let i = 0; i <= entries; i++) io.translate('01:10.1', i * PAGE_SIZE, 1, false);
    const misses = io.stats.iotlbMisses;
    io.translate('01:10.1', 0, 1, false);
    assert.equal(io.stats.iotlbMisses, misses + 1, 'evicted');
    // Deassigned: faults.
    io.deassign('01:10.0');
    assert.ok(isIommuFault(io.translate('01:10.0', gfn * PAGE_SIZE, 1, false)));
  });
});
