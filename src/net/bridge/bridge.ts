import { Deque } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import { perBytes } from '../costs.js';
import type { DeviceFeatures, DeviceUpper, NetDevice } from '../iface/device.js';
import { CSUM_PARTIAL, GSO_NONE, Packet } from '../iface/packet.js';
import { Interface, type RxHandler, type Stack, type StackPort } from '../stack.js';
import { MAC_BROADCAST, formatMac, readMac, type MacAddr } from '../wire/addr.js';
import { ETH } from '../wire/ethernet.js';
import { Fdb } from './fdb.js';

/**
 * The Linux bridge of a host's kernel (net/bridge, Linux 4.4, STP off, no VLAN filtering, no
 * multicast snooping, no netfilter): br_handle_frame / br_handle_frame_finish (br_input.c),
 * br_forward / br_flood (br_forward.c), the forwarding database (br_fdb.c, `fdb.ts`), the
 * bridge device and br_dev_xmit (br_device.c), br_add_if / br_del_if (br_if.c).
 */

/** The bridge's costs, read once from the profile (ns). */
export interface BridgeCosts {
  frame: number;
  floodCopy: number;
  xmit: number;
  ageing: number;
  /** Per byte of a private copy of a shared frame that a port must write (skb_unclone). */
  copyPerByte: number;
}

export function bridgeCosts(p: Profile): BridgeCosts {
  return {
    frame: p.ns('net.bridge.frame'),
    floodCopy: p.ns('net.bridge.floodCopy'),
    xmit: p.ns('net.bridge.xmit'),
    ageing: p.ns('net.bridge.ageingTime'),
    copyPerByte: p.nsPerByte('net.copy'),
  };
}

/** Why the bridge dropped a frame (Linux counts most of these as rx_dropped/tx_dropped or kfree_skb). */
export type BridgeDropReason =
  /** Shorter than an Ethernet header. */
  | 'runt'
  /** Multicast or all-zero source address (br_handle_frame: !is_valid_ether_addr). */
  | 'badSource'
  /** Arrived on a port that is disabled (carrier down): br_handle_frame_finish drops it. */
  | 'portDisabled'
  /** IEEE 802.1D link-local group address other than the STP one (01:80:C2:00:00:01-0F): not forwarded; it would go to the port device's own protocols, which have none here. */
  | 'linkLocal'
  /** Destination known behind the ingress port: never sent back where it came from (should_deliver, no hairpin mode). */
  | 'hairpin'
  /** No port to flood to and not for the host. */
  | 'noPort'
  /** Longer than the egress port's MTU and not GSO (br_dev_queue_push_xmit: is_skb_forwardable). */
  | 'tooBig'
  /** The egress port's transmit queue was full (qdisc drop). */
  | 'queueFull'
  /** The port left the bridge: a frame it had received not yet handled, or frames queued to it (qdisc_reset). */
  | 'portRemoved'
  /** Sent by the host on the bridge device to the bridge's own address (br_deliver with no port). */
  | 'toSelf'
  /** For the host, but the bridge device is not attached to a stack. */
  | 'noUpper';

export interface BridgePortStats {
  /** Frames taken from the port and their bytes. */
  rxFrames: number;
  rxBytes: number;
  /** Frames the bridge queued to the port (forwarded, flooded, or sent by the host) and their bytes. */
  txFrames: number;
  txBytes: number;
  /** Drops of frames that arrived on the port or were to leave by it, by reason. */
  dropped: Partial<Record<BridgeDropReason, number>>;
}

export interface BridgeStats {
  /** Frames taken from ports. */
  rxFrames: number;
  /** Frames to a known unicast address sent out of its one port (br_forward). */
  forwarded: number;
  /** Frames flooded: broadcast, multicast and unknown unicast (br_flood), from ports or the host. */
  flooded: number;
  /** Of those, unknown unicast. */
  floodedUnknown: number;
  /** Copies sent out of ports by flooding. */
  floodCopies: number;
  /** Frames passed up to the host through the bridge device (br_pass_frame_up). */
  localIn: number;
  /** Frames the host sent on the bridge device (br_dev_xmit). */
  localOut: number;
  /** Private copies made of shared frames a port had to write (checksum completion). */
  unclones: number;
  /** All drops, by reason. */
  dropped: Partial<Record<BridgeDropReason, number>>;
}

export type BridgePortState = 'forwarding' | 'disabled';

/** A port of a bridge (struct net_bridge_port): a device of the bridge's kernel. */
export class BridgePort {
  state: BridgePortState = 'forwarding';
  readonly stats: BridgePortStats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, dropped: {} };
  constructor(
    readonly bridge: Bridge,
    /** The port device's attachment to the stack (its transmit queue, its NAPI in the stack's softirq). */
    readonly attachment: StackPort,
    /** port_no, from 1. */
    readonly no: number,
  ) {}

  get dev(): NetDevice {
    return this.attachment.dev;
  }

  get name(): string {
    return this.attachment.dev.name;
  }

  get mac(): MacAddr {
    return this.attachment.dev.mac;
  }
}

export interface BridgeOptions {
  /** The bridge device's name; default 'br0'. */
  name?: string;
  /**
   * A fixed address for the bridge device (`ip link set br0 address`, NET_ADDR_SET). Default:
   * the lowest address of its ports, as br_stp_recalculate_bridge_id chooses (0 until the
   * first port: Linux starts from a random address).
   */
  mac?: MacAddr;
}

/** The features of the bridge device: br_dev_setup's COMMON_FEATURES (SG, HW_CSUM, all GSO); what a port cannot do is done in software at the port's queue (validate_xmit_skb). */
const BRIDGE_FEATURES: DeviceFeatures = { txCsum: true, rxCsum: false, sg: true, tso: true, gsoMaxSize: 65536, lro: false, noArp: false };

/**
 * The bridge device (br0): a NetDevice the host's stack gives an address with
 * `stack.addInterface(bridge.dev, …)`. Frames the stack sends on it are forwarded by the
 * FDB (br_dev_xmit); frames for the host arrive through it. It has no queue of its own
 * (IFF_NO_QUEUE, LLTX): it accepts every frame.
 */
export class BridgeDevice implements NetDevice {
  readonly features = BRIDGE_FEATURES;
  /** What the bridge device is attached to (the host stack's interface), or null. */
  upper: DeviceUpper | null = null;
  constructor(
    private readonly br: Bridge,
    readonly name: string,
  ) {}

  get mac(): MacAddr {
    return this.br.mac;
  }

  /** br_min_mtu: the smallest MTU of the ports, 1500 (ETH_DATA_LEN) without ports. */
  get mtu(): number {
    return this.br.mtu;
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  xmit(pkt: Packet): boolean {
    this.br.devXmit(pkt);
    return true;
  }
}

/** Where a frame goes: out of these ports, and up to the host or not. */
interface Plan {
  targets: BridgePort[];
  up: boolean;
  kind: 'forward' | 'flood' | 'local' | 'drop';
  drop?: BridgeDropReason;
  unknown: boolean;
}

interface XmitEntry {
  pkt: Packet;
  done: boolean;
}

const MAC_MULTICAST_BIT = 0x0100_0000_0000;
/** 01:80:C2:00:00:00, the IEEE 802.1D bridge group address (STP BPDUs); /16 gives the link-local block 01:80:C2:00:00:0X. */
const MAC_BRIDGE_GROUP = 0x0180_c200_0000;

function isMulticast(m: MacAddr): boolean {
  return Math.floor(m / MAC_MULTICAST_BIT) % 2 === 1;
}

/**
 * A Linux bridge in one host kernel, whose ports are devices of that kernel's stack. A frame
 * a port receives is polled in the stack's NET_RX softirq like any frame and handed to the
 * bridge (the port's rx_handler) instead of IP, charged `net.bridge.frame` (plus
 * `net.bridge.floodCopy` per further copy, and the stack's receive cost when it also goes up
 * to the host) to the stack's CPU: the bridge runs in the receive softirq of the port a frame
 * arrived on. Forwarded frames leave through the egress port's own transmit queue.
 *
 * Learning: every frame from a forwarding port teaches the FDB its source address on that
 * port, moving an address that was elsewhere (br_fdb_update). That is Linux's behaviour, and
 * it means a guest sending with a forged source address (another guest's) diverts that
 * address's traffic to itself until the owner's next frame moves it back: nothing in the
 * bridge checks who owns an address. HV²M's discovery must not repeat it.
 */
export class Bridge implements RxHandler {
  readonly dev: BridgeDevice;
  readonly fdb: Fdb<BridgePort>;
  readonly costs: BridgeCosts;
  readonly stats: BridgeStats = {
    rxFrames: 0,
    forwarded: 0,
    flooded: 0,
    floodedUnknown: 0,
    floodCopies: 0,
    localIn: 0,
    localOut: 0,
    unclones: 0,
    dropped: {},
  };
  private readonly portList: BridgePort[] = [];
  private readonly byAttachment = new Map<StackPort, BridgePort>();
  private readonly fixedMac: MacAddr | undefined;
  private addr: MacAddr;
  private nextPortNo = 1;
  private readonly txFifo = new Deque<XmitEntry>();

  constructor(
    readonly stack: Stack,
    profile: Profile,
    opts: BridgeOptions = {},
  ) {
    this.costs = bridgeCosts(profile);
    this.fdb = new Fdb<BridgePort>(stack.env, this.costs.ageing);
    this.dev = new BridgeDevice(this, opts.name ?? 'br0');
    this.fixedMac = opts.mac;
    this.addr = opts.mac ?? 0;
    if (opts.mac !== undefined) this.fdb.insertLocal(null, opts.mac);
  }

  get name(): string {
    return this.dev.name;
  }

  /** The bridge device's address. */
  get mac(): MacAddr {
    return this.addr;
  }

  get mtu(): number {
    if (this.portList.length === 0) return 1500;
    let m = Infinity;
    for (const p of this.portList) m = Math.min(m, p.dev.mtu);
    return m;
  }

  get ports(): readonly BridgePort[] {
    return this.portList;
  }

  port(name: string): BridgePort | undefined {
    return this.portList.find((p) => p.name === name);
  }

  /**
   * br_add_if: `dev`, a device of the bridge's kernel, becomes a port. Its frames are taken
   * by the bridge from now on; its address gets a local FDB entry (frames to it go up to the
   * host); the bridge device may take its address (lowest port address); with STP off the
   * port forwards at once.
   */
  addPort(dev: NetDevice): BridgePort {
    if ((dev as unknown) === this.dev) throw new Error(`${this.name}: cannot add the bridge device to itself`);
    if (this.portList.some((p) => p.dev === dev)) throw new Error(`${this.name}: ${dev.name} is already a port`);
    const attachment = this.stack.attachPort(dev, this);
    const port = new BridgePort(this, attachment, this.nextPortNo++);
    this.portList.push(port);
    this.byAttachment.set(attachment, port);
    this.fdb.insertLocal(port, dev.mac);
    this.recalculateAddress();
    return port;
  }

  /**
   * br_del_if: the port leaves. Its FDB entries go (its local address moves to another holder
   * of the same address if one remains); frames queued to it are released and counted
   * (`portRemoved`); frames it had received but the bridge had not yet handled are dropped.
   */
  removePort(port: BridgePort): void {
    const i = this.portList.indexOf(port);
    if (i < 0) throw new Error(`${this.name}: ${port.name} is not a port of this bridge`);
    port.state = 'disabled';
    this.portList.splice(i, 1);
    this.byAttachment.delete(port.attachment);
    const purged = this.stack.detachPort(port.attachment);
    if (purged > 0) this.drop(port, 'portRemoved', purged);
    for (const m of this.fdb.deleteByPort(port, true)) {
      const other = this.portList.find((p) => p.mac === m);
      if (other !== undefined) this.fdb.insertLocal(other, m);
      else if (m === this.addr) this.fdb.insertLocal(null, m);
    }
    this.recalculateAddress();
  }

  /**
   * The port device's carrier (br_port_carrier_check): down disables the port (it neither
   * takes nor sends frames) and flushes its learned entries (br_stp_disable_port); up makes
   * it forward again (br_stp_enable_port, STP off).
   */
  setCarrier(port: BridgePort, up: boolean): void {
    if (!this.portList.includes(port)) throw new Error(`${this.name}: ${port.name} is not a port of this bridge`);
    if (up) port.state = 'forwarding';
    else if (port.state !== 'disabled') {
      port.state = 'disabled';
      this.fdb.deleteByPort(port, false);
    }
  }

  /** br_stp_recalculate_bridge_id: the lowest port address unless the address was set. */
  private recalculateAddress(): void {
    if (this.fixedMac !== undefined) return;
    let lowest: MacAddr | undefined;
    for (const p of this.portList) if (lowest === undefined || p.mac < lowest) lowest = p.mac;
    if (lowest === undefined || lowest === this.addr) return;
    // br_fdb_change_mac_address: the old address's entry goes if no port holds it.
    const old = this.fdb.all().find((e) => e.mac === this.addr && e.isLocal && e.port === null);
    if (old !== undefined) {
      this.fdb.remove(old.mac);
      const other = this.portList.find((p) => p.mac === old.mac);
      if (other !== undefined) this.fdb.insertLocal(other, old.mac);
    }
    this.addr = lowest;
    this.fdb.insertLocal(null, lowest);
  }

  // ---- receive: br_handle_frame, br_handle_frame_finish ----

  rxCost(pkt: Packet, attachment: StackPort): number {
    const port = this.byAttachment.get(attachment);
    if (port === undefined || pkt.length < ETH.HEADER_LEN) return this.costs.frame;
    const src = readMac(pkt.data, ETH.SRC);
    const plan = this.planIn(port, pkt, src);
    return this.costs.frame + this.fanOutCost(pkt, plan);
  }

  handle(pkt: Packet, attachment: StackPort): void {
    const port = this.byAttachment.get(attachment);
    if (port === undefined) {
      this.stats.dropped.portRemoved = (this.stats.dropped.portRemoved ?? 0) + 1;
      pkt.release();
      return;
    }
    this.stats.rxFrames++;
    port.stats.rxFrames++;
    port.stats.rxBytes += pkt.length;
    if (pkt.length < ETH.HEADER_LEN) return this.dropPkt(port, pkt, 'runt');
    const src = readMac(pkt.data, ETH.SRC);
    if (isMulticast(src) || src === 0) return this.dropPkt(port, pkt, 'badSource');
    if (port.state === 'disabled') return this.dropPkt(port, pkt, 'portDisabled');
    // "insert into forwarding database after filtering to avoid spoofing": learning trusts
    // whatever source address the frame carries.
    this.fdb.update(port, src);
    const plan = this.planIn(port, pkt, src);
    if (plan.kind === 'drop') return this.dropPkt(port, pkt, plan.drop!);
    this.fanOut(pkt, plan, port);
  }

  /**
   * Where a frame from `port` goes (br_handle_frame_finish): broadcast and multicast to every
   * other forwarding port and up to the host; a local address up only; a known address out of
   * its port unless that is the ingress port; an unknown one flooded. Pure, so that its cost
   * can be charged before the frame is handled; it assumes the frame's own source has been
   * learned on `port`.
   */
  private planIn(port: BridgePort, pkt: Packet, src: MacAddr): Plan {
    if (isMulticast(src) || src === 0) return { targets: [], up: false, kind: 'drop', drop: 'badSource', unknown: false };
    if (port.state === 'disabled') return { targets: [], up: false, kind: 'drop', drop: 'portDisabled', unknown: false };
    const dst = readMac(pkt.data, ETH.DST);
    if (Math.floor(dst / 16) === MAC_BRIDGE_GROUP / 16 && dst !== MAC_BRIDGE_GROUP) {
      // 01:80:C2:00:00:01-0F (pause, LACP, 802.1X...) are never forwarded (group_fwd_mask 0);
      // the bridge group address itself is forwarded as multicast when STP is off.
      return { targets: [], up: false, kind: 'drop', drop: 'linkLocal', unknown: false };
    }
    if (dst === MAC_BROADCAST || isMulticast(dst)) return { targets: this.floodTargets(port), up: true, kind: 'flood', unknown: false };
    const e = this.fdb.get(dst);
    // A frame to its own source: once learned, that address is behind the ingress port.
    if (dst === src && (e === undefined || !e.isLocal)) return { targets: [], up: false, kind: 'drop', drop: 'hairpin', unknown: false };
    if (e === undefined) return { targets: this.floodTargets(port), up: false, kind: 'flood', unknown: true };
    if (e.isLocal) return { targets: [], up: true, kind: 'local', unknown: false };
    const to = e.port!;
    if (to === port) return { targets: [], up: false, kind: 'drop', drop: 'hairpin', unknown: false };
    if (to.state !== 'forwarding') return { targets: [], up: false, kind: 'drop', drop: 'noPort', unknown: false };
    return { targets: [to], up: false, kind: 'forward', unknown: false };
  }

  /** br_flood's should_deliver: every forwarding port but the ingress one. */
  private floodTargets(ingress: BridgePort | null): BridgePort[] {
    return this.portList.filter((p) => p !== ingress && p.state === 'forwarding');
  }

  /** A shared frame the port would complete the checksum of in place needs a private copy first (skb_checksum_help on a clone). */
  private needsPrivate(pkt: Packet, to: BridgePort): boolean {
    return pkt.csum === CSUM_PARTIAL && pkt.gsoType === GSO_NONE && !to.attachment.features.txCsum;
  }

  /** The host's stack, when the bridge device is an interface of the bridge's own stack. */
  private upperInterface(): Interface | null {
    const u = this.dev.upper;
    return u instanceof Interface && u.stack === this.stack ? u : null;
  }

  /** Cost of the copies and of passing up (the frame's first copy is in net.bridge.frame / net.bridge.xmit). */
  private fanOutCost(pkt: Packet, plan: Plan): number {
    const n = plan.targets.length + (plan.up ? 1 : 0);
    let ns = Math.max(0, n - 1) * this.costs.floodCopy;
    if (n > 1) for (const t of plan.targets) if (this.needsPrivate(pkt, t)) ns += perBytes(pkt.length, this.costs.copyPerByte);
    if (plan.up && this.upperInterface() !== null) ns += this.stack.rxCost(pkt);
    return ns;
  }

  /**
   * Sends the frame where `plan` says: clones to all targets but the last (deliver_clone),
   * the frame itself to the last, or up to the host when it goes up as well.
   */
  private fanOut(pkt: Packet, plan: Plan, ingress: BridgePort | null): void {
    const n = plan.targets.length + (plan.up ? 1 : 0);
    if (n === 0) return this.dropPkt(ingress, pkt, 'noPort');
    if (plan.kind === 'flood') {
      this.stats.flooded++;
      if (plan.unknown) this.stats.floodedUnknown++;
      this.stats.floodCopies += plan.targets.length;
    } else if (plan.kind === 'forward') this.stats.forwarded++;
    let left = n;
    for (const t of plan.targets) {
      left--;
      let out: Packet;
      if (n > 1 && this.needsPrivate(pkt, t)) {
        out = privateCopy(pkt, this.stack);
        this.stats.unclones++;
      } else out = left === 0 ? pkt : cloneOf(pkt);
      this.egress(t, out);
      if (left === 0 && out !== pkt) pkt.release();
    }
    if (plan.up) this.passUp(pkt);
  }

  /** br_pass_frame_up: netif_receive_skb on the bridge device, in the same softirq. */
  private passUp(pkt: Packet): void {
    const u = this.dev.upper;
    if (u === null) return this.dropPkt(null, pkt, 'noUpper');
    this.stats.localIn++;
    const iface = this.upperInterface();
    if (iface !== null) this.stack.receiveOn(iface, pkt);
    else u.receive(pkt); // an upper of another kind (a wrapper): its netif_rx backlog
  }

  /** br_forward_finish / br_dev_queue_push_xmit: dev_queue_xmit on the port. */
  private egress(to: BridgePort, pkt: Packet): void {
    if (pkt.gsoType === GSO_NONE && pkt.length > to.dev.mtu + ETH.HEADER_LEN) return this.dropPkt(to, pkt, 'tooBig');
    const len = pkt.length;
    if (!to.attachment.xmit(pkt)) {
      this.drop(to, 'queueFull', 1);
      return;
    }
    to.stats.txFrames++;
    to.stats.txBytes += len;
  }

  // ---- transmit from the host: br_dev_xmit ----

  /** @internal BridgeDevice.xmit: charged `net.bridge.xmit` (and copies), then forwarded in order. */
  devXmit(pkt: Packet): void {
    this.stats.localOut++;
    const e: XmitEntry = { pkt, done: false };
    this.txFifo.push(e);
    const plan = this.planOut(pkt);
    this.stack.cpu.exec(this.costs.xmit + this.fanOutCost(pkt, plan), 'softirq').addCallback(() => {
      e.done = true;
      this.drainXmit();
    });
  }

  private drainXmit(): void {
    for (let e = this.txFifo.peek(); e !== undefined && e.done; e = this.txFifo.peek()) {
      this.txFifo.shift();
      const plan = this.planOut(e.pkt);
      if (plan.kind === 'drop') this.dropPkt(null, e.pkt, plan.drop!);
      else this.fanOut(e.pkt, plan, null);
    }
  }

  /**
   * br_dev_xmit: broadcast, multicast and unknown unicast to every forwarding port; a known
   * address out of its port (a port's own address too: br_deliver to that port); the
   * bridge's own address nowhere.
   */
  private planOut(pkt: Packet): Plan {
    if (pkt.length < ETH.HEADER_LEN) return { targets: [], up: false, kind: 'drop', drop: 'runt', unknown: false };
    const dst = readMac(pkt.data, ETH.DST);
    if (dst === MAC_BROADCAST || isMulticast(dst)) return { targets: this.floodTargets(null), up: false, kind: 'flood', unknown: false };
    const e = this.fdb.get(dst);
    if (e === undefined) return { targets: this.floodTargets(null), up: false, kind: 'flood', unknown: true };
    if (e.port === null || e.port.state !== 'forwarding')
      return { targets: [], up: false, kind: 'drop', drop: e.port === null ? 'toSelf' : 'noPort', unknown: false };
    e.used = this.stack.env.now;
    return { targets: [e.port], up: false, kind: 'forward', unknown: false };
  }

  private dropPkt(port: BridgePort | null, pkt: Packet, why: BridgeDropReason): void {
    pkt.release();
    this.drop(port, why, 1);
  }

  private drop(port: BridgePort | null, why: BridgeDropReason, n: number): void {
    this.stats.dropped[why] = (this.stats.dropped[why] ?? 0) + n;
    if (port !== null) port.stats.dropped[why] = (port.stats.dropped[why] ?? 0) + n;
  }

  /** `brctl showmacs`: port name, address, local, age (ns). */
  showMacs(): { port: string; mac: string; isLocal: boolean; age: number }[] {
    const now = this.stack.env.now;
    return this.fdb
      .all()
      .filter((e) => e.isStatic || now < e.updated + this.fdb.ageing)
      .map((e) => ({ port: e.port?.name ?? this.name, mac: formatMac(e.mac), isLocal: e.isLocal, age: now - e.updated }));
  }
}

/** skb_clone: another packet over the same bytes (buffers held once more), with the same metadata and no destructor. */
export function cloneOf(pkt: Packet): Packet {
  let c: Packet;
  if (pkt.frags !== null) {
    for (const f of pkt.frags) f.buf.hold();
    c = new Packet(pkt.data);
    c.frags = pkt.frags.map((f) => ({ ...f }));
  } else c = new Packet(pkt.data, pkt.buf === null ? null : pkt.buf.hold(), pkt.bufOffset);
  copyMeta(pkt, c);
  return c;
}

/** skb_copy: the frame's bytes in a new buffer of the stack's memory. */
function privateCopy(pkt: Packet, stack: Stack): Packet {
  const c = Packet.alloc(stack.memory, pkt.length);
  c.data.set(pkt.data);
  copyMeta(pkt, c);
  return c;
}

function copyMeta(from: Packet, to: Packet): void {
  to.l3 = from.l3;
  to.l4 = from.l4;
  to.csum = from.csum;
  to.csumStart = from.csumStart;
  to.csumOffset = from.csumOffset;
  to.gsoType = from.gsoType;
  to.gsoSize = from.gsoSize;
  to.iface = from.iface;
}
