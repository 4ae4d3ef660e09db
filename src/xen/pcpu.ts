import { LATE, type Env, type Timer, type Time, type Work } from '../sim/index.js';
import type { CpuAccounting, DomainCpuTime } from './accounting.js';
import { TP_SCHED_BLOCK, TP_SCHED_SWITCH, TP_VMEXIT } from './trace-points.js';
import type { Domain } from './domain.js';
import type { Vcpu } from './vcpu.js';

/** What the scheduler decides for a pCPU: the vCPU to run (null = idle) and for how long. */
export interface SchedDecision {
  next: Vcpu | null;
  slice: Time;
}

/** A scheduling policy, as Xen's `struct scheduler` hooks. */
export interface SchedPolicy {
  /** Picks what `p` runs next; `p.curr` is the vCPU it has been running (null = idle). */
  schedule(p: Pcpu): SchedDecision;
  /** `prev` has just been switched out of `p` (Xen's context_saved). */
  descheduled(p: Pcpu, prev: Vcpu): void;
}

export interface PcpuCosts {
  /** Xen switching the pCPU to a vCPU other than the one whose state it holds, ns. */
  vcpuSwitch: Time;
  /** An idle pCPU leaving its idle state when tickled, ns. */
  idleWake: Time;
  /** An IPI from another pCPU reaching this one, ns (a tickle from another pCPU's Xen code). */
  ipiLatency: Time;
  /** One scheduling decision (schedule() with csched_schedule), ns of Xen's own time. */
  schedule: Time;
  /** context_switch to or from the idle vCPU (lazy: no state saved or loaded), ns. */
  idleSwitch: Time;
  /** An HVM vCPU going idle: the HLT exit, hvm_hlt and SCHEDOP_block, ns for its domain. */
  hltExit: Time;
  /** A PV vCPU going idle: the SCHEDOP_block hypercall (trap and handler), ns for its domain. */
  pvBlock: Time;
  /** INVEPT of one domain's EPT (a pending invalidation done when its vCPU next enters here), ns. */
  invept: Time;
}

/** A stretch of Xen work on the pCPU before guest code runs again; `owner` null = Xen's own. */
interface XenWork {
  ns: number;
  owner: DomainCpuTime | null;
}

/**
 * A physical CPU. It runs its current vCPU's work, settles every elapsed nanosecond into the
 * accounting, and asks the scheduler policy what to run when the slice ends, the vCPU blocks,
 * or it is tickled. Scheduling decisions run as a softirq at the end of the current instant
 * (after every event of that instant), as Xen's SCHEDULE_SOFTIRQ runs on the way out of the
 * interrupt that raised it; a vCPU that is between two pieces of work at one instant is
 * therefore never mistaken for a blocked one.
 */
export class Pcpu {
  /** The vCPU running here, or null when idle. */
  curr: Vcpu | null = null;
  /** When `curr` started running (Xen's runstate.state_entry_time), for the rate limit. */
  runStart: Time = 0;
  /** The work item of `curr` being executed. */
  demand: Work | null = null;
  /** The scheduler's run queue for this pCPU (credit1 keeps one per pCPU). */
  readonly runq: Vcpu[] = [];
  runqSortLast = 0;
  /** Idle and not yet tickled (credit1's prv->idlers). */
  idler = true;
  switches = 0;
  /** Domains whose EPT this pCPU must invalidate before it next runs one of their vCPUs. */
  readonly inveptPending = new Set<Domain>();

  private sliceEnd = Infinity;
  private settledAt: Time;
  /** Xen work queued on this pCPU, done in order before any vCPU's work (and before idling). */
  private readonly xenWork: XenWork[] = [];
  private loaded: Vcpu | null = null;
  private needResched = false;
  private readonly decision: Timer;
  private readonly softirq: Timer;
  policy!: SchedPolicy;

  constructor(
    private readonly env: Env,
    readonly id: number,
    private readonly acct: CpuAccounting,
    private readonly costs: PcpuCosts,
    /** Called when a vCPU is switched in, on its way into the guest (Xen's VM entry checks). */
    private readonly onEnter: (v: Vcpu) => void = () => undefined,
  ) {
    this.settledAt = env.now;
    this.decision = env.timer(() => this.onDecision());
    this.softirq = env.timer(() => this.onSoftirq(), LATE);
  }

  /** Accounts the time since the last settlement to whatever the pCPU was doing. */
  settle(): void {
    const now = this.env.now;
    const dt = now - this.settledAt;
    if (dt === 0) return;
    this.settledAt = now;
    const v = this.curr;
    let t = dt;
    while (t > 0 && this.xenWork.length > 0) {
      const x = this.xenWork[0]!;
      const o = t < x.ns ? t : x.ns;
      x.ns -= o;
      t -= o;
      if (x.owner === null) this.acct.xenOwn[this.id] = this.acct.xenOwn[this.id]! + o;
      else this.acct.charge(this.id, x.owner, 'xen', o);
      if (x.ns === 0) this.xenWork.shift();
    }
    if (t === 0) return;
    if (v === null) {
      this.acct.idle[this.id] = this.acct.idle[this.id]! + t;
      return;
    }
    const w = this.demand;
    if (w === null) throw new Error(`pCPU${this.id}: ${t} ns passed running ${v.name} with no work (model bug)`);
    w.remaining -= t;
    this.acct.charge(this.id, v.domain.cpuTime, w.ctx, t);
  }

  /**
   * The vCPU whose state this pCPU holds (per_cpu(curr_vcpu)): the running one, or after idle
   * the last one, as Xen switches lazily. Its domain's domain_dirty_cpumask has this pCPU.
   */
  get loadedVcpu(): Vcpu | null {
    return this.loaded;
  }

  /** In Xen, not in guest code nor in its idle state: it has Xen work queued. */
  get inXen(): boolean {
    return this.xenWork.length > 0;
  }

  /**
   * An interrupt into Xen (an IPI's handler) taken at `at`: `ns` of Xen work for `owner`
   * (null: Xen's own) done before whatever ran here continues.
   */
  interruptAt(at: Time, ns: Time, owner: DomainCpuTime | null): void {
    const t = this.env.timer(() => {
      this.settle();
      this.xen(ns, owner);
      this.dispatch();
    });
    t.setAt(at);
  }

  /** New work for the vCPU running here. */
  workArrived(w: Work): void {
    if (this.demand === null || w.priority > this.demand.priority) {
      this.settle();
      this.dispatch();
    }
  }

  /**
   * A physical interrupt taken by Xen on this pCPU (do_IRQ and what it raises): `ns` of Xen's
   * own work, ahead of whatever the pCPU runs (the vCPU here is held up meanwhile) and charged
   * to this pCPU as Xen's own time. Returns the instant the work is done (Xen's handlers queue
   * behind each other). An idle pCPU's C-state exit is not added here: the scheduler's
   * response to the wake-up the handler raises adds it (`tickle`), once.
   */
  xenIrq(ns: Time): Time {
    this.settle();
    this.xen(ns, null);
    this.dispatch();
    let left = 0;
    for (const x of this.xenWork) left += x.ns;
    return this.env.now + left;
  }

  /**
   * Asks for a scheduling decision on this pCPU (a tickle); idle pCPUs take `idleWake` to
   * respond. A tickle from Xen code on another pCPU (`from`) travels as an IPI.
   */
  tickle(from: Pcpu | null = null): void {
    this.needResched = true;
    const ipi = from !== null && from !== this ? this.costs.ipiLatency : 0;
    // Only a pCPU that has finished its Xen work is in its idle state (C1) and must leave it.
    const cstate = this.curr === null && this.xenWork.length === 0 ? this.costs.idleWake : 0;
    this.raiseSoftirq(this.env.now + ipi + cstate);
  }

  /** Asks for a scheduling decision at the end of this instant (a vCPU here slept or was paused). */
  reschedule(): void {
    this.needResched = true;
    this.raiseSoftirq(this.env.now);
  }

  private raiseSoftirq(at: Time): void {
    const d = this.softirq.deadline;
    if (d === undefined || d > at) this.softirq.setAt(at);
  }

  /** Queues Xen work of `ns` on this pCPU, for `owner`'s account (null: Xen's own). */
  private xen(ns: Time, owner: DomainCpuTime | null): void {
    if (ns > 0) this.xenWork.push({ ns, owner });
  }

  /** Arms the next decision point: the end of Xen's work, of the current work, or of the slice. */
  private dispatch(): void {
    const v = this.curr;
    const now = this.env.now;
    if (this.xenWork.length > 0) {
      let left = 0;
      for (const x of this.xenWork) left += x.ns;
      this.demand = null;
      this.decision.setAt(now + left);
      return;
    }
    if (v === null) {
      this.demand = null;
      this.decision.cancel();
      return;
    }
    const w = v.work.top();
    if (w === undefined) {
      // Nothing to do right now: block at the end of the instant unless work arrives first.
      this.demand = null;
      this.decision.cancel();
      this.raiseSoftirq(now);
      return;
    }
    this.demand = w;
    const end = now + w.remaining;
    this.decision.setAt(end < this.sliceEnd ? end : Math.max(now, this.sliceEnd));
  }

  private onDecision(): void {
    this.settle();
    const w = this.demand;
    if (w !== null && w.remaining <= 0) {
      this.curr!.work.removeHead(w);
      this.demand = null;
      w.succeed();
    }
    if (this.env.now >= this.sliceEnd) {
      this.sliceEnd = Infinity; // spent; the scheduler sets the next one
      this.reschedule();
    }
    this.dispatch();
  }

  private onSoftirq(): void {
    this.settle();
    const v = this.curr;
    if (v !== null && !v.runnable) {
      // Blocked by its own idle loop; a paused vCPU (waiting in Xen on an ioreq, parked, dying)
      // takes no HLT exit, nor does one blocked in SCHEDOP_poll (it is inside a hypercall).
      if (v.work.length === 0 && v.pauseCount === 0 && !v.polling) this.block(v);
      this.needResched = true;
    }
    if (this.needResched) {
      this.needResched = false;
      this.schedule();
    }
    this.dispatch();
  }

  /**
   * `v` has nothing left to do: its kernel's idle loop enters Xen to block — an HVM guest by
   * HLT (VM exit, hvm_hlt → SCHEDOP_block), a PV one by the SCHEDOP_block hypercall
   * (xen_safe_halt) — on its own account, before the pCPU schedules.
   */
  private block(v: Vcpu): void {
    const d = v.domain;
    const t = this.env.trace;
    if (t.enabled(TP_SCHED_BLOCK)) t.emit(TP_SCHED_BLOCK, { vcpu: v.name, pcpu: this.id });
    if (d.isHvm) {
      d.counters.exits.hlt++;
      if (t.enabled(TP_VMEXIT)) t.emit(TP_VMEXIT, { domid: d.domid, vcpu: v.name, reason: 'hlt' });
      this.xen(this.costs.hltExit, d.cpuTime);
    } else {
      d.counters.pvTraps++;
      d.counters.hypercall('sched_op.block');
      this.xen(this.costs.pvBlock, d.cpuTime);
    }
  }

  private schedule(): void {
    const prev = this.curr;
    const { next, slice } = this.policy.schedule(this);
    this.xen(this.costs.schedule, null);
    if (next !== prev) {
      // Switching to or from the idle vCPU is lazy (context_switch skips __context_switch).
      if (prev === null || next === null) this.xen(this.costs.idleSwitch, null);
      if (prev !== null) {
        prev.pcpu = null;
        prev.setRunstate(prev.inRunq ? 'runnable' : prev.pauseCount > 0 ? 'offline' : 'blocked');
      }
      this.curr = next;
      this.runStart = this.env.now;
      if (next !== null) {
        if (next.inRunq) throw new Error(`scheduler chose ${next.name} while it is still queued (model bug)`);
        next.pcpu = this;
        next.processor = this;
        next.setRunstate('running');
        // An EPT invalidation left pending for this pCPU is done before the vCPU enters.
        if (this.inveptPending.delete(next.domain)) this.xen(this.costs.invept, next.domain.cpuTime);
        // Xen switches state lazily: after idle, the previous vCPU's state is still loaded.
        if (this.loaded !== next) {
          this.xen(this.costs.vcpuSwitch, null);
          this.loaded = next;
          this.switches++;
        }
      }
      if (this.env.trace.enabled(TP_SCHED_SWITCH)) {
        const reason = prev === null ? 'idle' : !prev.runnable ? 'block' : prev.csched.migrating ? 'migrate' : 'preempt';
        this.env.trace.emit(TP_SCHED_SWITCH, { pcpu: this.id, from: prev?.name ?? null, to: next?.name ?? null, reason });
      }
    }
    this.sliceEnd = next !== null ? this.env.now + slice : Infinity;
    this.demand = null;
    if (prev !== null && next !== prev) this.policy.descheduled(this, prev);
    // Entering the guest re-checks evtchn_upcall_pending (vmx_intr_assist; PV test_all_events).
    if (next !== null && next !== prev) this.onEnter(next);
  }
}
