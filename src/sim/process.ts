import { URGENT } from './event-queue.js';
import { Interrupt, SimEvent, type Callback, type Kernel } from './event.js';

/**
 * A process body: a generator that yields events and is resumed with each event's value
 * (or has the event's error thrown at the yield). Compose with `yield*`.
 */
export type ProcessGenerator<R = unknown> = Generator<SimEvent<unknown>, R, unknown>;

/** Waits for `ev` and returns its value, typed: `const v = yield* wait(ev)`. */
export function* wait<T>(ev: SimEvent<T>): Generator<SimEvent<T>, T, unknown> {
  return (yield ev) as T;
}

/** The part of the environment a process needs besides scheduling. */
export interface ProcessKernel extends Kernel {
  active: Process<unknown> | null;
}

/**
 * A running generator (SimPy's Process). It is itself an event that succeeds with the
 * generator's return value, or fails with the error the generator threw, so processes can
 * wait for each other.
 */
export class Process<R = unknown> extends SimEvent<R> {
  private target: SimEvent<unknown> | null;
  private readonly resumeCb: Callback;

  constructor(
    private readonly kernel: ProcessKernel,
    private readonly gen: ProcessGenerator<R>,
    readonly name = 'process',
  ) {
    super(kernel);
    this.resumeCb = (ev) => this.resume(ev);
    // The first resumption happens at the current instant, ahead of normal events (SimPy).
    const init = new SimEvent(kernel);
    init._preset(true, undefined);
    init.addCallback(this.resumeCb);
    kernel.schedule(init, 0, URGENT, 0);
    this.target = init;
  }

  get isAlive(): boolean {
    return !this.triggered;
  }

  /** The event the process is waiting for, if any. */
  get waitingFor(): SimEvent<unknown> | null {
    return this.target;
  }

  /**
   * Throws an `Interrupt(cause)` into the process at its current yield, at the current
   * instant. The event it was waiting for stays as it was (it may still be waited on later).
   */
  interrupt(cause?: unknown): void {
    if (this.triggered) throw new Error(`cannot interrupt ${this.name}: it has finished`);
    if (this.kernel.active === this) throw new Error(`${this.name} cannot interrupt itself`);
    const ev = new SimEvent(this.kernel);
    ev._preset(false, new Interrupt(cause));
    ev.defuse();
    ev.addCallback((e) => {
      if (this.triggered) return;
      if (this.target !== null) this.target.removeCallback(this.resumeCb);
      this.resume(e);
    });
    this.kernel.schedule(ev, 0, URGENT, 0);
  }

  private resume(ev: SimEvent<unknown>): void {
    const kernel = this.kernel;
    const previous = kernel.active;
    kernel.active = this;
    let e = ev;
    for (;;) {
      let r: IteratorResult<SimEvent<unknown>, R>;
      try {
        if (e._ok) {
          r = this.gen.next(e._value);
        } else {
          e._defused = true;
          r = this.gen.throw(e._value);
        }
      } catch (err) {
        this.target = null;
        kernel.active = previous;
        this.fail(err);
        return;
      }
      if (r.done === true) {
        this.target = null;
        kernel.active = previous;
        this.succeed(r.value);
        return;
      }
      const next = r.value;
      if (!(next instanceof SimEvent)) {
        const bad = new SimEvent(kernel);
        bad._preset(false, new TypeError(`${this.name} yielded ${String(next)}, which is not an event`));
        e = bad;
        continue;
      }
      if (next.env !== kernel) {
        const bad = new SimEvent(kernel);
        bad._preset(false, new Error(`${this.name} yielded an event of another environment`));
        e = bad;
        continue;
      }
      if (next.processed) {
        e = next;
        continue;
      }
      next.addCallback(this.resumeCb);
      this.target = next;
      break;
    }
    kernel.active = previous;
  }
}
