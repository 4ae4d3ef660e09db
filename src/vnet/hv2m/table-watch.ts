import type { Env, ProcessGenerator, SimEvent } from '../../sim/index.js';
import type { XenbusClient } from '../../xen/index.js';
import { parseIpv4Addr, type Ipv4Addr } from '../../net/index.js';
import { HV2M_ANNOUNCE, HV2M_PATH_TAG, HV2M_TABLE } from './discoveryd.js';

/** A peer as the guest module learns it from Dom0's table. */
export interface Hv2mPeer {
  domid: number;
  mac: string;
  ip: string;
}

/**
 * The guest module's view of discovery (the control-plane half of src/vnet/hv2m's module):
 * on load it announces itself (its flag under its own `data/`, naming its data path), watches the list Dom0 keeps
 * for it, and re-reads the list on every event. `peers` is what the module may divert to:
 * keyed by IP, with the peer's domid and Dom0-bound MAC. `onChange` gets the peers that came
 * and went, for the handshake and teardown to act on. Unloading withdraws the flag and the
 * watch. Nothing here trusts a value a peer wrote: the list is Dom0's.
 */
export class Hv2mTableWatch {
  readonly peers = new Map<string, Hv2mPeer>();
  /** The same peers by IPv4 address as a number (what the post-routing hook looks up, per frame). */
  readonly byAddr = new Map<Ipv4Addr, Hv2mPeer>();
  onChange: (added: Hv2mPeer[], removed: Hv2mPeer[]) => void = () => undefined;
  /** Malformed entries seen (counted, ignored). */
  badEntries = 0;
  private dirty = false;
  /** The whole list must be read again (the watch's first firing, or an event on the directory itself). */
  private whole = true;
  /** Entries a watch event named since the last read: only these are read again. */
  private readonly touched = new Set<string>();
  private running = false;
  private loaded = false;
  /** XenStore reads made for the list (they grow with the entries that changed, not with the list's length per change). */
  reads = 0;

  constructor(
    private readonly env: Env,
    private readonly xb: XenbusClient,
    readonly domid: number,
    /** The data path this guest's module runs, written as its announce flag (Dom0 pairs only guests of one path). */
    readonly tag: string = HV2M_PATH_TAG,
  ) {}

  get xenbus(): XenbusClient {
    return this.xb;
  }

  private get listPath(): string {
    return `${HV2M_TABLE}/${this.domid}`;
  }

  /** Module load: watch first (an entry published in between is not missed), then announce. Returns false if the store refused either. */
  *load(): ProcessGenerator<boolean> {
    this.loaded = true;
    const w = yield* this.xb.watch(this.listPath, `hv2m-table-${this.domid}`, (path) => this.kick(path));
    if (!w.ok) return false;
    const a = yield* this.xb.write(`/local/domain/${this.domid}/${HV2M_ANNOUNCE}`, this.tag);
    return a.ok;
  }

  /** Module unload: the flag goes (Dom0 drops this guest from every table), the watch too; every peer is reported removed. */
  *unload(): ProcessGenerator<void> {
    this.loaded = false;
    yield* this.xb.write(`/local/domain/${this.domid}/${HV2M_ANNOUNCE}`, '0');
    yield* this.xb.unwatch(this.listPath, `hv2m-table-${this.domid}`);
    const gone = [...this.peers.values()];
    this.peers.clear();
    this.byAddr.clear();
    if (gone.length > 0) this.onChange([], gone);
  }

  private kick(path: string): void {
    const base = `${this.listPath}/`;
    const rest = path.startsWith(base) ? path.slice(base.length) : '';
    if (rest === '' || rest.includes('/')) this.whole = true;
    else this.touched.add(rest);
    this.dirty = true;
    if (this.running || !this.loaded) return;
    this.running = true;
    this.env.process(this.loop(), `d${this.domid} hv2m table`);
  }

  private *loop(): ProcessGenerator<void> {
    try {
      while (this.dirty && this.loaded) {
        this.dirty = false;
        yield* this.reread();
      }
    } finally {
      this.running = false;
    }
  }

  private *reread(): Generator<SimEvent<unknown>, void, unknown> {
    const next = new Map<string, Hv2mPeer>(this.peers);
    let names: string[];
    if (this.whole) {
      this.whole = false;
      this.touched.clear();
      const dir = yield* this.xb.directory(this.listPath);
      this.reads++;
      next.clear();
      names = dir.ok ? dir.value : [];
    } else {
      names = [...this.touched].sort();
      this.touched.clear();
      for (const name of names) for (const [ip, p] of next) if (String(p.domid) === name) next.delete(ip);
    }
    for (const name of names) {
      const domid = Number(name);
      const r = yield* this.xb.readText(`${this.listPath}/${name}`);
      this.reads++;
      if (!r.ok) continue; // removed (or unreadable): not a peer
      const m = /^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) (\d{1,3}(?:\.\d{1,3}){3})$/.exec(r.value);
      if (!Number.isInteger(domid) || domid <= 0 || domid === this.domid || m === null || parseIpv4Addr(m[2]!) === undefined) {
        this.badEntries++;
        continue;
      }
      // One peer per IP: an entry that claims an IP another domid holds replaces it (Dom0's list is the authority).
      next.set(m[2]!, { domid, mac: m[1]!, ip: m[2]! });
    }
    if (!this.loaded) return;
    const added: Hv2mPeer[] = [];
    const removed: Hv2mPeer[] = [];
    for (const [ip, p] of this.peers) {
      const n = next.get(ip);
      if (n === undefined || n.domid !== p.domid || n.mac !== p.mac) removed.push(p);
    }
    for (const [ip, n] of next) {
      const p = this.peers.get(ip);
      if (p === undefined || n.domid !== p.domid || n.mac !== p.mac) added.push(n);
    }
    this.peers.clear();
    this.byAddr.clear();
    for (const [ip, n] of next) {
      this.peers.set(ip, n);
      this.byAddr.set(parseIpv4Addr(ip)!, n);
    }
    if (added.length > 0 || removed.length > 0) this.onChange(added, removed);
  }
}
