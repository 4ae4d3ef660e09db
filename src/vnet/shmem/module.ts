import type { Env } from '../../sim/index.js';
import { mac } from '../../net/index.js';
import type { Vcpu, XenbusClient } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { Hv2mTableWatch, PeerModule, SHMEM_PATH_TAG, type ChannelLink, type Hv2mPeer, type MadeChannel } from '../hv2m/index.js';
import type { ShmemCosts } from './costs.js';
import { ShmemChannel, emptyShmemStats, type ShmemChannelOptions, type ShmemStats } from './shmem-channel.js';
import { ShmemEnd } from './shmem-end.js';

export interface ShmemModuleOptions extends ShmemChannelOptions {
  /** Data pages of each FIFO this guest receives on. */
  fifoPages: number;
  eagainStep: number;
}

/**
 * The guest's shmem module: hv2m's PeerModule (same discovery — announced as `shmem` — same
 * policy, post-routing hook, fences and teardown order) with XenLoop-style channels: a FIFO
 * per direction in pages the receiver grants and the sender maps, a memcpy on each side.
 */
export class ShmemModule extends PeerModule<ShmemChannel, ShmemStats> {
  constructor(
    env: Env,
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    private readonly link: ChannelLink,
    private readonly costs: ShmemCosts,
    private readonly opts: ShmemModuleOptions,
  ) {
    super(env, xg.domid, new Hv2mTableWatch(env, xb, xg.domid, SHMEM_PATH_TAG), link.mac, emptyShmemStats(), 'shmem');
  }

  protected makeChannel(p: Hv2mPeer, changed: () => void): MadeChannel<ShmemChannel> {
    const end = new ShmemEnd(this.xg, this.table.xenbus, this.v, p.domid, this.opts.fifoPages, this.opts.eagainStep);
    const channel = new ShmemChannel(this.env, this.xg, this.v, end, this.link, mac(p.mac), this.costs, this.opts, this.stats);
    end.dev.stateLock = this.stateLock;
    end.onStateChange = changed;
    return { channel, open: () => end.open() };
  }
}
