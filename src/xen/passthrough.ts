import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import { TP_PIRQ } from './trace-points.js';

/** One MSI-X vector of a passed-through device bound to a guest vector (Xen's struct hvm_pirq_dpci for an MSI). */
export interface PtMsiBinding {
  readonly domain: Domain;
  /** The device and its MSI-X table entry. */
  readonly bdf: string;
  readonly entry: number;
  /** The guest vector and destination vCPU the guest programmed in its (virtual) MSI-X entry. */
  readonly gvec: number;
  readonly vcpu: number;
}

export interface PassthroughStats {
  /** Physical interrupts Xen took for passed-through MSIs. */
  physIrqs: number;
  /** Of those, taken on a pCPU where another domain's vCPU (or idle) was, not the target vCPU. */
  onOtherPcpu: number;
  /** Interrupts for a binding whose domain was dying or unbound (dropped, as Xen drops them). */
  dropped: number;
}

/**
 * Interrupts of passed-through devices (xen/drivers/passthrough/io.c, arch/x86/hvm/vmsi.c):
 * a device's MSI-X message arrives as a physical interrupt on a pCPU, which Xen takes there
 * (do_IRQ, the irq's guest handler, HVM_DPCI_SOFTIRQ and hvm_dirq_assist → vmsi_deliver_pirq:
 * `xen.irq.passthrough`, charged to that pCPU as Xen's own time, holding up whatever ran
 * there), then the guest vector goes to the target vCPU's vLAPIC and the vCPU is kicked
 * (woken through the scheduler if blocked; an external-interrupt exit if running). The guest's
 * handler ends with a LAPIC EOI write: an exit, there being no APIC virtualization in this
 * model (the default profile's Xen 4.5 on pre-APICv hardware).
 *
 * Which pCPU takes it: Xen keeps a passed-through MSI's physical affinity on the pCPU of the
 * vCPU it targets (hvm_migrate_pirqs on every vCPU migration), so it is `v.processor`.
 * Binding (the guest's MSI-X table write trapped by the device model, then
 * XEN_DOMCTL_bind_pt_irq) is done by the toolstack side here and not timed.
 */
export class PassthroughIrqs {
  readonly stats: PassthroughStats = { physIrqs: 0, onOtherPcpu: 0, dropped: 0 };
  private readonly bindings = new Set<PtMsiBinding>();

  constructor(private readonly hv: Hypervisor) {}

  /** XEN_DOMCTL_bind_pt_irq for an MSI: `bdf`'s MSI-X entry `entry` delivers guest vector `gvec` to vCPU `vcpu`. */
  bindMsi(domain: Domain, bdf: string, entry: number, gvec: number, vcpu = 0): PtMsiBinding {
    if (domain.kind !== 'hvm') throw new Error(`${domain.name}: passed-through MSIs are bound only for HVM guests here (model bug)`);
    if (!Number.isInteger(gvec) || gvec < 0x20 || gvec > 0xff) throw new Error(`${domain.name}: guest vector ${gvec} not 0x20-0xff (model bug)`);
    if (domain.vcpus[vcpu] === undefined) throw new Error(`${domain.name}: no vCPU ${vcpu} for ${bdf} MSI-X ${entry} (model bug)`);
    const b: PtMsiBinding = { domain, bdf, entry, gvec, vcpu };
    this.bindings.add(b);
    return b;
  }

  /** XEN_DOMCTL_unbind_pt_irq. */
  unbind(b: PtMsiBinding): void {
    this.bindings.delete(b);
  }

  /** The device wrote its MSI-X message: the physical interrupt, Xen's handling, the injection. */
  raise(b: PtMsiBinding): void {
    const d = b.domain;
    if (!this.bindings.has(b) || d.dying) {
      this.stats.dropped++;
      return;
    }
    const v = d.vcpus[b.vcpu]!;
    const p = v.processor;
    this.stats.physIrqs++;
    if (p.curr !== v) this.stats.onOtherPcpu++;
    const done = p.xenIrq(this.hv.costs.ptIrq);
    const t = this.hv.env.trace;
    if (t.enabled(TP_PIRQ)) t.emit(TP_PIRQ, { domid: d.domid, vcpu: v.name, pcpu: p.id, bdf: b.bdf, vector: b.gvec });
    this.hv.env.timeout(done - this.hv.env.now).addCallback(() => {
      if (d.dying || !this.bindings.has(b)) {
        this.stats.dropped++;
        return;
      }
      // vmsi_deliver_pirq → vlapic_set_irq (edge), vcpu_kick: `from` null — a device's
      // interrupt, so a running vCPU takes an external-interrupt exit, a blocked one is woken.
      this.hv.intr.raiseVector(v, b.gvec, null);
    });
  }
}
