import { AllOf, AnyOf, type AnyOfResult } from './condition.js';
import { EventQueue, NORMAL, type Schedulable } from './event-queue.js';
import { SimEvent, Timeout, type Kernel } from './event.js';
import { Process, type ProcessGenerator, type ProcessKernel } from './process.js';
import { Rng } from './rng.js';
import { Timer } from './timer.js';
import { TraceBus } from './trace.js';
import { isTime, type Time } from './time.js';

/**
 * What mechanism code may use of its environment: the clock, waiting, spawning, timers,
 * randomness and tracing. Mechanisms depend on this interface only, so the same code can one
 * day run on a real-time environment instead of the simulator (DESIGN.md, "Later").
 */
export interface Env extends Kernel {
  /** Current time, integer nanoseconds. */
  readonly now: Time;
  readonly rng: Rng;
  readonly trace: TraceBus;
  /** A pending event, triggered by whoever holds it. */
  event<T = unknown>(): SimEvent<T>;
  /** An event that succeeds `delay` ns from now. */
  timeout<T = undefined>(delay: Time, value?: T): SimEvent<T>;
  process<R>(body: ProcessGenerator<R>, name?: string): Process<R>;
  allOf(events: readonly SimEvent<unknown>[]): SimEvent<unknown[]>;
  anyOf(events: readonly SimEvent<unknown>[]): SimEvent<AnyOfResult>;
  /** A re-armable callback timer; `priority` orders it among same-instant events. */
  timer(callback: () => void, priority?: number): Timer;
  /** The process being resumed right now, if any. */
  readonly active: Process<unknown> | null;
}

export interface RunOptions {
  /** Stop before processing anything later than this time, and set the clock to it. */
  until?: Time | SimEvent<unknown>;
}

/** The discrete-event simulator: a future event list ordered by (time, priority, sequence). */
export class SimEnvironment implements Env, ProcessKernel {
  private _now: Time = 0;
  private readonly queue = new EventQueue();
  private running = false;
  private _fired = 0;
  active: Process<unknown> | null = null;
  readonly rng: Rng;
  readonly trace: TraceBus;

  constructor(options: { seed?: number | string; start?: Time } = {}) {
    this.rng = new Rng(options.seed ?? 0);
    this.trace = new TraceBus(this);
    if (options.start !== undefined) {
      if (!isTime(options.start)) throw new RangeError(`start time ${options.start} is not a time`);
      this._now = options.start;
      this.queue.laneTime = options.start;
    }
  }

  get now(): Time {
    return this._now;
  }

  /** Entries fired so far (events, timers, process steps): the kernel's unit of work. */
  get eventsFired(): number {
    return this._fired;
  }

  /** Entries still in the future event list (stale timer entries included). */
  get pending(): number {
    return this.queue.size;
  }

  /** Time of the next entry, or Infinity. */
  peek(): number {
    return this.queue.peekTime();
  }

  schedule(item: Schedulable, delay: Time, priority: number, tag: number): void {
    if (!(delay >= 0) || !Number.isSafeInteger(delay)) {
      throw new RangeError(`delay ${delay} is not a non-negative integer number of nanoseconds`);
    }
    const at = this._now + delay;
    if (!Number.isSafeInteger(at)) throw new RangeError(`time ${at} is beyond the exact range of the clock`);
    this.queue.push(at, priority, item, tag);
  }

  event<T = unknown>(): SimEvent<T> {
    return new SimEvent<T>(this);
  }

  timeout<T = undefined>(delay: Time, value?: T): SimEvent<T> {
    return new Timeout<T>(this, delay, value);
  }

  process<R>(body: ProcessGenerator<R>, name?: string): Process<R> {
    return new Process<R>(this, body, name);
  }

  allOf(events: readonly SimEvent<unknown>[]): SimEvent<unknown[]> {
    return new AllOf(this, events);
  }

  anyOf(events: readonly SimEvent<unknown>[]): SimEvent<AnyOfResult> {
    return new AnyOf(this, events);
  }

  timer(callback: () => void, priority: number = NORMAL): Timer {
    return new Timer(this, callback, priority);
  }

  /** Processes the next entry; false when there is none. */
  step(): boolean {
    const q = this.queue;
    if (!q.pop()) return false;
    this._now = q.poppedTime;
    this._fired++;
    q.poppedItem!.fire(q.poppedTag);
    return true;
  }

  /**
   * Runs until the event list is empty, or until a time or an event. An error thrown by a
   * callback, or an event that failed with nobody to handle it, propagates out of run().
   */
  run(options: RunOptions = {}): void {
    if (this.running) throw new Error('SimEnvironment.run() is not re-entrant');
    const until = options.until;
    let stopAt = Infinity;
    let stopEvent: SimEvent<unknown> | null = null;
    if (typeof until === 'number') {
      if (!isTime(until) || until < this._now) throw new RangeError(`until=${until} is not a time at or after now (${this._now})`);
      stopAt = until;
    } else if (until !== undefined) {
      stopEvent = until;
      if (stopEvent.processed) return;
    }
    this.running = true;
    const q = this.queue;
    try {
      while (q.size > 0 && q.peekTime() <= stopAt) {
        q.pop();
        this._now = q.poppedTime;
        this._fired++;
        q.poppedItem!.fire(q.poppedTag);
        if (stopEvent !== null && stopEvent.processed) break;
      }
      if (stopAt !== Infinity && this._now < stopAt) this._now = stopAt;
    } finally {
      this.running = false;
    }
  }
}
