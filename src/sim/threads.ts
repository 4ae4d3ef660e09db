import { SimEvent, type Kernel } from './event.js';
import type { Time } from './time.js';
import type { ExecContext, Executor } from './work.js';

/** What scheduling threads on one CPU costs (from the profile; the caller reads it). */
export interface ThreadCosts {
  /** Switching the CPU from one thread to another (context_switch: registers, mm, stack). */
  contextSwitch: Time;
  /** Making a sleeping thread runnable and getting it onto the CPU (try_to_wake_up, enqueue). */
  wakeup: Time;
}

/**
 * One kernel CPU's threads (a guest's vCPU, or a plain CPU): which thread ran last, so that
 * switching to another costs a context switch, and what waking one costs. The threads' work
 * items go to the CPU's executor in turn, at kernel priority: the executor's FIFO per level
 * stands for the kernel's run queue (an approximation of CFS, as for ksoftirqd: threads
 * alternate item by item).
 */
export class ThreadCpu {
  /** The thread whose work ran last here (null: none yet). */
  last: KernelThread | null = null;
  switches = 0;
  constructor(
    readonly cpu: Executor,
    readonly costs: ThreadCosts,
  ) {}
}

/**
 * A kernel thread (kthread_run): a process that runs its work on one CPU as `ctx` work (default
 * 'kthread') and sleeps until woken (wait_event_interruptible around `sleep`). A wake-up that
 * arrives while it runs is not lost: its next `sleep` returns at once, as a thread that
 * rechecks its condition before schedule() does.
 */
export class KernelThread {
  private waiter: SimEvent<void> | null = null;
  private woken = false;
  /** Pay the wake-up with the next item of work. */
  private wakeDue = false;
  wakeups = 0;

  constructor(
    private readonly env: Kernel,
    readonly name: string,
    public cpu: ThreadCpu,
    readonly ctx: ExecContext = 'kthread',
  ) {}

  /** Runs `ns` of this thread's work; a switch from another thread (and a pending wake-up) is paid first. */
  exec(ns: Time): SimEvent<void> {
    const c = this.cpu;
    let t = ns;
    if (this.wakeDue) {
      this.wakeDue = false;
      t += c.costs.wakeup;
    }
    if (c.last !== this) {
      if (c.last !== null) {
        t += c.costs.contextSwitch;
        c.switches++;
      }
      c.last = this;
    }
    return c.cpu.exec(t, this.ctx);
  }

  /** Sleeps until `wake` (null: a wake-up came since the last sleep; go on at once). */
  sleep(): SimEvent<void> | null {
    if (this.woken) {
      this.woken = false;
      return null;
    }
    if (this.waiter === null) this.waiter = new SimEvent<void>(this.env);
    return this.waiter;
  }

  get sleeping(): boolean {
    return this.waiter !== null;
  }

  /** wake_up_process: the thread runs again (its next work pays the wake-up). */
  wake(): void {
    const w = this.waiter;
    if (w === null) {
      this.woken = true;
      return;
    }
    this.waiter = null;
    this.wakeups++;
    this.wakeDue = true;
    w.succeed();
  }
}
