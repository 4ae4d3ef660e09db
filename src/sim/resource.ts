import { Deque } from './deque.js';
import { SimEvent, type Kernel } from './event.js';

/** A claim on a Resource: succeeds when granted. Release it, or cancel it while queued. */
export class Request extends SimEvent<void> {
  granted = false;
  constructor(private readonly resource: Resource) {
    super(resource.env);
  }
  /** Gives the slot back (if granted) or leaves the queue (if waiting). */
  release(): void {
    this.resource.release(this);
  }
}

/**
 * `capacity` identical servers (SimPy's Resource): modelled hardware that serves one user per
 * slot, with waiters served first come, first served.
 */
export class Resource {
  private readonly waiting = new Deque<Request>();
  private inUse = 0;

  constructor(
    readonly env: Kernel,
    readonly capacity = 1,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`resource capacity ${capacity} must be a positive integer`);
  }

  get count(): number {
    return this.inUse;
  }

  get queueLength(): number {
    return this.waiting.length;
  }

  request(): Request {
    const req = new Request(this);
    if (this.inUse < this.capacity) this.grant(req);
    else this.waiting.push(req);
    return req;
  }

  release(req: Request): void {
    if (!req.granted) {
      this.waiting.remove(req);
      return;
    }
    req.granted = false;
    this.inUse--;
    const next = this.waiting.shift();
    if (next !== undefined) this.grant(next);
  }

  private grant(req: Request): void {
    req.granted = true;
    this.inUse++;
    req.succeed();
  }
}
