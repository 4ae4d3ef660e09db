import type { Env } from '../../sim/index.js';
import type { Vcpu, XenbusClient } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { Hv2mChannel, emptyHv2mStats, type ChannelLink, type ChannelOptions, type Hv2mStats } from './channel.js';
import type { Hv2mCosts } from './costs.js';
import { ChannelEnd, type ChannelEndOptions } from './handshake.js';
import { mac } from '../../net/index.js';
import { PeerModule, type MadeChannel } from './peer-module.js';
import { Hv2mTableWatch, type Hv2mPeer } from './table-watch.js';

export interface Hv2mModuleOptions extends ChannelEndOptions, ChannelOptions {}

/**
 * The guest's hv2m module (PeerModule with HV²M's channels): a peer Dom0 lists gets a
 * ChannelEnd handshake and an Hv2mChannel data plane — the sender pushes each frame into the
 * receiver's posted buffers with GNTTABOP_copy.
 */
export class Hv2mModule extends PeerModule<Hv2mChannel, Hv2mStats> {
  constructor(
    env: Env,
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    private readonly link: ChannelLink,
    private readonly costs: Hv2mCosts,
    private readonly opts: Hv2mModuleOptions,
  ) {
    super(env, xg.domid, new Hv2mTableWatch(env, xb, xg.domid), link.mac, emptyHv2mStats(), 'hv2m');
  }

  protected makeChannel(p: Hv2mPeer, changed: () => void): MadeChannel<Hv2mChannel> {
    const end = new ChannelEnd(this.xg, this.table.xenbus, this.v, this.link.memory, p.domid, this.opts);
    const channel = new Hv2mChannel(this.env, this.xg, this.v, end, this.link, mac(p.mac), this.costs, this.opts, this.stats);
    end.dev.stateLock = this.stateLock;
    end.onStateChange = changed;
    return { channel, open: () => end.open() };
  }
}
