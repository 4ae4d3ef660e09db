import type { Env, ProcessGenerator } from '../../sim/index.js';
import type { PacketMemory } from '../../net/index.js';
import type { Vcpu, XenbusClient } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { ChannelEnd, type ChannelEndOptions } from './handshake.js';
import { Hv2mTableWatch, type Hv2mPeer } from './table-watch.js';

/**
 * The guest's hv2m module, control plane: its table watch drives the handshake — a peer that
 * appears in Dom0's list gets a channel end opened; a peer that leaves it (released, denied by
 * a new policy, unloaded) has its end closed (revoke and close; the drain step comes with the
 * data path). Unload closes every channel. The data path on top of these channels is not built yet.
 */
export class Hv2mModule {
  readonly table: Hv2mTableWatch;
  readonly channels = new Map<number, ChannelEnd>();
  /** Channels closed, and grants whose end is still deferred after closing. */
  closed = 0;
  onChange: () => void = () => undefined;

  constructor(
    private readonly env: Env,
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    private readonly memory: PacketMemory,
    private readonly opts: ChannelEndOptions,
  ) {
    this.table = new Hv2mTableWatch(env, xb, xg.domid);
    this.table.onChange = (added, removed) => {
      for (const p of removed) this.env.process(this.drop(p.domid), `d${xg.domid} hv2m close d${p.domid}`);
      for (const p of added) this.env.process(this.add(p), `d${xg.domid} hv2m open d${p.domid}`);
    };
  }

  private xbOf(): XenbusClient {
    return this.table.xenbus;
  }

  *load(): ProcessGenerator<boolean> {
    return yield* this.table.load();
  }

  *unload(): ProcessGenerator<void> {
    yield* this.table.unload();
  }

  private *add(p: Hv2mPeer): ProcessGenerator<void> {
    if (this.channels.has(p.domid)) return;
    const end = new ChannelEnd(this.xg, this.xbOf(), this.v, this.memory, p.domid, this.opts);
    end.onStateChange = () => this.onChange();
    this.channels.set(p.domid, end);
    yield* end.open();
    this.onChange();
  }

  private *drop(domid: number): ProcessGenerator<void> {
    const end = this.channels.get(domid);
    if (end === undefined) return;
    this.channels.delete(domid);
    yield* end.close();
    this.closed++;
    this.onChange();
  }
}
