import type { Env, ProcessGenerator, SimEvent } from '../../sim/index.js';
import { XS_INTRODUCE_DOMAIN_PATH, XS_RELEASE_DOMAIN_PATH } from '../../xen/abi/xs-wire.js';
import type { Hypervisor, XenbusClient } from '../../xen/index.js';
import { pairAllowed, type Hv2mPolicy } from './policy.js';

/** Where Dom0 publishes each guest's permitted HV²M peers: `<root>/<domid>/<peer domid>` = "<mac> <ip>" (*ours*). */
export const HV2M_TABLE = '/local/domain/0/hv2m/peers';
/**
 * The flag a guest writes under its own home to say it runs a channel module (*ours*). Its
 * value names the data path the module speaks (`1` for hv2m, `shmem` for the XenLoop-style
 * baseline): one discovery for both, and Dom0 pairs only guests that announced the same path;
 * `0` (or anything else) withdraws.
 */
export const HV2M_ANNOUNCE = 'data/hv2m-capable';
/** The announce value of the HV²M module (the flag's original value). */
export const HV2M_PATH_TAG = '1';
/** The announce value of the shmem baseline's module. */
export const SHMEM_PATH_TAG = 'shmem';
/** Announce values Dom0 accepts: the data paths that share this discovery. */
export const ANNOUNCE_TAGS: readonly string[] = [HV2M_PATH_TAG, SHMEM_PATH_TAG];

/** One HV²M-capable guest as Dom0 knows it: identity from the toolstack's vif keys. */
export interface DiscoveredGuest {
  domid: number;
  name: string;
  tenant: string;
  mac: string;
  ip: string;
  /** The data path it announced (ANNOUNCE_TAGS). */
  tag: string;
}

/**
 * hv2m-discoveryd (DESIGN.md "Control plane"): a Dom0 process on Dom0's xenbus. It watches
 * `@introduceDomain` and `@releaseDomain`, and each guest's announce flag; for each guest that
 * announced it reads the MAC and IP of the guest's first vif **from the backend directory**
 * (Dom0-owned keys the toolstack wrote: the guest cannot write them), and publishes, for each
 * guest, the peers the policy lets it have a channel with, in a directory only Dom0 may write
 * and only that guest (and Dom0) may read. A denied pair is simply absent from both lists.
 * Every XenStore request is a real message on Dom0's ring, costed as such.
 */
export class Hv2mDiscoveryd {
  /** Guests whose home the daemon watches (its per-domain announce watches). */
  private readonly watched = new Set<number>();
  /** Announced guests whose identity was read: an identity is read once per domain (its backend keys are the toolstack's and do not change). */
  private readonly known = new Map<number, DiscoveredGuest>();
  /** Guests that announced but whose identity could not be read yet (no vif with an ip key): retried on every rescan. */
  private readonly unresolved = new Set<number>();
  /** What is published now: domid → peer domid → "mac ip". */
  private readonly published = new Map<number, Map<number, string>>();
  /** A domain came or went: the next rescan lists /local/domain. */
  private domainsChanged = true;
  /** Guests whose announce flag fired since the last rescan: only their flags are read again. */
  private readonly flagsChanged = new Set<number>();
  private dirty = false;
  private running = false;
  private stopped = false;
  /** Table updates published (rescans that changed something) and rescans run. */
  updates = 0;
  rescans = 0;
  /** XenStore reads the rescans made (the daemon's work grows with changes, not with guests × changes). */
  reads = 0;
  /** The simulated time of the last change to the table. */
  lastUpdate = 0;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly env: Env,
    private readonly hv: Hypervisor,
    private readonly xb: XenbusClient,
    private policy: Hv2mPolicy = {},
  ) {}

  /** Starts the daemon: its two global watches (each fires once at once, which runs the first scan). */
  *start(): ProcessGenerator<void> {
    const w1 = yield* this.xb.watch(XS_INTRODUCE_DOMAIN_PATH, 'hv2m-introduce', () => this.domainsKick());
    const w2 = yield* this.xb.watch(XS_RELEASE_DOMAIN_PATH, 'hv2m-release', () => this.domainsKick());
    if (!w1.ok || !w2.ok)
      throw new Error(`hv2m-discoveryd: cannot watch @introduceDomain/@releaseDomain (${w1.ok ? '' : w1.error} ${w2.ok ? '' : w2.error})`);
    const mk = yield* this.xb.mkdir(HV2M_TABLE);
    if (!mk.ok) throw new Error(`hv2m-discoveryd: cannot create ${HV2M_TABLE} (${mk.error})`);
  }

  /** The policy changed at run time: the table is recomputed (pairs no longer allowed disappear, and their guests tear the channels down). */
  setPolicy(p: Hv2mPolicy): void {
    this.policy = p;
    this.kick();
  }

  /** Calls `l` after every published change (tests, the host). */
  onUpdate(l: () => void): void {
    this.listeners.push(l);
  }

  /** What the daemon published for `domid` now: peer domid → "mac ip". */
  peersOf(domid: number): ReadonlyMap<number, string> {
    return this.published.get(domid) ?? new Map<number, string>();
  }

  stop(): void {
    this.stopped = true;
  }

  private domainsKick(): void {
    this.domainsChanged = true;
    this.kick();
  }

  private flagKick(d: number): void {
    this.flagsChanged.add(d);
    this.kick();
  }

  private kick(): void {
    this.dirty = true;
    if (this.running || this.stopped) return;
    this.running = true;
    this.env.process(this.loop(), 'hv2m-discoveryd');
  }

  private *loop(): ProcessGenerator<void> {
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        yield* this.rescan();
      }
    } finally {
      this.running = false;
    }
  }

  /** Re-reads what changed (the domain list after @introduceDomain/@releaseDomain, the flags that fired, identities still missing), then publishes the difference. */
  private *rescan(): Generator<SimEvent<unknown>, void, unknown> {
    this.rescans++;
    if (this.domainsChanged) {
      this.domainsChanged = false;
      const dir = yield* this.xb.directory('/local/domain');
      this.reads++;
      const present = new Set<number>(
        (dir.ok ? dir.value : []).map(Number).filter((d) => Number.isInteger(d) && d > 0 && this.hv.domain(d) !== undefined),
      );
      for (const d of present) {
        if (this.watched.has(d)) continue;
        this.watched.add(d);
        this.flagsChanged.add(d);
        yield* this.xb.watch(`/local/domain/${d}/${HV2M_ANNOUNCE}`, `hv2m-announce-${d}`, () => this.flagKick(d));
      }
      for (const d of [...this.watched]) {
        if (present.has(d)) continue;
        this.watched.delete(d);
        this.known.delete(d);
        this.unresolved.delete(d);
        yield* this.xb.unwatch(`/local/domain/${d}/${HV2M_ANNOUNCE}`, `hv2m-announce-${d}`);
      }
    }
    const todo = [...new Set([...this.flagsChanged, ...this.unresolved])].sort((a, b) => a - b);
    this.flagsChanged.clear();
    for (const d of todo) {
      this.unresolved.delete(d);
      if (!this.watched.has(d) || this.hv.domain(d) === undefined) {
        this.known.delete(d);
        continue;
      }
      const flag = yield* this.xb.readText(`/local/domain/${d}/${HV2M_ANNOUNCE}`);
      this.reads++;
      if (!flag.ok || !ANNOUNCE_TAGS.includes(flag.value)) {
        this.known.delete(d);
        continue;
      }
      const had = this.known.get(d);
      if (had !== undefined) {
        if (had.tag !== flag.value) this.known.set(d, { ...had, tag: flag.value });
        continue;
      }
      const id = yield* this.identity(d, flag.value);
      if (id === null) this.unresolved.add(d);
      else this.known.set(d, id);
    }
    const capable = [...this.known.values()].sort((a, b) => a.domid - b.domid);
    const next = new Map<number, Map<number, string>>();
    for (const g of capable) {
      const peers = new Map<number, string>();
      for (const p of capable) if (p.domid !== g.domid && p.tag === g.tag && pairAllowed(this.policy, g, p)) peers.set(p.domid, `${p.mac} ${p.ip}`);
      next.set(g.domid, peers);
    }
    let changed = false;
    for (const [d, old] of this.published) {
      const now = next.get(d);
      if (now === undefined) {
        yield* this.xb.rm(`${HV2M_TABLE}/${d}`);
        changed = true;
        continue;
      }
      for (const p of old.keys()) {
        if (!now.has(p)) {
          yield* this.xb.rm(`${HV2M_TABLE}/${d}/${p}`);
          changed = true;
        }
      }
    }
    for (const [d, now] of next) {
      const old = this.published.get(d);
      if (old === undefined && this.hv.domain(d) !== undefined) {
        yield* this.xb.mkdir(`${HV2M_TABLE}/${d}`);
        yield* this.xb.setPerms(`${HV2M_TABLE}/${d}`, ['n0', `r${d}`]);
        changed = true;
      }
      for (const [p, v] of now) {
        if (old?.get(p) === v) continue;
        // The entry inherits its directory's permissions (n0 r<d>: a node Dom0 creates copies its parent's), so no SET_PERMS per entry.
        yield* this.xb.write(`${HV2M_TABLE}/${d}/${p}`, v);
        changed = true;
      }
    }
    this.published.clear();
    for (const [d, m] of next) this.published.set(d, m);
    if (changed) {
      this.updates++;
      this.lastUpdate = this.env.now;
      for (const l of this.listeners) l();
    }
  }

  /** A guest's identity from Dom0's records: its first vif (lowest devid) with an ip key in the backend directory, and the toolstack's tenant label. */
  private *identity(d: number, tag: string): Generator<SimEvent<unknown>, DiscoveredGuest | null, unknown> {
    const dom = this.hv.domain(d);
    if (dom === undefined) return null;
    const base = `/local/domain/0/backend/vif/${d}`;
    const devs = yield* this.xb.directory(base);
    this.reads++;
    if (!devs.ok) return null;
    for (const dev of devs.value.map(Number).sort((a, b) => a - b)) {
      this.reads += 2;
      const mac = yield* this.xb.readText(`${base}/${dev}/mac`);
      const ip = yield* this.xb.readText(`${base}/${dev}/ip`);
      if (mac.ok && ip.ok) return { domid: d, name: dom.name, tenant: dom.tenant, mac: mac.value, ip: ip.value, tag };
    }
    return null;
  }
}
