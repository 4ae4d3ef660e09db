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
  private running = false;
  private loaded = false;

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
    const w = yield* this.xb.watch(this.listPath, `hv2m-table-${this.domid}`, () => this.kick());
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

  private kick(): void {
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
    const dir = yield* this.xb.directory(this.listPath);
    const next = new Map<string, Hv2mPeer>();
    for (const name of dir.ok ? dir.value : []) {
      const domid = Number(name);
      const r = yield* this.xb.readText(`${this.listPath}/${name}`);
      const m = r.ok ? /^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) (\d{1,3}(?:\.\d{1,3}){3})$/.exec(r.value) : null;
      if (!Number.isInteger(domid) || domid <= 0 || domid === this.domid || m === null || parseIpv4Addr(m[2]!) === undefined) {
        if (r.ok) this.badEntries++;
        continue;
      }
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
