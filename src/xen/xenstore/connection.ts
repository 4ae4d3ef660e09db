import type { XsOperations, DirectoryPart } from './operations.js';
import type { XsPerm } from './permissions.js';
import type { XsResult } from './result.js';
import type { Transaction } from './transaction.js';
import { EventQueue, type Watch, type XsWatchEvent } from './watch.js';

const encoder = new TextEncoder();

/**
 * A client's connection to the XenStore: what xenstored keeps per ring or socket. Its methods
 * are the requests of xen-abi.md §1.2; each returns the value or the Xen error name a client
 * would receive, and never throws for a client mistake. `tx` is a transaction id from
 * transactionStart (0 or omitted: none).
 *
 * Watch events for this connection queue up in order; `onEvent` is told when one is queued and
 * `takeEvents()` takes them. WATCH's own first event is queued after its OK, as on the wire.
 */
export class XsConnection {
  /** Registered watches, in registration order. */
  readonly watches: Watch[] = [];
  /** Open transactions by id. */
  readonly transactions = new Map<number, Transaction>();
  readonly events: EventQueue;
  /** Called after an event is queued for this connection. */
  onEvent: ((conn: XsConnection) => void) | undefined;
  private nextTransactionId = 1;
  private _closed = false;

  constructor(
    private readonly ops: XsOperations,
    /** Store-wide connection number (for logs). */
    readonly id: number,
    readonly domid: number,
    /** dom0 and socket clients: all permissions, no quotas (xen-abi.md §1.6, §1.9). */
    readonly privileged: boolean,
    maxEventBytes: number,
  ) {
    this.events = new EventQueue(maxEventBytes);
  }

  get closed(): boolean {
    return this._closed;
  }

  /** The transport went away: watches, transactions and queued events are dropped. */
  close(): void {
    this.ops.close(this);
  }

  read(path: string, tx = 0): XsResult<Uint8Array> {
    return this.ops.read(this, path, tx);
  }

  /** A string value is written as its UTF-8 bytes. */
  write(path: string, value: Uint8Array | string, tx = 0): XsResult<void> {
    return this.ops.write(this, path, typeof value === 'string' ? encoder.encode(value) : value, tx);
  }

  mkdir(path: string, tx = 0): XsResult<void> {
    return this.ops.mkdir(this, path, tx);
  }

  rm(path: string, tx = 0): XsResult<void> {
    return this.ops.rm(this, path, tx);
  }

  directory(path: string, tx = 0): XsResult<string[]> {
    return this.ops.directory(this, path, tx);
  }

  directoryPart(path: string, offset: number, tx = 0): XsResult<DirectoryPart> {
    return this.ops.directoryPart(this, path, offset, tx);
  }

  getPerms(path: string, tx = 0): XsResult<XsPerm[]> {
    return this.ops.getPerms(this, path, tx);
  }

  /** `perms` in Xen's string form, owner first: `['n0', 'r5']`. */
  setPerms(path: string, perms: readonly string[], tx = 0): XsResult<void> {
    return this.ops.setPerms(this, path, perms, tx);
  }

  /** Tokens are byte strings: characters U+0001..U+00FF, one byte each on the wire. */
  watch(path: string, token: string): XsResult<void> {
    return this.ops.watch(this, path, token);
  }

  unwatch(path: string, token: string): XsResult<void> {
    return this.ops.unwatch(this, path, token);
  }

  resetWatches(): XsResult<void> {
    return this.ops.resetWatches(this);
  }

  transactionStart(): XsResult<number> {
    return this.ops.transactionStart(this);
  }

  transactionEnd(tx: number, commit: boolean): XsResult<void> {
    return this.ops.transactionEnd(this, tx, commit);
  }

  getDomainPath(domid: number): XsResult<string> {
    return this.ops.getDomainPath(this, domid);
  }

  introduce(domid: number, gfn: number, port: number): XsResult<void> {
    return this.ops.introduce(this, domid, gfn, port);
  }

  release(domid: number): XsResult<void> {
    return this.ops.release(this, domid);
  }

  resume(domid: number): XsResult<void> {
    return this.ops.resume(this, domid);
  }

  isDomainIntroduced(domid: number): XsResult<boolean> {
    return this.ops.isDomainIntroduced(this, domid);
  }

  setTarget(domid: number, target: number): XsResult<void> {
    return this.ops.setTarget(this, domid, target);
  }

  /** Takes (up to `max` of) the queued watch events, oldest first. */
  takeEvents(max?: number): XsWatchEvent[] {
    return this.events.take(max);
  }

  /** Used by the store. */
  queueEvent(ev: XsWatchEvent): void {
    if (this.events.push(ev)) this.onEvent?.(this);
  }

  /** Used by the store: a fresh transaction id, never 0 nor one still open (transaction.c). */
  allocateTransactionId(): number {
    for (;;) {
      const id = this.nextTransactionId;
      this.nextTransactionId = (this.nextTransactionId + 1) >>> 0;
      if (id !== 0 && !this.transactions.has(id)) return id;
    }
  }

  /** Used by the store when the connection closes. */
  markClosed(): void {
    this._closed = true;
    this.onEvent = undefined;
  }
}
