import { NORMAL, type Schedulable } from './event-queue.js';
import type { Time } from './time.js';

/** What events need from the environment that owns them. */
export interface Kernel {
  readonly now: Time;
  /** Puts `item` in the future event list `delay` ns from now. */
  schedule(item: Schedulable, delay: Time, priority: number, tag: number): void;
}

export type Callback = (ev: SimEvent<unknown>) => void;

const PENDING = 0;
const TRIGGERED = 1;
const PROCESSED = 2;

/**
 * An event in virtual time (SimPy's Event): pending until it is triggered with a value
 * (succeed) or an error (fail), then processed by the kernel, which runs its callbacks.
 * Processes wait on events by yielding them. A failed event that nobody handled makes
 * `run()` throw: errors in the model fail loudly.
 */
export class SimEvent<T = unknown> implements Schedulable {
  /** @internal */ _state = PENDING;
  /** @internal */ _ok = true;
  /** @internal */ _value: unknown = undefined;
  /** @internal */ _defused = false;
  // One callback is the common case (a waiting process); more go to the array.
  private cb0: Callback | null = null;
  private cbs: Callback[] | null = null;

  constructor(readonly env: Kernel) {}

  get triggered(): boolean {
    return this._state !== PENDING;
  }

  get processed(): boolean {
    return this._state === PROCESSED;
  }

  /** True once triggered with success; false while pending or if failed. */
  get ok(): boolean {
    return this._state !== PENDING && this._ok;
  }

  /** The value it succeeded with; throws if still pending or if it failed (with its error). */
  get value(): T {
    if (this._state === PENDING) throw new Error('value of a pending event');
    if (!this._ok) throw this._value;
    return this._value as T;
  }

  /** The error it failed with, or undefined. */
  get error(): unknown {
    return this._state !== PENDING && !this._ok ? this._value : undefined;
  }

  /** Triggers the event with a value; it is processed `delay` ns from now (default now). */
  succeed(value?: T, delay: Time = 0, priority: number = NORMAL): this {
    if (this._state !== PENDING) throw new Error('event already triggered');
    this._ok = true;
    this._value = value;
    this._state = TRIGGERED;
    this.env.schedule(this, delay, priority, 0);
    return this;
  }

  /** Triggers the event with an error; waiting processes get it thrown at their yield. */
  fail(error: unknown, delay: Time = 0, priority: number = NORMAL): this {
    if (this._state !== PENDING) throw new Error('event already triggered');
    this._ok = false;
    this._value = error;
    this._state = TRIGGERED;
    this.env.schedule(this, delay, priority, 0);
    return this;
  }

  /** Marks a failure as handled, so that processing it does not stop the run. */
  defuse(): this {
    this._defused = true;
    return this;
  }

  /** Runs `cb` when the event is processed. */
  addCallback(cb: Callback): void {
    if (this._state === PROCESSED) throw new Error('callback added to a processed event');
    if (this.cb0 === null && this.cbs === null) this.cb0 = cb;
    else (this.cbs ??= []).push(cb);
  }

  removeCallback(cb: Callback): void {
    if (this.cb0 === cb) {
      this.cb0 = null;
      return;
    }
    if (this.cbs !== null) {
      const i = this.cbs.indexOf(cb);
      if (i >= 0) this.cbs.splice(i, 1);
    }
  }

  /** @internal Called by the kernel when the event's time comes. */
  fire(_tag: number): void {
    this._state = PROCESSED;
    const c0 = this.cb0;
    const cs = this.cbs;
    this.cb0 = null;
    this.cbs = null;
    if (c0 !== null) c0(this);
    if (cs !== null) for (let i = 0; i < cs.length; i++) cs[i]!(this);
    if (!this._ok && !this._defused) throw this._value;
  }

  /** @internal Marks the event triggered without scheduling it (the caller schedules). */
  _preset(ok: boolean, value: unknown): void {
    this._ok = ok;
    this._value = value;
    this._state = TRIGGERED;
  }
}

/** An event that triggers itself `delay` ns after its creation. */
export class Timeout<T = undefined> extends SimEvent<T> {
  constructor(env: Kernel, delay: Time, value?: T, priority: number = NORMAL) {
    super(env);
    this._preset(true, value);
    env.schedule(this, delay, priority, 0);
  }
}

/** Thrown into a process at its current yield by `Process.interrupt`. */
export class Interrupt extends Error {
  constructor(override readonly cause: unknown) {
    super(`interrupted${cause === undefined ? '' : `: ${describe(cause)}`}`);
    this.name = 'Interrupt';
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  if (typeof cause === 'object' && cause !== null) return JSON.stringify(cause) ?? 'object';
  return String(cause);
}
