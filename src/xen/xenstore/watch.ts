import { XENSTORE_PAYLOAD_MAX, XSD_SOCKMSG_SIZE } from '../abi/xs-wire.js';
import { isChildOrEqual, isSpecial } from './path.js';

/** A registered watch (xen-abi.md §1.7). */
export interface Watch {
  /** Canonical (absolute or special) path watched. */
  readonly name: string;
  readonly token: string;
  /**
   * Characters to cut from an event path for a watch set with a relative path: the caller's
   * home plus its slash, so the event carries the path relative again (xenstored's prefix_len).
   */
  readonly prefixLength: number;
}

/** A WATCH_EVENT as its receiver sees it: the path changed (as watched: relative or not) and the token. */
export interface XsWatchEvent {
  readonly path: string;
  readonly token: string;
}

/** Does a change at `name` fire `w`? `exact`: only a watch on that very node (RM of a subtree). */
export function watchMatches(w: Watch, name: string, exact: boolean): boolean {
  return exact ? name === w.name : isChildOrEqual(name, w.name);
}

export function eventPath(w: Watch, name: string): string {
  return name.slice(w.prefixLength);
}

/** Payload bytes of a WATCH_EVENT: `path\0token\0` (tokens are byte strings, one char per byte). */
export function eventPayloadLength(ev: XsWatchEvent): number {
  return ev.path.length + 1 + ev.token.length + 1;
}

/**
 * The watch events queued for one connection and not yet taken by its transport. An event
 * identical to one still queued is not queued again (special paths excepted), an event whose
 * payload would exceed XENSTORE_PAYLOAD_MAX is never sent, and events beyond `maxBytes`
 * (header + payload) are dropped and counted — all as xenstored's send_event does.
 */
export class EventQueue {
  private events: XsWatchEvent[] = [];
  /** `path\0token` of the queued non-special events, for the duplicate check. */
  private readonly keys = new Set<string>();
  private bytes = 0;
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(private readonly maxBytes: number) {}

  /** Queues an event; false if it was not queued (duplicate, oversized or over quota). */
  push(ev: XsWatchEvent): boolean {
    const len = eventPayloadLength(ev);
    if (len > XENSTORE_PAYLOAD_MAX) return false;
    const key = isSpecial(ev.path) ? undefined : `${ev.path}\0${ev.token}`;
    if (key !== undefined && this.keys.has(key)) return false;
    if (this.bytes + XSD_SOCKMSG_SIZE + len > this.maxBytes) {
      this.dropped++;
      return false;
    }
    this.events.push(ev);
    if (key !== undefined) this.keys.add(key);
    this.bytes += XSD_SOCKMSG_SIZE + len;
    return true;
  }

  get length(): number {
    return this.events.length;
  }

  /** Bytes the queued events take on the wire. */
  get queuedBytes(): number {
    return this.bytes;
  }

  take(max = Infinity): XsWatchEvent[] {
    const out = max >= this.events.length ? this.events : this.events.slice(0, max);
    this.events = max >= this.events.length ? [] : this.events.slice(max);
    for (const ev of out) {
      this.bytes -= XSD_SOCKMSG_SIZE + eventPayloadLength(ev);
      this.keys.delete(`${ev.path}\0${ev.token}`);
    }
    return out;
  }

  clear(): void {
    this.events = [];
    this.keys.clear();
    this.bytes = 0;
  }
}
