import type { Env, Time } from '../../sim/index.js';
import type { MacAddr } from '../wire/addr.js';

/**
 * One forwarding-database entry (struct net_bridge_fdb_entry, Linux 4.4, no VLANs): where
 * frames to `mac` go. `port` null is the bridge device itself (its own address).
 */
export interface FdbEntry<P> {
  readonly mac: MacAddr;
  port: P | null;
  /** One of the host's own addresses (a port's or the bridge's): frames to it go up, not out. */
  readonly isLocal: boolean;
  /** Never ages (local entries). */
  readonly isStatic: boolean;
  /** Last time a frame from `mac` refreshed it (fdb->updated), ns. */
  updated: Time;
  /** Last time a frame was forwarded to it (fdb->used), ns. */
  used: Time;
}

export interface FdbStats {
  /** Entries created by learning (fdb_create from br_fdb_update). */
  learned: number;
  /** Learned entries that moved to another port (br_fdb_update: source != fdb->dst). */
  moved: number;
  /** Entries removed by ageing (br_fdb_cleanup). */
  aged: number;
  /** Frames whose source is one of the host's own addresses: not learned (br_warn "own address as source address"). */
  ownSource: number;
}

/**
 * The bridge's forwarding database (net/bridge/br_fdb.c, Linux 4.4): learned entries,
 * refreshed by every frame from their MAC and forgotten `ageing` after the last one; local
 * entries for the host's own addresses, which never age and are never moved by learning.
 * A lookup ignores an entry that has expired but was not yet collected (has_expired in
 * __br_fdb_get); a garbage-collection timer (br_fdb_cleanup) removes expired entries and
 * re-arms itself for the next expiry while dynamic entries remain.
 */
export class Fdb<P> {
  readonly stats: FdbStats = { learned: 0, moved: 0, aged: 0, ownSource: 0 };
  private readonly entries = new Map<MacAddr, FdbEntry<P>>();
  private gcPending = false;

  constructor(
    private readonly env: Env,
    /** Ageing time (ageing_time), ns. */
    readonly ageing: Time,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** All entries, expired ones included until collected. */
  all(): FdbEntry<P>[] {
    return [...this.entries.values()];
  }

  /** has_expired. */
  private expired(e: FdbEntry<P>): boolean {
    return !e.isStatic && this.env.now >= e.updated + this.ageing;
  }

  /** __br_fdb_get: the live entry for `mac`, if any. */
  get(mac: MacAddr): FdbEntry<P> | undefined {
    const e = this.entries.get(mac);
    return e === undefined || this.expired(e) ? undefined : e;
  }

  /**
   * br_fdb_update: a frame from `mac` arrived on `port`. A new address is learned; a known
   * one is refreshed and moves to `port` if it was elsewhere (Linux's behaviour, so a forged
   * source address diverts that address's traffic until its owner sends again); one of the
   * host's own addresses is left alone.
   */
  update(port: P, mac: MacAddr): void {
    const e = this.entries.get(mac);
    const now = this.env.now;
    if (e !== undefined) {
      if (e.isLocal) {
        this.stats.ownSource++;
        return;
      }
      if (e.port !== port) {
        e.port = port;
        this.stats.moved++;
      }
      e.updated = now;
      return;
    }
    this.entries.set(mac, { mac, port, isLocal: false, isStatic: false, updated: now, used: now });
    this.stats.learned++;
    this.armGc(now + this.ageing);
  }

  /**
   * fdb_insert of a local address (a port's address at br_add_if, the bridge's own): a learned
   * entry for it is replaced; an existing local entry is kept ("it is okay to have multiple
   * ports with same address, just use the first one").
   */
  insertLocal(port: P | null, mac: MacAddr): void {
    const e = this.entries.get(mac);
    if (e !== undefined && e.isLocal) return;
    const now = this.env.now;
    this.entries.set(mac, { mac, port, isLocal: true, isStatic: true, updated: now, used: now });
  }

  /** fdb_delete. */
  remove(mac: MacAddr): void {
    this.entries.delete(mac);
  }

  /**
   * br_fdb_delete_by_port: the port's learned entries, and its local ones too when `all`
   * (the port leaves). Returns the local addresses removed, for the caller to point at
   * another holder of the same address if one remains (fdb_delete_local).
   */
  deleteByPort(port: P, all: boolean): MacAddr[] {
    const locals: MacAddr[] = [];
    for (const e of [...this.entries.values()]) {
      if (e.port !== port) continue;
      if (e.isStatic && !all) continue;
      if (e.isLocal) locals.push(e.mac);
      this.entries.delete(e.mac);
    }
    return locals;
  }

  private armGc(at: Time): void {
    // Every new entry expires no earlier than those already known, so one pending timer at
    // the earliest expiry suffices; cleanup re-arms it for the next one.
    if (this.gcPending) return;
    this.gcPending = true;
    this.env.timeout(Math.max(0, at - this.env.now)).addCallback(() => this.cleanup());
  }

  /** br_fdb_cleanup: removes expired entries and re-arms for the next expiry. */
  private cleanup(): void {
    this.gcPending = false;
    let next = Infinity;
    for (const e of [...this.entries.values()]) {
      if (e.isStatic) continue;
      if (this.expired(e)) {
        this.entries.delete(e.mac);
        this.stats.aged++;
      } else next = Math.min(next, e.updated + this.ageing);
    }
    if (next !== Infinity) this.armGc(next);
  }
}
