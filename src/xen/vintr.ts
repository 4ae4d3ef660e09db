import { PRIO_IRQ, type ProcessGenerator } from '../sim/index.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import { TP_UPCALL, TP_VMEXIT } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

/**
 * Guest code entered by an interrupt: an HVM guest's IDT entry for a vector, or a PV guest's
 * event callback (vector null). It runs on the vCPU (charging its own 'irq' work) and returns
 * when the handler irets.
 */
export type GuestIrqHandler = (v: Vcpu, vector: number | null) => ProcessGenerator<void>;

/** Per-vCPU delivery state: a delivery is under way (queued, or the guest handler running). */
interface VcpuIntr {
  busy: boolean;
  /** LAPIC fixed vectors requested and not yet injected (the vLAPIC IRR). */
  irr: Set<number>;
  /** Vectors raised level-triggered and not yet EOId (the vLAPIC TMR): their EOI goes to the IOAPIC. */
  tmr: Set<number>;
}

/**
 * How Xen gets an interrupt into a guest vCPU: the event-channel upcall (HVM callback vector,
 * HVM_PARAM_CALLBACK_IRQ type 2, injected while evtchn_upcall_pending is set and needing no
 * EOI — shared/reference/xen-abi.md §4.2; PV event callback) and LAPIC vectors for emulated
 * devices and passed-through MSIs (EOI exit after the handler).
 *
 * The work is charged on the target vCPU, at interrupt priority, so it preempts what the guest
 * runs there; a blocked vCPU is woken through the credit scheduler (BOOST). The entry cost
 * depends on where the vCPU is when the interrupt is raised:
 * - running on another pCPU: an IPI (xen.ipi.latency, no CPU charged), then on the target an
 *   external-interrupt exit, the injection and VM entry (PV: a trap and the callback);
 * - not running: the scheduler wakes it (the IPI to the tickled pCPU is added there), then
 *   the injection and VM entry (PV: the callback);
 * - the raiser is Xen working for this very vCPU: the injection on its way back in.
 * Interrupts raised while the guest handler runs (interrupts disabled in the guest) are taken
 * after it returns, through an interrupt-window exit (HVM).
 */
export class InterruptDelivery {
  private readonly state = new Map<Vcpu, VcpuIntr>();

  constructor(private readonly hv: Hypervisor) {}

  /** vcpu_mark_events_pending found evtchn_upcall_pending newly set (hvm_assert_evtchn_irq / vcpu_kick). */
  kickUpcall(v: Vcpu, from: Pcpu | null): void {
    this.kick(v, from);
  }

  /** A LAPIC fixed interrupt for an HVM vCPU (vlapic_set_irq): emulated devices, MSIs. */
  raiseVector(v: Vcpu, vector: number, from: Pcpu | null, level = false): void {
    if (v.domain.kind !== 'hvm') throw new Error(`${v.name}: LAPIC vectors exist only for HVM guests (model bug)`);
    if (!Number.isInteger(vector) || vector < 16 || vector > 255) throw new Error(`${v.name}: vector ${vector} is not 16-255 (model bug)`);
    const s = this.st(v);
    s.irr.add(vector);
    if (level) s.tmr.add(vector);
    else s.tmr.delete(vector);
    this.kick(v, from);
  }

  /**
   * The vCPU is about to re-enter the guest (after a hypercall or an exit Xen handled, or
   * switched in by the scheduler):
   * Xen injects whatever is pending then (hvm_vcpu_has_pending_irq and PV test_all_events
   * look at evtchn_upcall_pending on every entry, not only on its edge).
   */
  onGuestEntry(v: Vcpu): void {
    const s = this.st(v);
    if (!s.busy && this.next(v, s) !== null) this.kick(v, v.pcpu);
  }

  private st(v: Vcpu): VcpuIntr {
    let s = this.state.get(v);
    if (s === undefined) {
      s = { busy: false, irr: new Set(), tmr: new Set() };
      this.state.set(v, s);
    }
    return s;
  }

  private kick(v: Vcpu, from: Pcpu | null): void {
    if (v.domain.dying) return;
    const s = this.st(v);
    if (s.busy) return; // taken by the delivery under way (its loop looks again before leaving)
    s.busy = true;
    this.hv.env.process(this.deliver(v, from, s), `deliver ${v.name}`);
  }

  /** What the vCPU would take now: the callback vector / PV callback while upcall_pending, else the highest LAPIC vector. */
  private next(v: Vcpu, s: VcpuIntr): { vector: number | null; lapic: boolean; handler: GuestIrqHandler | null } | null {
    const d = v.domain;
    const upcall = d.sharedInfo.upcallPending(v.id);
    if (d.kind !== 'hvm') {
      if (!upcall || d.sharedInfo.upcallMask(v.id) || d.pvEventCallback === null) return null;
      return { vector: null, lapic: false, handler: d.pvEventCallback };
    }
    if (upcall && d.callbackVector !== null) return { vector: d.callbackVector, lapic: false, handler: d.idt.get(d.callbackVector) ?? null };
    let best = -1;
    for (const x of s.irr) if (x > best) best = x;
    if (best < 0) return null;
    return { vector: best, lapic: true, handler: d.idt.get(best) ?? null };
  }

  private *deliver(v: Vcpu, from: Pcpu | null, s: VcpuIntr): ProcessGenerator<void> {
    const d = v.domain;
    const c = this.hv.costs;
    const hvm = d.kind === 'hvm';
    if (from !== null && v.pcpu !== null && v.pcpu !== from) yield this.hv.env.timeout(c.ipiLatency);
    let cost: number;
    if (v.pcpu !== null && (from === null || v.pcpu !== from)) {
      // Interrupted in guest mode by the IPI (or the device's interrupt).
      if (hvm) {
        this.exit(d, v, 'extint');
        cost = c.exit.extint + c.injectIrq + c.vmentry;
      } else {
        d.counters.pvTraps++;
        cost = c.pvTrap + c.pvEventCallback;
      }
    } else if (v.pcpu === null) {
      cost = hvm ? c.injectIrq + c.vmentry : c.pvEventCallback;
    } else {
      cost = hvm ? c.injectIrq : c.pvEventCallback;
    }
    yield v.exec(cost, 'xen', PRIO_IRQ, v.pcpu === null ? from : null);
    for (;;) {
      if (d.dying) break;
      const n = this.next(v, s);
      if (n === null) break;
      if (n.lapic) {
        s.irr.delete(n.vector!);
        d.counters.vectorsInjected++;
      } else d.counters.upcalls++;
      const t = this.hv.env.trace;
      if (!n.lapic && t.enabled(TP_UPCALL)) t.emit(TP_UPCALL, { domid: d.domid, vcpu: v.name, vector: n.vector });
      // No handler: the guest set no entry for this vector; nothing runs, and the upcall stays
      // pending until a later kick finds one.
      if (n.handler === null) break;
      yield* n.handler(v, n.vector);
      if (n.lapic) {
        this.exit(d, v, 'eoi');
        yield v.exec(c.eoi, 'xen', PRIO_IRQ);
        // vlapic_EOI_set: a level-triggered vector's EOI is broadcast to the IOAPIC (vioapic_update_EOI).
        if (s.tmr.delete(n.vector!)) this.hv.irq.eoi(d, n.vector!, v.pcpu);
      }
      if (d.dying || this.next(v, s) === null) break;
      // Raised while the handler ran with interrupts off: taken at the iret.
      if (hvm) {
        this.exit(d, v, 'intwin');
        yield v.exec(c.exit.intwin + c.injectIrq + c.vmentry, 'xen', PRIO_IRQ);
      } else yield v.exec(c.pvEventCallback, 'xen', PRIO_IRQ);
    }
    s.busy = false;
  }

  private exit(d: Domain, v: Vcpu, reason: 'extint' | 'eoi' | 'intwin'): void {
    d.counters.exits[reason]++;
    const t = this.hv.env.trace;
    if (t.enabled(TP_VMEXIT)) t.emit(TP_VMEXIT, { domid: d.domid, vcpu: v.name, reason });
  }
}
