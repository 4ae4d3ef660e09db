import { Deque, type Env, type Timer } from '../../sim/index.js';
import type { Ipv4Addr, MacAddr } from '../wire/addr.js';
import type { Packet } from './packet.js';

export interface NeighbourParams {
  /** Interval between requests while unresolved (retrans_time), ns. */
  retrans: number;
  /** Requests before giving up (mcast_solicit). */
  maxProbes: number;
  /** REACHABLE lifetime after a confirmation (base_reachable_time), ns. */
  reachable: number;
  /** Bytes queued per unresolved entry (unres_qlen_bytes). */
  unresQueueBytes: number;
}

export interface NeighbourStats {
  requests: number;
  resolved: number;
  /** Entries that got no answer after maxProbes requests. */
  failed: number;
  /** Packets dropped: queue of an unresolved entry full, or the entry failed. */
  dropped: number;
}

const INCOMPLETE = 0;
const REACHABLE = 1;
const STALE = 2;

interface Entry {
  ip: Ipv4Addr;
  state: number;
  mac: MacAddr;
  confirmedAt: number;
  probes: number;
  queue: Deque<Packet>;
  queuedBytes: number;
  timer: Timer;
  /** A refresh request was sent for this STALE entry and is not yet answered. */
  refreshing: boolean;
}

/**
 * The ARP neighbour table of one interface (Linux neighbour.c, reduced): an unresolved next
 * hop gets an INCOMPLETE entry, packets wait in its queue (bounded in bytes; the oldest is
 * dropped first, as __neigh_event_send does) while requests go out every `retrans` up to
 * `maxProbes`; an answer makes it REACHABLE and flushes the queue in order; no answer fails
 * it and drops the queue (counted). A REACHABLE entry becomes STALE after `reachable`; a
 * STALE entry is still used and its first use sends one refresh request (Linux's
 * DELAY/PROBE states folded into one step).
 */
export class NeighbourTable {
  private readonly entries = new Map<Ipv4Addr, Entry>();
  readonly stats: NeighbourStats = { requests: 0, resolved: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly env: Env,
    private readonly params: NeighbourParams,
    /** Sends an ARP request for `ip` (broadcast). */
    private readonly solicit: (ip: Ipv4Addr) => void,
    /** Sends a packet to a resolved link-layer address. */
    private readonly transmit: (pkt: Packet, mac: MacAddr) => void,
  ) {}

  lookup(ip: Ipv4Addr): MacAddr | undefined {
    const e = this.entries.get(ip);
    return e === undefined || e.state === INCOMPLETE ? undefined : e.mac;
  }

  /** Sends `pkt` to `nextHop`, resolving it first if needed. */
  output(pkt: Packet, nextHop: Ipv4Addr): void {
    let e = this.entries.get(nextHop);
    if (e !== undefined && e.state !== INCOMPLETE) {
      if (e.state === REACHABLE && this.env.now - e.confirmedAt > this.params.reachable) e.state = STALE;
      if (e.state === STALE && !e.refreshing) {
        e.refreshing = true;
        this.request(e);
      }
      this.transmit(pkt, e.mac);
      return;
    }
    if (e === undefined) {
      const entry: Entry = {
        ip: nextHop,
        state: INCOMPLETE,
        mac: 0,
        confirmedAt: 0,
        probes: 0,
        queue: new Deque(),
        queuedBytes: 0,
        timer: this.env.timer(() => this.retry(entry)),
        refreshing: false,
      };
      this.entries.set(nextHop, entry);
      e = entry;
      this.request(e);
      e.timer.setIn(this.params.retrans);
    }
    e.queue.push(pkt);
    e.queuedBytes += pkt.length;
    while (e.queuedBytes > this.params.unresQueueBytes) {
      const old = e.queue.shift()!;
      e.queuedBytes -= old.length;
      this.stats.dropped++;
      old.release();
    }
  }

  /** An ARP packet from `ip` told us its MAC (reply, or a request naming us). */
  confirm(ip: Ipv4Addr, mac: MacAddr, create: boolean): void {
    const e = this.entries.get(ip);
    if (e === undefined) {
      if (!create) return;
      const entry: Entry = {
        ip,
        state: REACHABLE,
        mac,
        confirmedAt: this.env.now,
        probes: 0,
        queue: new Deque(),
        queuedBytes: 0,
        timer: this.env.timer(() => this.retry(entry)),
        refreshing: false,
      };
      this.entries.set(ip, entry);
      return;
    }
    const wasIncomplete = e.state === INCOMPLETE;
    e.state = REACHABLE;
    e.mac = mac;
    e.confirmedAt = this.env.now;
    e.refreshing = false;
    e.timer.cancel();
    if (wasIncomplete) {
      this.stats.resolved++;
      for (let p = e.queue.shift(); p !== undefined; p = e.queue.shift()) this.transmit(p, mac);
      e.queuedBytes = 0;
    }
  }

  private request(e: Entry): void {
    e.probes++;
    this.stats.requests++;
    this.solicit(e.ip);
  }

  private retry(e: Entry): void {
    if (e.state !== INCOMPLETE) return;
    if (e.probes >= this.params.maxProbes) {
      this.stats.failed++;
      for (let p = e.queue.shift(); p !== undefined; p = e.queue.shift()) {
        this.stats.dropped++;
        p.release();
      }
      this.entries.delete(e.ip);
      return;
    }
    this.request(e);
    e.timer.setIn(this.params.retrans);
  }
}
