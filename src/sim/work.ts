import { Deque } from './deque.js';
import { SimEvent, type Kernel } from './event.js';
import { Timer } from './timer.js';
import type { Time } from './time.js';

/**
 * Where a piece of CPU work runs, for accounting (DESIGN.md "Accounting") and for preemption
 * inside one CPU: 'user' application code; 'kernel' system calls and kernel processing in
 * process context; 'softirq' network receive processing; 'irq' interrupt handlers; 'xen' the
 * hypervisor working on behalf of the CPU's owner; 'kthread' a kernel thread (netback);
 * 'qemu' the device-model process.
 */
export type ExecContext = 'user' | 'kernel' | 'softirq' | 'irq' | 'xen' | 'kthread' | 'qemu';

export const EXEC_CONTEXTS: readonly ExecContext[] = ['user', 'kernel', 'softirq', 'irq', 'xen', 'kthread', 'qemu'];

/** Preemption levels inside one CPU: higher preempts lower; equal levels run in order. */
export const PRIO_TASK = 0;
export const PRIO_KERNEL = 1;
export const PRIO_SOFTIRQ = 2;
export const PRIO_IRQ = 3;
const LEVELS = 4;

export function defaultPriority(ctx: ExecContext): number {
  switch (ctx) {
    case 'user':
    case 'qemu':
      return PRIO_TASK;
    case 'kernel':
    case 'kthread':
    case 'xen':
      return PRIO_KERNEL;
    case 'softirq':
      return PRIO_SOFTIRQ;
    case 'irq':
      return PRIO_IRQ;
  }
}

/**
 * Something that runs work and takes time doing it: a guest vCPU scheduled by Xen, or a
 * simple dedicated CPU. `exec` returns an event that succeeds when `ns` of CPU time have been
 * given to the work, which may be later than now + ns if the CPU is busy or descheduled.
 */
export interface Executor {
  exec(ns: Time, ctx: ExecContext, priority?: number): SimEvent<void>;
}

/** One piece of work waiting for or receiving CPU time; succeeds when done. */
export class Work extends SimEvent<void> {
  constructor(
    env: Kernel,
    public remaining: Time,
    readonly ctx: ExecContext,
    readonly priority: number,
  ) {
    super(env);
  }
}

export function checkWork(ns: Time, priority: number): void {
  if (!Number.isSafeInteger(ns) || ns < 0) throw new RangeError(`work of ${ns} ns is not a non-negative integer`);
  if (!Number.isInteger(priority) || priority < 0 || priority >= LEVELS) throw new RangeError(`work priority ${priority} is not 0..${LEVELS - 1}`);
}

/** Pending work of one CPU by priority level, FIFO within a level. */
export class WorkQueue {
  private readonly levels: Deque<Work>[] = Array.from({ length: LEVELS }, () => new Deque<Work>());
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(w: Work): void {
    this.levels[w.priority]!.push(w);
    this.count++;
  }

  /** The work that should run now: the oldest of the highest non-empty level. */
  top(): Work | undefined {
    if (this.count === 0) return undefined;
    for (let l = LEVELS - 1; l >= 0; l--) {
      const w = this.levels[l]!.peek();
      if (w !== undefined) return w;
    }
    return undefined;
  }

  /** Takes every pending work item out, highest level first, FIFO within a level. */
  drain(): Work[] {
    const out: Work[] = [];
    for (let l = LEVELS - 1; l >= 0; l--) for (let w = this.levels[l]!.shift(); w !== undefined; w = this.levels[l]!.shift()) out.push(w);
    this.count = 0;
    return out;
  }

  /** Removes `w`, which must be the head of its level (the work that just ran). */
  removeHead(w: Work): void {
    const removed = this.levels[w.priority]!.shift();
    if (removed !== w) throw new Error('WorkQueue.removeHead: work is not at the head of its level');
    this.count--;
  }
}

/**
 * A dedicated CPU with preemptive priorities and nothing above it: what a guest stack runs on
 * when no hypervisor is modelled (direct links, unit tests). Time used is kept per context.
 */
export class SimpleCpu implements Executor {
  private readonly queue = new WorkQueue();
  private current: Work | null = null;
  private startedAt: Time = 0;
  private readonly timer: Timer;
  /** CPU time given to each context so far, ns. */
  readonly busy: Record<ExecContext, number> = { user: 0, kernel: 0, softirq: 0, irq: 0, xen: 0, kthread: 0, qemu: 0 };

  constructor(
    private readonly env: Kernel,
    readonly name = 'cpu',
  ) {
    this.timer = new Timer(env, () => this.complete());
  }

  exec(ns: Time, ctx: ExecContext, priority: number = defaultPriority(ctx)): SimEvent<void> {
    checkWork(ns, priority);
    const w = new Work(this.env, ns, ctx, priority);
    this.queue.push(w);
    if (this.current === null) this.start();
    else if (priority > this.current.priority) {
      this.settle();
      this.start();
    }
    return w;
  }

  /** Total busy time, ns. */
  get busyTotal(): number {
    let t = 0;
    for (const c of Object.values(this.busy)) t += c;
    return t;
  }

  private settle(): void {
    const cur = this.current!;
    const elapsed = this.env.now - this.startedAt;
    cur.remaining -= elapsed;
    this.busy[cur.ctx] += elapsed;
    this.startedAt = this.env.now;
  }

  private start(): void {
    const w = this.queue.top();
    this.current = w ?? null;
    if (w === undefined) return;
    this.startedAt = this.env.now;
    this.timer.setAt(this.env.now + w.remaining);
  }

  private complete(): void {
    this.settle();
    const w = this.current!;
    this.queue.removeHead(w);
    this.current = null;
    w.succeed();
    this.start();
  }
}
