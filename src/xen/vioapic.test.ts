import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US, type ProcessGenerator } from '../sim/index.js';
import {
  __HYPERVISOR_dm_op,
  EINVAL,
  EPERM,
  IOAPIC_RTE_LEVEL,
  IOAPIC_RTE_MASK,
  IOAPIC_RTE_REMOTE_IRR,
  IOREQ_READ,
  IOREQ_WRITE,
  VIOAPIC_DEFAULT_BASE_ADDRESS as IOAPIC,
  VIOAPIC_NUM_PINS,
  XEN_DMOP_inject_msi,
  XEN_DMOP_set_isa_irq_level,
  XEN_DMOP_set_pci_intx_level,
  XEN_DMOP_set_pci_link_route,
} from './abi/index.js';
import type { XenGuest } from './guest/xen-guest.js';
import type { DmOp } from './ioreq.js';
import { makeHost, type TestHost } from './test-fixture.js';
import { hvmIsaIrqToGsi, hvmPciIntxGsi, hvmPciIntxLink } from './vioapic.js';

const VEC = 0x51;

function setup(vcpus = 1): { h: TestHost; g: XenGuest; taken: number[]; onIrq: { fn: () => void } } {
  const h = makeHost({ pcpus: 2, dom0: { pinning: [0] } });
  const g = h.guest('hvm', { vcpus, pinning: vcpus === 1 ? [1] : [[1], [1]] });
  const taken: number[] = [];
  const onIrq = { fn: (): void => undefined };
  for (const vec of [VEC, VEC + 1]) {
    g.domain.idt.set(vec, function* (v, vector): ProcessGenerator<void> {
      taken.push(vector!);
      onIrq.fn();
      yield v.exec(2 * US, 'irq');
    });
  }
  return { h, g, taken, onIrq };
}

/** The guest writes a redirection entry through IOREGSEL/IOWIN, as Linux's ioapic_write_entry does (high half first). */
function* programPin(h: TestHost, g: XenGuest, pin: number, rte: bigint, vcpu = 0): ProcessGenerator<void> {
  const v = g.domain.vcpus[vcpu]!;
  yield* h.hv.mmio(v, IOREQ_WRITE, IOAPIC, 4, BigInt(0x11 + 2 * pin));
  yield* h.hv.mmio(v, IOREQ_WRITE, IOAPIC + 0x10, 4, rte >> 32n);
  yield* h.hv.mmio(v, IOREQ_WRITE, IOAPIC, 4, BigInt(0x10 + 2 * pin));
  yield* h.hv.mmio(v, IOREQ_WRITE, IOAPIC + 0x10, 4, rte & 0xffffffffn);
}

function dm(h: TestHost, arg: DmOp): number {
  return h.run(h.hv.hypercall(h.dom0.domain.vcpus[0]!, { nr: __HYPERVISOR_dm_op, cmd: arg.op, arg }));
}

function intx(h: TestHost, g: XenGuest, device: number, level: number, pin = 0): number {
  return dm(h, { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 0, device, intx: pin, level });
}

const settle = (h: TestHost): void => h.env.run({ until: h.env.now + 1 * MS });

describe('vioapic: the HVM virtual IOAPIC and the device-model interrupt ops', () => {
  it('the guest reads the version register and writes/reads redirection entries in Xen, no ioreq; remote IRR is read-only', () => {
    const { h, g } = setup();
    const v = g.domain.vcpus[0]!;
    h.run(h.hv.mmio(v, IOREQ_WRITE, IOAPIC, 4, 0x01n));
    assert.equal(h.run(h.hv.mmio(v, IOREQ_READ, IOAPIC + 0x10, 4)), BigInt(0x11 | ((VIOAPIC_NUM_PINS - 1) << 16)));
    assert.equal(h.hv.irq.redirection(g.domain, 20), IOAPIC_RTE_MASK, 'reset masked');
    h.run(programPin(h, g, 20, (2n << 56n) | IOAPIC_RTE_LEVEL | IOAPIC_RTE_REMOTE_IRR | BigInt(VEC)));
    assert.equal(h.hv.irq.redirection(g.domain, 20), (2n << 56n) | IOAPIC_RTE_LEVEL | BigInt(VEC));
    h.run(h.hv.mmio(v, IOREQ_WRITE, IOAPIC, 4, BigInt(0x10 + 2 * 20 + 1)));
    assert.equal(h.run(h.hv.mmio(v, IOREQ_READ, IOAPIC + 0x10, 4)), 2n << 24n);
    assert.equal(g.domain.counters.ioreqs, 0);
    assert.equal(g.domain.counters.ioInternal, 8);
    assert.equal(g.domain.counters.exits.ept, 8);
  });

  it('PCI INTx routes to GSI 16-47 as hvm_pci_intx_gsi does; ISA IRQ 0 is GSI 2', () => {
    assert.equal(hvmPciIntxGsi(0, 0), 16);
    assert.equal(hvmPciIntxGsi(3, 0), 28);
    assert.equal(hvmPciIntxGsi(8, 1), 16 + ((32 + 1 + 1) & 31));
    assert.equal(hvmPciIntxLink(3, 2), 1);
    assert.equal(hvmIsaIrqToGsi(0), 2);
    assert.equal(hvmIsaIrqToGsi(11), 11);
  });

  it('a level-triggered INTx is delivered once per assertion; the EOI re-delivers while the line stays up, not after it drops', () => {
    const { h, g, taken, onIrq } = setup();
    const gsi = hvmPciIntxGsi(3, 0);
    h.run(programPin(h, g, gsi, IOAPIC_RTE_LEVEL | BigInt(VEC)));
    let handled = 0;
    // The first handler leaves the line asserted (the device is not acknowledged); the second deasserts it.
    onIrq.fn = () => {
      handled++;
      if (handled === 2) h.hv.irq.setPciIntxLevel(g.domain, { domain: 0, bus: 0, device: 3, intx: 0, level: 0 }, null);
    };
    assert.equal(intx(h, g, 3, 1), 0);
    assert.equal(intx(h, g, 3, 1), 0, 'asserting an asserted line is no new edge');
    settle(h);
    assert.deepEqual(taken, [VEC, VEC], 'delivered, re-delivered at the EOI while still up, then quiet');
    assert.equal(h.hv.irq.gsiLevel(g.domain, gsi), 0);
    assert.equal(h.hv.irq.redirection(g.domain, gsi) & IOAPIC_RTE_REMOTE_IRR, 0n, 'remote IRR clear after the last EOI');
    assert.equal(g.domain.counters.exits.eoi, 2);
    const n = taken.length;
    settle(h);
    assert.equal(taken.length, n, 'nothing more once the line is down');
  });

  it('a line deasserted by the handler (ICR read) before the EOI is not delivered again', () => {
    const { h, g, taken, onIrq } = setup();
    const gsi = hvmPciIntxGsi(4, 0);
    h.run(programPin(h, g, gsi, IOAPIC_RTE_LEVEL | BigInt(VEC)));
    onIrq.fn = () => void h.hv.irq.setPciIntxLevel(g.domain, { domain: 0, bus: 0, device: 4, intx: 0, level: 0 }, null);
    assert.equal(intx(h, g, 4, 1), 0);
    settle(h);
    assert.deepEqual(taken, [VEC]);
    assert.equal(h.hv.irq.stats(g.domain).delivered, 1);
    // A new assertion is a new edge.
    assert.equal(intx(h, g, 4, 1), 0);
    settle(h);
    assert.deepEqual(taken, [VEC, VEC]);
  });

  it('two devices on one GSI: the line is their OR, so it stays up until both deassert', () => {
    const { h, g } = setup();
    // Device 8 INTA and device 0 INTB share GSI 17 ((8 << 2) + 1 and 0 + 1, mod 32).
    const gsi = hvmPciIntxGsi(8, 0);
    assert.equal(hvmPciIntxGsi(0, 1), gsi);
    intx(h, g, 8, 1);
    intx(h, g, 0, 1, 1);
    assert.equal(h.hv.irq.gsiLevel(g.domain, gsi), 2);
    intx(h, g, 8, 0);
    assert.equal(h.hv.irq.gsiLevel(g.domain, gsi), 1);
    intx(h, g, 0, 0, 1);
    intx(h, g, 0, 0, 1);
    assert.equal(h.hv.irq.gsiLevel(g.domain, gsi), 0, 'a second deassert changes nothing');
  });

  it('a masked pin delivers nothing; unmasking it with the line asserted delivers then', () => {
    const { h, g, taken, onIrq } = setup();
    const gsi = hvmPciIntxGsi(5, 0);
    h.run(programPin(h, g, gsi, IOAPIC_RTE_MASK | IOAPIC_RTE_LEVEL | BigInt(VEC)));
    intx(h, g, 5, 1);
    settle(h);
    assert.deepEqual(taken, []);
    assert.equal(h.hv.irq.stats(g.domain).masked, 1);
    // The handler acknowledges the device (its line drops), so the EOI does not re-deliver.
    onIrq.fn = () => void h.hv.irq.setPciIntxLevel(g.domain, { domain: 0, bus: 0, device: 5, intx: 0, level: 0 }, null);
    h.run(programPin(h, g, gsi, IOAPIC_RTE_LEVEL | BigInt(VEC)));
    settle(h);
    assert.deepEqual(taken, [VEC]);
  });

  it('an edge-triggered ISA IRQ fires on each rising edge; a routed PCI link also asserts its ISA IRQ', () => {
    const { h, g, taken } = setup();
    h.run(programPin(h, g, 2, BigInt(VEC)));
    h.run(programPin(h, g, 10, BigInt(VEC + 1)));
    const isa = (irq: number, level: number): number => dm(h, { op: XEN_DMOP_set_isa_irq_level, domid: g.domid, isa_irq: irq, level });
    assert.equal(isa(0, 1), 0);
    settle(h);
    assert.equal(isa(0, 1), 0, 'no edge: the line is already up');
    settle(h);
    assert.equal(isa(0, 0), 0);
    assert.equal(isa(0, 1), 0);
    settle(h);
    assert.deepEqual(taken, [VEC, VEC]);
    const link = hvmPciIntxLink(6, 0);
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_link_route, domid: g.domid, link, isa_irq: 10 }), 0);
    intx(h, g, 6, 1);
    settle(h);
    assert.deepEqual(taken, [VEC, VEC, VEC + 1]);
    assert.equal(h.hv.irq.gsiLevel(g.domain, 10), 1);
    intx(h, g, 6, 0);
    assert.equal(h.hv.irq.gsiLevel(g.domain, 10), 0);
  });

  it('inject_msi delivers the vector to the vCPU the address names (physical APIC ID 2 × vCPU)', () => {
    const { h, g, taken } = setup(2);
    const hits: number[] = [];
    g.domain.idt.set(0x60, function* (v): ProcessGenerator<void> {
      hits.push(v.id);
      yield v.exec(1 * US, 'irq');
    });
    assert.equal(dm(h, { op: XEN_DMOP_inject_msi, domid: g.domid, addr: BigInt(0xfee00000 | (2 << 12)), data: 0x60 }), 0);
    settle(h);
    assert.deepEqual(hits, [1]);
    assert.deepEqual(taken, []);
    assert.equal(g.domain.counters.vectorsInjected, 1);
  });

  it('bad arguments get -EINVAL, an unprivileged caller -EPERM; nothing is raised', () => {
    const { h, g, taken } = setup();
    const other = h.guest('other', { pinning: [1] });
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 0, device: 32, intx: 0, level: 1 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 1, device: 3, intx: 0, level: 1 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 0, device: 3, intx: 4, level: 1 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 0, device: 3, intx: 0, level: 2 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_set_isa_irq_level, domid: g.domid, isa_irq: 16, level: 1 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_set_pci_link_route, domid: g.domid, link: 4, isa_irq: 5 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_inject_msi, domid: g.domid, addr: 0xfee00000n, data: 0x60, pad: 1 }), -EINVAL);
    assert.equal(dm(h, { op: XEN_DMOP_inject_msi, domid: g.domid, addr: 0xfee00000n, data: 0x05 }), -EINVAL);
    const arg: DmOp = { op: XEN_DMOP_set_pci_intx_level, domid: g.domid, domain: 0, bus: 0, device: 3, intx: 0, level: 1 };
    assert.equal(h.run(h.hv.hypercall(other.domain.vcpus[0]!, { nr: __HYPERVISOR_dm_op, cmd: arg.op, arg })), -EPERM);
    settle(h);
    assert.deepEqual(taken, []);
    assert.equal(h.hv.irq.gsiLevel(g.domain, hvmPciIntxGsi(3, 0)), 0);
  });
});
