import { NORMAL, type Schedulable } from './event-queue.js';
import type { Kernel } from './event.js';
import { isTime, type Time } from './time.js';

/**
 * A re-armable, cancellable callback timer, as Linux's `mod_timer`/`del_timer`: the cheap
 * way to keep a deadline that moves often (a TCP retransmission timer is re-armed on every
 * ACK). Cancelling is O(1) and so is pushing the deadline later: the queued entry stays and,
 * when its time comes, either fires, re-queues itself at the new deadline, or is dropped.
 * Only moving the deadline earlier than the queued entry queues a new one.
 */
export class Timer implements Schedulable {
  private expires = -1; // deadline, or -1 when not armed
  private queuedAt = -1; // time of the live queue entry, or -1
  private generation = 0; // tags the live queue entry; older entries are stale

  constructor(
    private readonly kernel: Kernel,
    private readonly callback: () => void,
    private readonly priority: number = NORMAL,
  ) {}

  get armed(): boolean {
    return this.expires >= 0;
  }

  /** The deadline, or undefined when not armed. */
  get deadline(): Time | undefined {
    return this.expires >= 0 ? this.expires : undefined;
  }

  /** Arms (or re-arms) the timer to fire at absolute time `at` (not before now). */
  setAt(at: Time): void {
    const now = this.kernel.now;
    if (!isTime(at) || at < now) throw new RangeError(`timer deadline ${at} is not a time at or after now (${now})`);
    this.expires = at;
    if (this.queuedAt >= 0 && this.queuedAt <= at) return; // the queued entry will re-queue itself
    this.generation++;
    this.queuedAt = at;
    this.kernel.schedule(this, at - now, this.priority, this.generation);
  }

  /** Arms (or re-arms) the timer to fire `delay` ns from now. */
  setIn(delay: Time): void {
    this.setAt(this.kernel.now + delay);
  }

  cancel(): void {
    this.expires = -1;
  }

  /** @internal */
  fire(tag: number): void {
    if (tag !== this.generation) return; // superseded by an earlier re-arm
    this.queuedAt = -1;
    if (this.expires < 0) return; // cancelled
    const now = this.kernel.now;
    if (this.expires > now) {
      this.generation++;
      this.queuedAt = this.expires;
      this.kernel.schedule(this, this.expires - now, this.priority, this.generation);
      return;
    }
    this.expires = -1;
    this.callback();
  }
}
