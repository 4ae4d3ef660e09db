import { Deque } from './deque.js';
import { SimEvent, type Kernel } from './event.js';

/**
 * A FIFO of items with a capacity (SimPy's Store): `put` waits while full, `get` waits while
 * empty. `tryPut`/`tryGet` are the non-waiting forms for code that drops or polls instead.
 */
export class Store<T> {
  private readonly items = new Deque<T>();
  private readonly getters = new Deque<SimEvent<T>>();
  private readonly putters = new Deque<{ ev: SimEvent<void>; item: T }>();

  constructor(
    readonly env: Kernel,
    readonly capacity = Infinity,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`store capacity ${capacity} must be at least 1`);
  }

  get length(): number {
    return this.items.length;
  }

  get full(): boolean {
    return this.items.length >= this.capacity;
  }

  put(item: T): SimEvent<void> {
    const ev = new SimEvent<void>(this.env);
    if (this.tryPut(item)) ev.succeed();
    else this.putters.push({ ev, item });
    return ev;
  }

  /** Adds the item if there is room (or a getter waiting); false when full. */
  tryPut(item: T): boolean {
    const g = this.getters.shift();
    if (g !== undefined) {
      g.succeed(item);
      return true;
    }
    if (this.items.length >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  get(): SimEvent<T> {
    const ev = new SimEvent<T>(this.env);
    if (this.items.length > 0) {
      ev.succeed(this.items.shift());
      this.admitPutter();
    } else {
      this.getters.push(ev);
    }
    return ev;
  }

  /** Takes the next item if there is one. */
  tryGet(): T | undefined {
    if (this.items.length === 0) return undefined;
    const item = this.items.shift();
    this.admitPutter();
    return item;
  }

  /** Withdraws a waiting get (e.g. its process was interrupted); false if it already got an item. */
  cancelGet(ev: SimEvent<T>): boolean {
    return this.getters.remove(ev);
  }

  private admitPutter(): void {
    const p = this.putters.shift();
    if (p === undefined) return;
    this.items.push(p.item);
    p.ev.succeed();
  }
}
