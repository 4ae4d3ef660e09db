import { checkWork, defaultPriority, Work, type Env, type ExecContext, type Executor, type SimEvent, type Time } from '../sim/index.js';
import { WorkQueue } from '../sim/index.js';
import type { Domain } from './domain.js';
import type { Pcpu } from './pcpu.js';
import { CreditVcpu } from './sched-credit.js';

/** Xen's vCPU runstates (public/vcpu.h RUNSTATE_*). */
export type Runstate = 'running' | 'runnable' | 'blocked' | 'offline';

/** What a vCPU needs from the hypervisor when it becomes runnable. */
export interface VcpuHost {
  readonly env: Env;
  /** The host's tag, '' for a lone host. */
  readonly tag: string;
  /** `from`: the pCPU whose Xen code made the vCPU runnable, if any (the tickle is then an IPI). */
  wake(v: Vcpu, from?: Pcpu | null): void;
}

/**
 * A virtual CPU: an Executor whose work runs only while Xen's scheduler has it on a pCPU.
 * Work items queue by preemption level (interrupt work preempts kernel work preempts user
 * work inside the guest). A vCPU with no work left at the end of an instant blocks, as a
 * guest's idle loop does with SCHEDOP_block; new work wakes it.
 */
export class Vcpu implements Executor {
  readonly name: string;
  readonly work = new WorkQueue();
  /** The pCPU it is running on, if any. */
  pcpu: Pcpu | null = null;
  /** The pCPU whose run queue holds it, or where it last ran (Xen's v->processor). */
  processor: Pcpu;
  inRunq = false;
  pauseCount = 0;
  /** Blocked in Xen by SCHEDOP_poll: descheduled without the idle loop's HLT or SCHEDOP_block. */
  polling = false;
  /** Hard affinity: the pCPUs it may run on, by pCPU id. */
  readonly affine: readonly boolean[];
  readonly affinity: readonly number[];
  readonly csched = new CreditVcpu();
  runstate: Runstate = 'blocked';
  private runstateSince: Time;
  /** Time spent in each runstate, ns (as xentop's VCPU statistics). */
  readonly runstateNs: Record<Runstate, number> = { running: 0, runnable: 0, blocked: 0, offline: 0 };
  wakeups = 0;

  constructor(
    private readonly host: VcpuHost,
    readonly domain: Domain,
    readonly id: number,
    affinity: readonly number[],
    npcpus: number,
    processor: Pcpu,
  ) {
    this.name = host.tag === '' ? `d${domain.domid}v${id}` : `${host.tag}:d${domain.domid}v${id}`;
    this.affinity = affinity;
    this.affine = Array.from({ length: npcpus }, (_, i) => affinity.includes(i));
    this.processor = processor;
    this.runstateSince = host.env.now;
  }

  /** Runnable in Xen's sense: not paused and not blocked (it has work). */
  get runnable(): boolean {
    return this.pauseCount === 0 && this.work.length > 0;
  }

  /**
   * Queues work on this vCPU. `from` is the pCPU whose Xen code queues it (an event raised
   * there): if the vCPU is blocked, its wake-up reaches another pCPU by IPI.
   */
  exec(ns: Time, ctx: ExecContext, priority: number = defaultPriority(ctx), from: Pcpu | null = null): SimEvent<void> {
    checkWork(ns, priority);
    const w = new Work(this.host.env, ns, ctx, priority);
    if (ns === 0) return w.succeed();
    this.work.push(w);
    if (this.pcpu !== null) this.pcpu.workArrived(w);
    else if (!this.inRunq && this.pauseCount === 0) this.host.wake(this, from);
    return w;
  }

  setRunstate(s: Runstate): void {
    const now = this.host.env.now;
    this.runstateNs[this.runstate] += now - this.runstateSince;
    this.runstate = s;
    this.runstateSince = now;
  }

  /** Runstate times including the current state up to now. */
  runstateNow(): Record<Runstate, number> {
    const r = { ...this.runstateNs };
    r[this.runstate] += this.host.env.now - this.runstateSince;
    return r;
  }
}
