import { SimEvent, type Callback, type Kernel } from './event.js';

/**
 * Waits for several events at once (SimPy's Condition). The first failure among the
 * events fails the condition with that error. Events already processed count at once.
 */
abstract class Condition<T> extends SimEvent<T> {
  protected readonly values: unknown[];
  protected done = 0;
  /** Index of the first event that succeeded (fields of subclasses are not yet set while
   *  this constructor scans events that were already processed, so it lives here). */
  protected first = -1;
  private readonly check: Callback;

  constructor(
    env: Kernel,
    protected readonly events: readonly SimEvent<unknown>[],
  ) {
    super(env);
    this.values = new Array<unknown>(events.length);
    this.check = (ev) => this.onEvent(ev);
    for (const ev of events) {
      if (ev.env !== env) throw new Error('condition over events of another environment');
    }
    for (let i = 0; i < events.length && !this.triggered; i++) {
      const ev = events[i]!;
      if (ev.processed) this.onEvent(ev);
      else ev.addCallback(this.check);
    }
    if (!this.triggered && this.settled()) this.finish();
  }

  protected abstract settled(): boolean;
  protected abstract result(): T;

  private onEvent(ev: SimEvent<unknown>): void {
    if (this.triggered) return;
    const i = this.events.indexOf(ev);
    if (!ev._ok) {
      ev._defused = true;
      this.detach();
      this.fail(ev._value);
      return;
    }
    this.values[i] = ev._value;
    this.done++;
    if (this.first < 0) this.first = i;
    if (this.settled()) this.finish();
  }

  private finish(): void {
    this.detach();
    this.succeed(this.result());
  }

  private detach(): void {
    for (const ev of this.events) if (!ev.processed) ev.removeCallback(this.check);
  }
}

/** Succeeds when every event has succeeded, with their values in the given order. */
export class AllOf extends Condition<unknown[]> {
  protected settled(): boolean {
    return this.done === this.events.length;
  }
  protected result(): unknown[] {
    return this.values;
  }
}

export interface AnyOfResult {
  /** Index (in the given list) of the first event processed. */
  index: number;
  value: unknown;
}

/**
 * Succeeds when any event has succeeded, with the first one's index and value. Over an
 * empty list it succeeds at once with index -1.
 */
export class AnyOf extends Condition<AnyOfResult> {
  protected settled(): boolean {
    return this.done > 0 || this.events.length === 0;
  }
  protected result(): AnyOfResult {
    return { index: this.first, value: this.first >= 0 ? this.values[this.first] : undefined };
  }
}
