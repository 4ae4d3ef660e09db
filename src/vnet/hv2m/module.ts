import type { Env, ProcessGenerator } from '../../sim/index.js';
import { formatIpv4, type HookVerdict, type Ipv4Addr, type NetDevice, type Packet } from '../../net/index.js';
import type { Vcpu, XenbusClient } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { Hv2mChannel, emptyHv2mStats, parseFence, type ChannelLink, type ChannelOptions, type Hv2mStats } from './channel.js';
import type { Hv2mCosts } from './costs.js';
import { ChannelEnd, type ChannelEndOptions } from './handshake.js';
import { Hv2mTableWatch, type Hv2mPeer } from './table-watch.js';

export interface Hv2mModuleOptions extends ChannelEndOptions, ChannelOptions {}

/**
 * The guest's hv2m module: its table watch drives the channels — a peer that appears in
 * Dom0's list gets a channel (handshake, then the data plane of channel.ts); a peer that
 * leaves it (released, denied by a new policy, unloaded) has its channel ended in order.
 * The post-routing hook (`hook`, installed by the path on the guest's stack) diverts a frame
 * whose next hop is a connected peer's IP and whose output device is the NIC the module
 * serves; everything else goes on unchanged. A channel that ended on its own account — the
 * peer broke the protocol, went silent, or closed it — is not opened again until the peer
 * leaves the table and comes back. Unload ends every channel.
 */
export class Hv2mModule {
  readonly table: Hv2mTableWatch;
  readonly channels = new Map<number, Hv2mChannel>();
  readonly stats: Hv2mStats = emptyHv2mStats();
  /** Peers whose channel ended on its own account, and why (no new channel while they stay listed). */
  readonly barred = new Map<number, string>();
  /** Channels closed. */
  closed = 0;
  onChange: () => void = () => undefined;
  /** Also told of every change (the path's readiness wait). */
  readonly listeners = new Set<() => void>();
  /** The NIC whose traffic the hook looks at (the path sets it; null: any). */
  device: NetDevice | null = null;

  constructor(
    private readonly env: Env,
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    private readonly link: ChannelLink,
    private readonly costs: Hv2mCosts,
    private readonly opts: Hv2mModuleOptions,
  ) {
    this.table = new Hv2mTableWatch(env, xb, xg.domid);
    this.table.onChange = (added, removed) => {
      for (const p of removed) {
        this.barred.delete(p.domid);
        this.env.process(this.drop(p.domid, true), `d${xg.domid} hv2m close d${p.domid}`);
      }
      for (const p of added) this.env.process(this.add(p), `d${xg.domid} hv2m open d${p.domid}`);
    };
  }

  /**
   * The post-routing hook: a frame for a peer whose channel is diverting is stolen — its
   * Ethernet header written (the peer's Dom0-bound MAC), queued on the channel; the rest is
   * accepted for the ordinary NIC.
   */
  readonly hook = (pkt: Packet, nextHop: Ipv4Addr, outDev: NetDevice): HookVerdict => {
    if (this.device !== null && outDev !== this.device) return 'accept';
    const peer = this.table.peers.get(formatIpv4(nextHop));
    if (peer === undefined) return 'accept';
    const ch = this.channels.get(peer.domid);
    if (ch === undefined || !ch.diverting) return 'accept';
    const d = pkt.data;
    const m = ch.peerMac;
    for (let i = 0; i < 6; i++) d[i] = Math.floor(m / 2 ** (8 * (5 - i))) & 0xff;
    const s = this.link.mac;
    for (let i = 0; i < 6; i++) d[6 + i] = Math.floor(s / 2 ** (8 * (5 - i))) & 0xff;
    d[12] = 0x08;
    d[13] = 0x00;
    ch.enqueue(pkt);
    return 'stolen';
  };

  /** A frame received on the ordinary NIC: a fence from a peer opens that peer's channel for receiving. */
  received(pkt: Packet): void {
    const f = parseFence(pkt.data);
    if (f === null) return;
    this.channels.get(f.domid)?.fenceSeen(f.port);
  }

  *load(): ProcessGenerator<boolean> {
    return yield* this.table.load();
  }

  *unload(): ProcessGenerator<void> {
    yield* this.table.unload();
  }

  private *add(p: Hv2mPeer): ProcessGenerator<void> {
    if (this.channels.has(p.domid) || this.barred.has(p.domid)) return;
    const end = new ChannelEnd(this.xg, this.table.xenbus, this.v, this.link.memory, p.domid, this.opts);
    const ch = new Hv2mChannel(this.env, this.xg, this.v, end, this.link, macOf(p.mac), this.costs, this.opts, this.stats);
    ch.onEnd = (reason, why) => {
      this.barred.set(p.domid, `${reason}: ${why}`);
      this.env.process(this.drop(p.domid, reason === 'peer-closing'), `d${this.xg.domid} hv2m end d${p.domid}`);
    };
    end.onStateChange = () => this.changed();
    ch.onProgress = () => this.changed();
    this.channels.set(p.domid, ch);
    yield* end.open();
    this.changed();
  }

  private changed(): void {
    this.onChange();
    for (const l of [...this.listeners]) l();
  }

  private *drop(domid: number, graceful: boolean): ProcessGenerator<void> {
    const ch = this.channels.get(domid);
    if (ch === undefined) return;
    yield* ch.shutdown(graceful);
    if (this.channels.get(domid) === ch) this.channels.delete(domid);
    this.closed++;
    this.changed();
    // Listed again meanwhile (a policy flip-flop): a fresh channel.
    const p = [...this.table.peers.values()].find((x) => x.domid === domid);
    if (p !== undefined && !this.barred.has(domid)) yield* this.add(p);
  }
}

function macOf(text: string): number {
  return parseInt(text.replace(/:/g, ''), 16);
}
