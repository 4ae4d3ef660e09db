import { Resource, type Env, type ProcessGenerator } from '../../sim/index.js';
import {
  ETHERTYPE_IPV4,
  Interface,
  emitEthernet,
  stackTx,
  type HookVerdict,
  type Ipv4Addr,
  type MacAddr,
  type NetDevice,
  type Packet,
} from '../../net/index.js';
import { parseFence } from './fence.js';
import { TP_CHANNEL_FRAME } from '../trace-points.js';
import type { Hv2mTableWatch, Hv2mPeer } from './table-watch.js';

/** Why a channel ended on its own account, as the module is told. */
export type ChannelEndReason = 'fault' | 'watchdog' | 'peer-closing';

/**
 * What a module needs of one channel to a peer, whatever its data plane (HV²M's push through
 * GNTTABOP_copy, or the shmem baseline's FIFO): the hook's hand-off, the switch fence, and the
 * in-order teardown.
 */
export interface PeerChannel {
  readonly peer: number;
  /** The peer's MAC, bound by Dom0. */
  readonly peerMac: MacAddr;
  /** The hook sends this peer's frames to the channel. */
  readonly diverting: boolean;
  /** Both halves up and pushing. */
  readonly connected: boolean;
  /** The receiver passed the peer's fence (its half may be consumed). */
  readonly rxOpen: boolean;
  onEnd: (reason: ChannelEndReason, why: string) => void;
  onProgress: () => void;
  /** The hook's hand-off: the frame (Ethernet header written) joins the per-peer queue (or is dropped and counted). */
  enqueue(pkt: Packet): void;
  /** A fence from the peer naming `port` arrived on the ordinary NIC. */
  fenceSeen(port: number): void;
  linkUp(): void;
  /** The in-order teardown (see PeerChannelBase.shutdown). */
  shutdown(graceful: boolean): ProcessGenerator<void>;
}

/** A channel a module made for a peer, and the handshake that brings it up. */
export interface MadeChannel<C extends PeerChannel> {
  channel: C;
  /** The channel end's handshake (publish my half, watch the peer's). */
  open(): ProcessGenerator<void>;
}

/**
 * A guest's channel module, whatever the data plane: its table watch (Dom0's list of permitted
 * co-resident peers) drives the channels — a peer that appears gets a channel (handshake, then
 * the data plane); a peer that leaves (released, denied by a new policy, unloaded) has its
 * channel ended in order. The post-routing hook (`hook`, installed by the path on the guest's
 * stack) diverts a frame whose next hop is a connected peer's IP and whose output device is
 * the NIC the module serves; everything else goes on unchanged. A channel that ended on its
 * own account — the peer broke the protocol, went silent, or closed it — is not opened again
 * until the peer leaves the table and comes back. Unload ends every channel.
 *
 * HV²M (Hv2mModule) and the shmem baseline (ShmemModule) are this with different channels:
 * the same discovery, interception point, policy, fences and teardown order (issue 11).
 */
export abstract class PeerModule<C extends PeerChannel, S> {
  readonly channels = new Map<number, C>();
  /** Peers whose channel ended on its own account, and why (no new channel while they stay listed). */
  readonly barred = new Map<number, string>();
  /** Channels closed. */
  closed = 0;
  onChange: () => void = () => undefined;
  /** Also told of every change (the path's readiness wait). */
  readonly listeners = new Set<() => void>();
  /** The NIC whose traffic the hook looks at (the path sets it; null: any). */
  device: NetDevice | null = null;
  /**
   * The module's XenStore state changes run one at a time, as from one single-threaded
   * workqueue (*ours*): every channel end's xenbus device shares this lock, so a guest with
   * many peers never opens more transactions at once than xenstored's quota allows.
   */
  readonly stateLock: Resource;

  constructor(
    protected readonly env: Env,
    protected readonly domid: number,
    readonly table: Hv2mTableWatch,
    /** The MAC of the ordinary NIC (the Ethernet source of diverted frames). */
    private readonly mac: MacAddr,
    /** The module's counters, over all its channels. */
    readonly stats: S,
    private readonly label: string,
  ) {
    this.stateLock = new Resource(env, 1);
    this.table.onChange = (added, removed) => {
      for (const p of removed) {
        this.barred.delete(p.domid);
        this.env.process(this.drop(p.domid, true), `d${domid} ${label} close d${p.domid}`);
      }
      for (const p of added) this.env.process(this.add(p), `d${domid} ${label} open d${p.domid}`);
    };
  }

  /** A new channel with `p` (not yet open). */
  protected abstract makeChannel(p: Hv2mPeer, changed: () => void): MadeChannel<C>;

  /**
   * The post-routing hook: a frame for a peer whose channel is diverting is stolen — its
   * Ethernet header written (the peer's Dom0-bound MAC), queued on the channel; the rest is
   * accepted for the ordinary NIC.
   */
  readonly hook = (pkt: Packet, nextHop: Ipv4Addr, outDev: NetDevice): HookVerdict => {
    if (this.device !== null && outDev !== this.device) return 'accept';
    const peer = this.table.byAddr.get(nextHop);
    if (peer === undefined) return 'accept';
    const ch = this.channels.get(peer.domid);
    if (ch === undefined || !ch.diverting) return 'accept';
    emitEthernet({ dst: ch.peerMac, src: this.mac, ethertype: ETHERTYPE_IPV4 }, pkt.data, 0);
    // The frame leaves by the NIC's interface as far as captures go (pcap, tshark): stackTx as Interface.transmit emits it.
    const tr = this.env.trace;
    if (tr.enabled(stackTx) && pkt.iface instanceof Interface) tr.emit(stackTx, { stack: pkt.iface.stack.name, dev: outDev.name, pkt });
    if (tr.enabled(TP_CHANNEL_FRAME)) tr.emit(TP_CHANNEL_FRAME, { path: this.label, domid: this.domid, peer: peer.domid, pkt });
    ch.enqueue(pkt);
    return 'stolen';
  };

  /** The stack took the ordinary NIC (its interface exists now). */
  linkUp(): void {
    for (const ch of this.channels.values()) ch.linkUp();
  }

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
    const made = this.makeChannel(p, () => this.changed());
    const ch = made.channel;
    ch.onEnd = (reason, why) => {
      this.barred.set(p.domid, `${reason}: ${why}`);
      this.env.process(this.drop(p.domid, reason === 'peer-closing'), `d${this.domid} ${this.label} end d${p.domid}`);
    };
    ch.onProgress = () => this.changed();
    this.channels.set(p.domid, ch);
    yield* made.open();
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
