import {
  dest_Fixed,
  dest_LowestPrio,
  EINVAL,
  IOAPIC_RTE_LEVEL,
  IOAPIC_RTE_MASK,
  IOAPIC_RTE_REMOTE_IRR,
  MSI_ADDR_DEST_ID_SHIFT,
  MSI_ADDR_DESTMODE_LOGIC,
  MSI_DATA_DELIVERY_MODE_SHIFT,
  MSI_DATA_TRIGGER_LEVEL,
  VIOAPIC_DEFAULT_BASE_ADDRESS,
  VIOAPIC_MEM_LENGTH,
  VIOAPIC_NUM_PINS,
  VIOAPIC_REG_APIC_ID,
  VIOAPIC_REG_ARB_ID,
  VIOAPIC_REG_EOI,
  VIOAPIC_REG_SELECT,
  VIOAPIC_REG_VERSION,
  VIOAPIC_REG_WINDOW,
  VIOAPIC_VERSION_ID,
} from './abi/index.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import type { Vcpu } from './vcpu.js';

/** Redirection entries are reset masked (vioapic_reset). */
const RTE_RESET = IOAPIC_RTE_MASK;
/** Bits of a redirection entry the guest can write: all but delivery status (12) and remote IRR (14). */
const RTE_RO = (1n << 12n) | IOAPIC_RTE_REMOTE_IRR;
/** PCI INTx lines of bus 0: 32 devices × INTA-INTD (hvm_irq->pci_intx). */
const PCI_INTX = 32 * 4;

/** hvm_pci_intx_gsi (asm/hvm/irq.h): the GSI the virtual PCI bus wires device/INTx to. */
export function hvmPciIntxGsi(dev: number, intx: number): number {
  return (((dev << 2) + (dev >> 3) + intx) & 31) + 16;
}

/** hvm_pci_intx_link: which of the four PCI link devices (PIRQ A-D) device/INTx goes through. */
export function hvmPciIntxLink(dev: number, intx: number): number {
  return (dev + intx) & 3;
}

/** hvm_isa_irq_to_gsi: ISA IRQ 0 (the PIT) is wired to GSI 2, the rest identity. */
export function hvmIsaIrqToGsi(irq: number): number {
  return irq === 0 ? 2 : irq;
}

/** struct hvm_irq plus the domain's one struct hvm_vioapic. */
interface DomIrq {
  /** Redirection table, one 64-bit entry per pin. */
  readonly rte: bigint[];
  ioregsel: number;
  id: number;
  /** gsi_assert_count: how many asserted sources drive each GSI (the level is their OR). */
  readonly gsiAssert: number[];
  readonly pciIntx: boolean[];
  readonly isaIrq: boolean[];
  /** pci_link.route (0: the link is not routed to an ISA IRQ) and pci_link_assert_count. */
  readonly linkRoute: number[];
  readonly linkAssert: number[];
  /** Interrupts delivered from this IOAPIC, and asserts that found the pin masked. */
  delivered: number;
  masked: number;
}

/**
 * An HVM guest's interrupt lines and its virtual IOAPIC (xen/arch/x86/hvm/irq.c, vioapic.c),
 * and MSI injection (vmsi.c): how a device model's dm_op set_pci_intx_level /
 * set_isa_irq_level / inject_msi reach a vCPU's LAPIC. Level-triggered pins follow the
 * 82093AA's remote-IRR rule: delivered once per assertion, re-delivered at the LAPIC's EOI
 * (vioapic_update_EOI) while the line is still asserted. The guest programs the redirection
 * table through IOREGSEL/IOWIN at VIOAPIC_DEFAULT_BASE_ADDRESS, an access Xen emulates
 * itself (hvm_io_intercept) without a device model.
 *
 * Simplifications, stated: the 8259 PIC (vpic) is not modelled, so ISA IRQs reach the guest
 * only through the IOAPIC; destinations are physical (APIC ID = 2 × vCPU id, as Xen's vlapic
 * sets it; 0xff broadcasts) or logical flat (bit i = vCPU i, the LDR Linux programs);
 * lowest-priority delivery picks the first vCPU the destination names.
 */
export class HvmIrqs {
  private readonly state = new Map<Domain, DomIrq>();

  constructor(private readonly hv: Hypervisor) {}

  private st(d: Domain): DomIrq {
    let s = this.state.get(d);
    if (s === undefined) {
      s = {
        rte: Array.from({ length: VIOAPIC_NUM_PINS }, () => RTE_RESET),
        ioregsel: 0,
        id: 0,
        gsiAssert: Array.from({ length: VIOAPIC_NUM_PINS }, () => 0),
        pciIntx: Array.from({ length: PCI_INTX }, () => false),
        isaIrq: Array.from({ length: 16 }, () => false),
        linkRoute: [0, 0, 0, 0],
        linkAssert: [0, 0, 0, 0],
        delivered: 0,
        masked: 0,
      };
      this.state.set(d, s);
    }
    return s;
  }

  /** Domain destruction. */
  release(d: Domain): void {
    this.state.delete(d);
  }

  /** A pin's redirection entry (for tests and the trace). */
  redirection(d: Domain, pin: number): bigint {
    return this.st(d).rte[pin]!;
  }

  /** How many sources assert GSI `gsi` now. */
  gsiLevel(d: Domain, gsi: number): number {
    return this.st(d).gsiAssert[gsi]!;
  }

  /** Interrupts the IOAPIC delivered, and asserts of masked pins. */
  stats(d: Domain): { delivered: number; masked: number } {
    const s = this.st(d);
    return { delivered: s.delivered, masked: s.masked };
  }

  // ---- dm_op --------------------------------------------------------------------------------

  /** XEN_DMOP_set_pci_intx_level (dm.c: domain and bus must be 0, device ≤ 31, intx ≤ 3, level 0/1). */
  setPciIntxLevel(d: Domain, a: { domain: number; bus: number; device: number; intx: number; level: number }, from: Pcpu | null): number {
    const seg = a.domain & 0xffff;
    const bus = a.bus & 0xff;
    const dev = a.device & 0xff;
    const intx = a.intx & 0xff;
    const level = a.level & 0xff;
    if (seg !== 0 || bus !== 0 || dev > 0x1f || intx > 3) return -EINVAL;
    if (level > 1) return -EINVAL;
    const s = this.st(d);
    const bit = dev * 4 + intx;
    const gsi = hvmPciIntxGsi(dev, intx);
    const link = hvmPciIntxLink(dev, intx);
    if (level === 1) {
      if (s.pciIntx[bit]) return 0;
      s.pciIntx[bit] = true;
      if (s.gsiAssert[gsi]!++ === 0) this.positiveEdge(d, s, gsi, from);
      const isa = s.linkRoute[link]!;
      if (s.linkAssert[link]!++ === 0 && isa !== 0 && s.gsiAssert[isa]!++ === 0) this.positiveEdge(d, s, isa, from);
    } else {
      if (!s.pciIntx[bit]) return 0;
      s.pciIntx[bit] = false;
      s.gsiAssert[gsi]!--;
      const isa = s.linkRoute[link]!;
      if (--s.linkAssert[link]! === 0 && isa !== 0) s.gsiAssert[isa]!--;
    }
    return 0;
  }

  /** XEN_DMOP_set_isa_irq_level (isa_irq ≤ 15, level 0/1). */
  setIsaIrqLevel(d: Domain, a: { isa_irq: number; level: number }, from: Pcpu | null): number {
    const irq = a.isa_irq & 0xff;
    const level = a.level & 0xff;
    if (irq > 15 || level > 1) return -EINVAL;
    const s = this.st(d);
    const gsi = hvmIsaIrqToGsi(irq);
    if (level === 1) {
      if (!s.isaIrq[irq]) {
        s.isaIrq[irq] = true;
        if (s.gsiAssert[gsi]!++ === 0) this.positiveEdge(d, s, gsi, from);
      }
    } else if (s.isaIrq[irq]) {
      s.isaIrq[irq] = false;
      s.gsiAssert[gsi]!--;
    }
    return 0;
  }

  /** XEN_DMOP_set_pci_link_route (link ≤ 3, isa_irq ≤ 15; 0 unroutes), as hvmloader programs it. */
  setPciLinkRoute(d: Domain, a: { link: number; isa_irq: number }): number {
    const link = a.link & 0xff;
    const isa = a.isa_irq & 0xff;
    if (link > 3 || isa > 15) return -EINVAL;
    const s = this.st(d);
    const old = s.linkRoute[link]!;
    if (old === isa) return 0;
    // hvm_set_pci_link_route: an asserted link moves its assertion from the old IRQ to the new.
    if (s.linkAssert[link]! > 0) {
      if (old !== 0) s.gsiAssert[old]!--;
      if (isa !== 0) s.gsiAssert[isa]!++;
    }
    s.linkRoute[link] = isa;
    return 0;
  }

  /** XEN_DMOP_inject_msi (hvm_inject_msi → vmsi_deliver): pad must be 0; fixed and lowest-priority only. */
  injectMsi(d: Domain, a: { addr: bigint; data: number; pad?: number }, from: Pcpu | null): number {
    if ((a.pad ?? 0) !== 0) return -EINVAL;
    const addr = Number(BigInt.asUintN(32, a.addr));
    const data = a.data >>> 0;
    const vector = data & 0xff;
    const mode = (data >>> MSI_DATA_DELIVERY_MODE_SHIFT) & 7;
    const level = (data & MSI_DATA_TRIGGER_LEVEL) !== 0;
    const dest = (addr >>> MSI_ADDR_DEST_ID_SHIFT) & 0xff;
    const logical = (addr & MSI_ADDR_DESTMODE_LOGIC) !== 0;
    // Vector 0 names a passed-through pirq in Xen; there are none here, nor vectors below 16.
    if (vector < 16 || (mode !== dest_Fixed && mode !== dest_LowestPrio)) return -EINVAL;
    this.deliverTo(d, dest, logical, mode, vector, level, from);
    return 0;
  }

  // ---- LAPIC EOI ----------------------------------------------------------------------------

  /** vioapic_update_EOI: the guest EOId level-triggered `vector`; remote IRR clears, an asserted line fires again. */
  eoi(d: Domain, vector: number, from: Pcpu | null): void {
    const s = this.state.get(d);
    if (s === undefined) return;
    for (let pin = 0; pin < VIOAPIC_NUM_PINS; pin++) {
      const e = s.rte[pin]!;
      if (Number(e & 0xffn) !== vector) continue;
      s.rte[pin] = e & ~IOAPIC_RTE_REMOTE_IRR;
      if ((e & IOAPIC_RTE_MASK) === 0n && (e & IOAPIC_RTE_LEVEL) !== 0n && s.gsiAssert[pin]! > 0) {
        s.rte[pin] = s.rte[pin]! | IOAPIC_RTE_REMOTE_IRR;
        this.deliver(d, s, pin, from);
      }
    }
  }

  // ---- the guest's MMIO to the IOAPIC (emulated in Xen) --------------------------------------

  claims(gpa: number, size: number): boolean {
    return gpa >= VIOAPIC_DEFAULT_BASE_ADDRESS && gpa + size <= VIOAPIC_DEFAULT_BASE_ADDRESS + VIOAPIC_MEM_LENGTH;
  }

  /** vioapic_read: IOREGSEL, or the register it selects through IOWIN (32-bit halves of an RTE). */
  read(d: Domain, gpa: number): bigint {
    const s = this.st(d);
    const off = gpa - VIOAPIC_DEFAULT_BASE_ADDRESS;
    if (off === VIOAPIC_REG_SELECT) return BigInt(s.ioregsel);
    if (off !== VIOAPIC_REG_WINDOW) return 0n;
    switch (s.ioregsel) {
      case VIOAPIC_REG_APIC_ID:
      case VIOAPIC_REG_ARB_ID:
        return BigInt((s.id & 0xf) << 24);
      case VIOAPIC_REG_VERSION:
        return BigInt(VIOAPIC_VERSION_ID | ((VIOAPIC_NUM_PINS - 1) << 16));
      default: {
        const pin = (s.ioregsel - 0x10) >> 1;
        if (s.ioregsel < 0x10 || pin >= VIOAPIC_NUM_PINS) return ~0n & 0xffffffffn;
        const e = s.rte[pin]!;
        return s.ioregsel & 1 ? e >> 32n : e & 0xffffffffn;
      }
    }
  }

  /** vioapic_write: IOREGSEL, IOWIN (ID or a half of an RTE; remote IRR and delivery status are read-only), the EOI register. */
  write(d: Domain, gpa: number, value: bigint, from: Pcpu | null): void {
    const s = this.st(d);
    const off = gpa - VIOAPIC_DEFAULT_BASE_ADDRESS;
    const val = BigInt.asUintN(32, value);
    if (off === VIOAPIC_REG_SELECT) {
      s.ioregsel = Number(val & 0xffn);
      return;
    }
    if (off === VIOAPIC_REG_EOI) {
      this.eoi(d, Number(val & 0xffn), from);
      return;
    }
    if (off !== VIOAPIC_REG_WINDOW) return;
    if (s.ioregsel === VIOAPIC_REG_APIC_ID) {
      s.id = Number((val >> 24n) & 0xfn);
      return;
    }
    const pin = (s.ioregsel - 0x10) >> 1;
    if (s.ioregsel < 0x10 || pin >= VIOAPIC_NUM_PINS) return;
    const old = s.rte[pin]!;
    const half = s.ioregsel & 1 ? (old & 0xffffffffn) | (val << 32n) : (old & ~0xffffffffn) | val;
    const e = (half & ~RTE_RO) | (old & RTE_RO);
    s.rte[pin] = (e & IOAPIC_RTE_LEVEL) === 0n ? e & ~IOAPIC_RTE_REMOTE_IRR : e;
    // vioapic_write_redirent: unmasking a level pin whose line is asserted delivers it now.
    const now = s.rte[pin];
    if ((now & IOAPIC_RTE_MASK) === 0n && (now & IOAPIC_RTE_LEVEL) !== 0n && (now & IOAPIC_RTE_REMOTE_IRR) === 0n && s.gsiAssert[pin]! > 0) {
      s.rte[pin] = now | IOAPIC_RTE_REMOTE_IRR;
      this.deliver(d, s, pin, from);
    }
  }

  // ---- delivery -----------------------------------------------------------------------------

  /** vioapic_irq_positive_edge: a GSI went from deasserted to asserted. */
  private positiveEdge(d: Domain, s: DomIrq, pin: number, from: Pcpu | null): void {
    if (pin >= VIOAPIC_NUM_PINS) return;
    const e = s.rte[pin]!;
    if ((e & IOAPIC_RTE_MASK) !== 0n) {
      s.masked++;
      return;
    }
    if ((e & IOAPIC_RTE_LEVEL) === 0n) this.deliver(d, s, pin, from);
    else if ((e & IOAPIC_RTE_REMOTE_IRR) === 0n) {
      s.rte[pin] = e | IOAPIC_RTE_REMOTE_IRR;
      this.deliver(d, s, pin, from);
    }
  }

  /** vioapic_deliver. */
  private deliver(d: Domain, s: DomIrq, pin: number, from: Pcpu | null): void {
    const e = s.rte[pin]!;
    const vector = Number(e & 0xffn);
    const mode = Number((e >> 8n) & 7n);
    const logical = ((e >> 11n) & 1n) === 1n;
    const level = (e & IOAPIC_RTE_LEVEL) !== 0n;
    const dest = Number((e >> 56n) & 0xffn);
    // A vector below 16 is illegal on a LAPIC (it would set an error); Xen drops such deliveries.
    if (vector < 16 || (mode !== dest_Fixed && mode !== dest_LowestPrio)) return;
    s.delivered++;
    this.deliverTo(d, dest, logical, mode, vector, level, from);
  }

  private deliverTo(d: Domain, dest: number, logical: boolean, mode: number, vector: number, level: boolean, from: Pcpu | null): void {
    const targets: Vcpu[] = d.vcpus.filter((v) => (logical ? (dest & (1 << v.id)) !== 0 : dest === 0xff || dest === v.id * 2));
    const chosen = mode === dest_LowestPrio ? targets.slice(0, 1) : targets;
    for (const v of chosen) this.hv.intr.raiseVector(v, vector, from, level);
  }
}
