import { LATE, type Env, type Timer, type Time, type Work } from '../sim/index.js';
import type { CpuAccounting } from './accounting.js';
import { TP_SCHED_BLOCK, TP_SCHED_SWITCH } from './trace-points.js';
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

  private sliceEnd = Infinity;
  private settledAt: Time;
  private overhead = 0;
  /** Xen's own work for physical interrupts taken here and not yet done, ns (ahead of everything else). */
  private irqWork = 0;
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
    if (this.irqWork > 0) {
      const o = t < this.irqWork ? t : this.irqWork;
      this.irqWork -= o;
      this.acct.xenOwn[this.id] = this.acct.xenOwn[this.id]! + o;
      t -= o;
    }
    if (v === null) {
      this.acct.idle[this.id] = this.acct.idle[this.id]! + t;
      return;
    }
    if (t > 0 && this.overhead > 0) {
      const o = t < this.overhead ? t : this.overhead;
      this.overhead -= o;
      this.acct.xenOwn[this.id] = this.acct.xenOwn[this.id]! + o;
      t -= o;
    }
    if (t > 0) {
      const w = this.demand;
      if (w === null) throw new Error(`pCPU${this.id}: ${t} ns passed running ${v.name} with no work (model bug)`);
      w.remaining -= t;
      this.acct.charge(this.id, v.domain.cpuTime, w.ctx, t);
    }
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
    this.irqWork += ns;
    if (this.curr !== null) this.dispatch();
    return this.env.now + this.irqWork;
  }

  /**
   * Asks for a scheduling decision on this pCPU (a tickle); idle pCPUs take `idleWake` to
   * respond. A tickle from Xen code on another pCPU (`from`) travels as an IPI.
   */
  tickle(from: Pcpu | null = null): void {
    this.needResched = true;
    const ipi = from !== null && from !== this ? this.costs.ipiLatency : 0;
    this.raiseSoftirq(this.env.now + ipi + (this.curr === null ? this.costs.idleWake : 0));
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

  /** Arms the next decision point: the end of the overhead, of the current work, or of the slice. */
  private dispatch(): void {
    const v = this.curr;
    const now = this.env.now;
    if (v === null) {
      this.demand = null;
      this.decision.cancel();
      return;
    }
    if (this.overhead > 0 || this.irqWork > 0) {
      this.demand = null;
      this.decision.setAt(now + this.irqWork + this.overhead);
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
      if (v.work.length === 0 && this.env.trace.enabled(TP_SCHED_BLOCK)) this.env.trace.emit(TP_SCHED_BLOCK, { vcpu: v.name, pcpu: this.id });
      this.needResched = true;
    }
    if (this.needResched) {
      this.needResched = false;
      this.schedule();
    }
    this.dispatch();
  }

  private schedule(): void {
    const prev = this.curr;
    const { next, slice } = this.policy.schedule(this);
    if (next !== prev) {
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
        // Xen switches state lazily: after idle, the previous vCPU's state is still loaded.
        if (this.loaded !== next) {
          this.overhead = this.costs.vcpuSwitch;
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
  }
}
