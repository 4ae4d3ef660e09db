import { Deque, tracePoint, type Env, type ExecContext, type Executor, type SimEvent } from '../sim/index.js';
import { NetRxSoftirq } from './softirq.js';
import type { Profile } from '../profile/index.js';
import { stackCosts, type StackCosts } from './costs.js';
import { NapiTap, fixFeatures, type DeviceFeatures, type DeviceUpper, type Napi, type NetDevice } from './iface/device.js';
import { Hooks } from './iface/hooks.js';
import { LoopbackDevice } from './iface/loopback.js';
import { NeighbourTable } from './iface/neighbour.js';
import { CSUM_NONE, GSO_NONE, HEAP_MEMORY, Packet, type PacketMemory } from './iface/packet.js';
import { RouteTable } from './iface/route.js';
import { TxQueue } from './iface/tx-queue.js';
import { fragmentIpv4 } from './ip/fragment.js';
import { Reassembler } from './ip/reassembly.js';
import { IcmpLayer } from './socket/icmp.js';
import { TcpLayer } from './socket/tcp-layer.js';
import { UdpLayer } from './socket/udp.js';
import { IPV4_BROADCAST, MAC_BROADCAST, formatIpv4, inSubnet, ipv4, type Ipv4Addr, type MacAddr } from './wire/addr.js';
import { ARP, ARP_REPLY, ARP_REQUEST, emitArp, parseArp } from './wire/arp.js';
import { ETH, ETHERTYPE_ARP, ETHERTYPE_IPV4, emitEthernet } from './wire/ethernet.js';
import { WireError } from './wire/error.js';
import { DEFAULT_TTL, IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, emitIpv4, parseIpv4, type Ipv4Repr } from './wire/ipv4.js';

/** Trace points at the stack's boundaries with its devices. */
export const stackTx = tracePoint<{ stack: string; dev: string; pkt: Packet }>('stackTx');
export const stackRx = tracePoint<{ stack: string; dev: string; pkt: Packet }>('stackRx');

export interface StackStats {
  ipIn: number;
  ipOut: number;
  /** Malformed frames and packets, by layer:code (e.g. "ipv4:badChecksum"). */
  malformed: Record<string, number>;
  notForUs: number;
  noRoute: number;
  unknownProtocol: number;
  hookDrops: number;
  hookStolen: number;
  fragmentsOut: number;
  /** Packets with DF too big for their device, dropped (FragFails). */
  fragFails: number;
}

export interface InterfaceConfig {
  address: Ipv4Addr;
  prefix: number;
}

/** A device attached to a stack, with its address, transmit queue and neighbour table. */
export class Interface implements DeviceUpper {
  readonly txq: TxQueue;
  readonly neighbours: NeighbourTable;
  /** The device's features as the stack uses them (netdev_fix_features applied). */
  readonly features: DeviceFeatures;
  /** Frames polled from this device arrived on this interface. */
  private readonly napis = new NapiTap((p) => (p.iface = this));

  constructor(
    readonly stack: Stack,
    private device: NetDevice,
    readonly address: Ipv4Addr,
    readonly prefix: number,
  ) {
    const dev = device;
    const c = stack.costs;
    this.features = fixFeatures(dev.features);
    this.txq = new TxQueue(dev, this.features, c.txQueueLen, stack.cpu, { gsoSegment: c.gsoSegment, csumPerByte: c.csumPerByte }, stack.memory);
    this.neighbours = new NeighbourTable(
      stack.env,
      { retrans: c.arpRetrans, maxProbes: c.arpMaxProbes, reachable: c.arpReachable, unresQueueBytes: c.arpUnresQueueBytes },
      (ip) => this.sendArp(ARP_REQUEST, MAC_BROADCAST, 0, ip),
      (pkt, mac) => this.transmit(pkt, mac),
    );
    dev.attach(this);
  }

  get cpu(): Executor {
    return this.stack.cpu;
  }

  get memory(): PacketMemory {
    return this.stack.memory;
  }

  get name(): string {
    return this.dev.name;
  }

  get dev(): NetDevice {
    return this.device;
  }

  /**
   * The interface's driver is now `dev` — the same net_device with a new backend under it, as
   * netfront's after a guest resumes on another host (netfront_resume, then a new connection
   * to the new backend). It must have the same MAC and features (the stack built its packets
   * for them). Packets waiting in the queue go to the new device in order.
   */
  replaceDevice(dev: NetDevice): void {
    const f = fixFeatures(dev.features);
    if (dev.mac !== this.device.mac || JSON.stringify(f) !== JSON.stringify(this.features) || dev.mtu !== this.device.mtu) {
      throw new Error(
        `${this.stack.name}: interface ${this.name}: the replacement device differs (MAC, MTU or features) from the one the stack built for`,
      );
    }
    this.device = dev;
    dev.attach(this);
    this.txq.replaceDevice(dev);
  }

  /** Sends a packet whose IP header is complete to a link-layer address. */
  transmit(pkt: Packet, dst: MacAddr): void {
    emitEthernet({ dst, src: this.dev.mac, ethertype: ETHERTYPE_IPV4 }, pkt.data, 0);
    if (this.stack.env.trace.enabled(stackTx)) this.stack.env.trace.emit(stackTx, { stack: this.stack.name, dev: this.dev.name, pkt });
    this.txq.enqueue(pkt);
  }

  /** Neighbour output: resolves `nextHop` unless the device needs no link-layer address. */
  output(pkt: Packet, nextHop: Ipv4Addr): void {
    if (this.features.noArp) this.transmit(pkt, 0);
    else this.neighbours.output(pkt, nextHop);
  }

  receive(pkt: Packet): void {
    pkt.iface = this;
    this.stack.softirq.netifRx(pkt);
  }

  napiSchedule(napi: Napi): void {
    this.stack.softirq.schedule(this.napis.of(napi));
  }

  wake(): void {
    this.txq.wake();
  }

  sendArp(op: typeof ARP_REQUEST | typeof ARP_REPLY, dstMac: MacAddr, targetMac: MacAddr, targetIp: Ipv4Addr): void {
    const pkt = Packet.alloc(this.stack.memory, ETH.HEADER_LEN + ARP.LEN);
    emitEthernet({ dst: dstMac, src: this.dev.mac, ethertype: ETHERTYPE_ARP }, pkt.data, 0);
    emitArp({ op, senderMac: this.dev.mac, senderIp: this.address, targetMac, targetIp }, pkt.data, ETH.HEADER_LEN);
    this.txq.enqueue(pkt);
  }
}

/**
 * What takes the frames of a device that is a port of an upper device instead of the
 * stack's protocols: Linux's netdev rx_handler (netdev_rx_handler_register), which
 * __netif_receive_skb calls before any protocol sees the frame. The bridge is one.
 */
export interface RxHandler {
  /**
   * CPU time of taking `pkt` in the receive softirq, charged before `handle` runs: what
   * netif_receive_skb costs up to the handler plus the handler's own work (and, for a frame
   * it will pass up to this stack, the stack's receive cost: see `Stack.rxCost`).
   */
  rxCost(pkt: Packet, port: StackPort): number;
  /** Takes the frame (RX_HANDLER_CONSUMED): from now on the handler owns it and releases it or passes it on. */
  handle(pkt: Packet, port: StackPort): void;
}

/** Counters of a port's frames that found no handler. */
export interface StackPortStats {
  /** Frames polled from the device after it was detached, dropped (no protocol of the device takes them). */
  rxDetached: number;
}

/**
 * A device of this stack attached as a port of an upper device (`Stack.attachPort`): the
 * device's NAPI contexts are polled in this stack's receive softirq like an interface's,
 * but its frames go to the handler instead of IP; frames sent out of the port go through
 * the port's own transmit queue (dev_queue_xmit on the port device), which the device's
 * `wake()` restarts.
 */
export class StackPort implements DeviceUpper {
  readonly txq: TxQueue;
  /** The device's features as a transmitter (netdev_fix_features applied). */
  readonly features: DeviceFeatures;
  readonly stats: StackPortStats = { rxDetached: 0 };
  private live = true;
  /** Frames polled from this device arrived on this port. */
  private readonly napis = new NapiTap((p) => (p.iface = this));

  constructor(
    readonly stack: Stack,
    readonly dev: NetDevice,
    readonly handler: RxHandler,
  ) {
    const c = stack.costs;
    this.features = fixFeatures(dev.features);
    this.txq = new TxQueue(dev, this.features, c.txQueueLen, stack.cpu, { gsoSegment: c.gsoSegment, csumPerByte: c.csumPerByte }, stack.memory);
    dev.attach(this);
  }

  get cpu(): Executor {
    return this.stack.cpu;
  }

  get memory(): PacketMemory {
    return this.stack.memory;
  }

  get name(): string {
    return this.dev.name;
  }

  /** False once detached (`Stack.detachPort`). */
  get attached(): boolean {
    return this.live;
  }

  /** dev_queue_xmit on the port: a frame with its Ethernet header; false (dropped, counted in txq.stats) when the queue is full. */
  xmit(pkt: Packet): boolean {
    if (this.stack.env.trace.enabled(stackTx)) this.stack.env.trace.emit(stackTx, { stack: this.stack.name, dev: this.dev.name, pkt });
    return this.txq.enqueue(pkt);
  }

  receive(pkt: Packet): void {
    pkt.iface = this;
    this.stack.softirq.netifRx(pkt);
  }

  napiSchedule(napi: Napi): void {
    this.stack.softirq.schedule(this.napis.of(napi));
  }

  wake(): void {
    this.txq.wake();
  }

  /** @internal Stack.detachPort. */
  detach(): number {
    this.live = false;
    return this.txq.purge();
  }

  /** @internal Receive cost of a frame polled from this port. */
  rxCost(pkt: Packet): number {
    // A frame of a detached port is dropped before any work is modelled (rare: frames in the
    // device's ring when it left).
    return this.live ? this.handler.rxCost(pkt, this) : 0;
  }

  /** @internal */
  input(pkt: Packet): void {
    if (this.stack.env.trace.enabled(stackRx)) this.stack.env.trace.emit(stackRx, { stack: this.stack.name, dev: this.dev.name, pkt });
    if (this.live) this.handler.handle(pkt, this);
    else {
      this.stats.rxDetached++;
      pkt.release();
    }
  }
}

export interface StackOptions {
  env: Env;
  /** The guest CPU the stack's work is charged to. */
  cpu: Executor;
  profile: Profile;
  name: string;
  /** Where its packet buffers are: the guest's own pages under a hypervisor; default plain memory. */
  memory?: PacketMemory | undefined;
}

interface TxEntry {
  pkt: Packet;
  ctx: ExecContext;
  /** The output cost charged so far has been spent. */
  done: boolean;
  /** Post-routing hooks have run. */
  hooked: boolean;
  /** The fragments it leaves as, when it exceeds the device's MTU. */
  frags: Packet[] | null;
}

/**
 * One guest's network stack: interfaces (loopback plus attached devices), routing,
 * neighbours, hooks, IPv4 with fragmentation and reassembly, and TCP/UDP/ICMP sockets. It
 * charges its work to the guest CPU from the cost profile: protocol output per packet in
 * the caller's context, receive processing per packet in softirq context, and the
 * checksums and software GSO the device does not offload.
 */
export class Stack {
  readonly env: Env;
  readonly cpu: Executor;
  readonly costs: StackCosts;
  readonly name: string;
  readonly memory: PacketMemory;
  readonly hooks = new Hooks();
  readonly routes = new RouteTable<Interface>();
  readonly interfaces: Interface[] = [];
  readonly lo: Interface;
  readonly reassembler: Reassembler;
  readonly tcp: TcpLayer;
  readonly udp: UdpLayer;
  readonly icmp: IcmpLayer;
  readonly stats: StackStats = {
    ipIn: 0,
    ipOut: 0,
    malformed: {},
    notForUs: 0,
    noRoute: 0,
    unknownProtocol: 0,
    hookDrops: 0,
    hookStolen: 0,
    fragmentsOut: 0,
    fragFails: 0,
  };
  private ident = 0;
  private readonly txFifo = new Deque<TxEntry>();
  /** Receive processing: NAPI polling, the netif_rx backlog, ksoftirqd. */
  readonly softirq: NetRxSoftirq;
  /** Devices attached as ports of an upper device (attachPort). */
  private readonly ports = new Map<NetDevice, StackPort>();

  constructor(opts: StackOptions) {
    this.env = opts.env;
    this.cpu = opts.cpu;
    this.name = opts.name;
    this.memory = opts.memory ?? HEAP_MEMORY;
    this.costs = stackCosts(opts.profile);
    this.reassembler = new Reassembler(this.env, this.costs.fragTimeout, this.costs.fragHighThresh, this.costs.fragLowThresh);
    this.lo = this.addInterface(new LoopbackDevice(), { address: ipv4('127.0.0.1'), prefix: 8 });
    this.tcp = new TcpLayer(this);
    this.udp = new UdpLayer(this);
    this.icmp = new IcmpLayer(this);
    const c = this.costs;
    this.softirq = new NetRxSoftirq(
      this.env,
      this.cpu,
      {
        weight: c.napiWeight,
        budget: c.netdevBudget,
        netRxTime: c.netRxTime,
        maxTime: c.softirqMaxTime,
        maxRestart: c.softirqMaxRestart,
        maxBacklog: c.maxBacklog,
        wakeup: c.wakeup,
      },
      (pkt) => (pkt.iface instanceof StackPort ? pkt.iface.rxCost(pkt) : this.rxCost(pkt)),
      (pkt) => (pkt.iface instanceof StackPort ? pkt.iface.input(pkt) : this.input(pkt)),
    );
  }

  /**
   * Attaches a device as a port of an upper device (a bridge): netdev_rx_handler_register.
   * Its received frames are taken in this stack's receive softirq, charged
   * `handler.rxCost` and handed to `handler.handle` instead of IP.
   */
  attachPort(dev: NetDevice, handler: RxHandler): StackPort {
    if (this.interfaces.some((i) => i.dev === dev) || this.ports.has(dev))
      throw new Error(`${this.name}: ${dev.name} is already attached to this stack`);
    const port = new StackPort(this, dev, handler);
    this.ports.set(dev, port);
    return port;
  }

  /**
   * netdev_rx_handler_unregister and qdisc_reset: the port's queued frames are released;
   * returns how many. Frames the device delivers afterwards are dropped (`port.stats.rxDetached`).
   */
  detachPort(port: StackPort): number {
    if (this.ports.get(port.dev) !== port) throw new Error(`${this.name}: ${port.name} is not a port of this stack`);
    this.ports.delete(port.dev);
    return port.detach();
  }

  /**
   * netif_receive_skb of a frame that an upper device hands to its interface from inside the
   * receive softirq (the bridge's br_pass_frame_up): ARP or IP input now, and the stack is
   * done with the packet afterwards. Its cost, `rxCost(pkt)`, is the caller's to charge (with
   * its own work, before this call).
   */
  receiveOn(iface: Interface, pkt: Packet): void {
    if (iface.stack !== this) throw new Error(`${this.name}: interface ${iface.name} belongs to ${iface.stack.name}`);
    pkt.iface = iface;
    this.input(pkt);
  }

  /** Attaches a device with an address; adds the route to its connected subnet. */
  addInterface(dev: NetDevice, cfg: InterfaceConfig): Interface {
    const iface = new Interface(this, dev, cfg.address, cfg.prefix);
    this.interfaces.push(iface);
    this.routes.add({ dest: cfg.address, prefix: cfg.prefix, iface });
    return iface;
  }

  /** A default route through `gateway`, reached on `iface`. */
  setDefaultRoute(gateway: Ipv4Addr, iface: Interface): void {
    this.routes.remove((r) => r.prefix === 0);
    this.routes.add({ dest: 0, prefix: 0, gateway, iface });
  }

  isLocal(a: Ipv4Addr): boolean {
    for (const i of this.interfaces) if (i.address === a) return true;
    return false;
  }

  /** Route to `dst`: local addresses go through `lo` (Linux's local table). */
  route(dst: Ipv4Addr): { iface: Interface; nextHop: Ipv4Addr; src: Ipv4Addr } | undefined {
    if (this.isLocal(dst) || inSubnet(dst, this.lo.address, this.lo.prefix)) return { iface: this.lo, nextHop: dst, src: dst };
    const r = this.routes.lookup(dst);
    if (r === undefined) return undefined;
    return { iface: r.iface, nextHop: r.nextHop, src: r.iface.address };
  }

  nextIdent(): number {
    this.ident = (this.ident + 1) & 0xffff;
    return this.ident;
  }

  /** CPU work on the guest CPU. */
  charge(ns: number, ctx: ExecContext): SimEvent<void> {
    return this.cpu.exec(ns, ctx);
  }

  /**
   * Sends an IPv4 packet built by a protocol (`pkt.iface`/`pkt.nextHop` from route()):
   * charges the per-packet output cost in `ctx` (plus `extra` ns, e.g. a software checksum),
   * then, in submission order, runs the post-routing hooks on the whole datagram (ip_output's
   * NF_INET_POST_ROUTING) and, only if it is to leave by a device whose MTU it exceeds,
   * fragments it (ip_finish_output), each further fragment costing the output path again.
   * Order is kept across contexts, as the socket lock keeps it in Linux (softirq work on a
   * socket owned by a task waits).
   */
  ipOutput(pkt: Packet, ctx: ExecContext, extra = 0): void {
    const e: TxEntry = { pkt, ctx, done: false, hooked: false, frags: null };
    this.txFifo.push(e);
    this.cpu.exec(this.costs.txPacket + extra, ctx).addCallback(() => {
      e.done = true;
      this.drainTx();
    });
  }

  private drainTx(): void {
    for (let e = this.txFifo.peek(); e !== undefined && e.done; e = this.txFifo.peek()) {
      const pkt = e.pkt;
      const iface = pkt.iface as Interface;
      if (!e.hooked) {
        e.hooked = true;
        this.stats.ipOut++;
        if (this.hooks.postRouting.length > 0 && this.postRouting(pkt, iface) !== 'accept') {
          this.txFifo.shift();
          continue;
        }
        if (pkt.gsoType === GSO_NONE && pkt.length - pkt.l3 > iface.dev.mtu) {
          if ((pkt.data[pkt.l3 + IP.FLAGS_FRAG]! & 0x40) !== 0) {
            // DF on a packet too big for the device (ip_fragment: FRAG_NEEDED, dropped).
            this.stats.fragFails++;
            this.txFifo.shift();
            pkt.release();
            continue;
          }
          e.frags = fragmentIpv4(pkt, iface.dev.mtu, this.memory);
          this.stats.fragmentsOut += e.frags.length;
          if (e.frags.length > 1) {
            e.done = false;
            this.cpu.exec((e.frags.length - 1) * this.costs.txPacket, e.ctx).addCallback(() => {
              e.done = true;
              this.drainTx();
            });
            return; // later packets wait behind the fragments
          }
        }
      }
      this.txFifo.shift();
      if (e.frags === null) iface.output(pkt, pkt.nextHop);
      else for (const f of e.frags) iface.output(f, f.nextHop);
    }
  }

  private postRouting(pkt: Packet, iface: Interface): 'accept' | 'dropped' {
    const v = this.hooks.runPostRouting(pkt, pkt.nextHop, iface.dev);
    if (v === 'drop') {
      this.stats.hookDrops++;
      pkt.release();
    } else if (v === 'stolen') this.stats.hookStolen++;
    return v === 'accept' ? 'accept' : 'dropped';
  }

  /** Receive cost of a frame: the per-packet path, and verifying its checksum in software when the device did not. */
  rxCost(pkt: Packet): number {
    let ns = this.costs.rxPacket;
    const d = pkt.data;
    if (pkt.csum === CSUM_NONE && d.length >= ETH.HEADER_LEN + IP.HEADER_LEN && d[12] === 0x08 && d[13] === 0x00) {
      const proto = d[pkt.l3 + IP.PROTOCOL];
      if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
        const l4len = ((d[pkt.l3 + IP.LENGTH]! << 8) | d[pkt.l3 + IP.LENGTH + 1]!) - (d[pkt.l3]! & 15) * 4;
        if (l4len > 0) ns += Math.round(l4len * this.costs.csumPerByte);
      }
    }
    return ns;
  }

  malformed(e: WireError): void {
    const k = `${e.layer}:${e.code}`;
    this.stats.malformed[k] = (this.stats.malformed[k] ?? 0) + 1;
  }

  /** Receive processing of one frame; the stack is done with the packet afterwards (kfree_skb / consume_skb). */
  private input(pkt: Packet): void {
    if (!this.dispatch(pkt)) pkt.release();
  }

  /** True if a pre-routing hook took the packet (it releases it then). */
  private dispatch(pkt: Packet): boolean {
    const iface = pkt.iface as Interface;
    const d = pkt.data;
    if (this.env.trace.enabled(stackRx)) this.env.trace.emit(stackRx, { stack: this.name, dev: iface.dev.name, pkt });
    if (d.length < ETH.HEADER_LEN) {
      this.malformed(new WireError('ethernet', 'truncated', 'short frame'));
      return false;
    }
    const type = (d[12]! << 8) | d[13]!;
    if (type === ETHERTYPE_ARP) this.arpInput(pkt, iface);
    else if (type === ETHERTYPE_IPV4) return this.ipInput(pkt, iface);
    else this.stats.unknownProtocol++;
    return false;
  }

  private arpInput(pkt: Packet, iface: Interface): void {
    const r = parseArp(pkt.data, ETH.HEADER_LEN, pkt.length - ETH.HEADER_LEN);
    if (r instanceof WireError) {
      this.malformed(r);
      return;
    }
    const forUs = r.targetIp === iface.address;
    // RFC 826 "Packet Reception": update an existing entry; create one if we are the target.
    iface.neighbours.confirm(r.senderIp, r.senderMac, forUs);
    if (forUs && r.op === ARP_REQUEST) iface.sendArp(ARP_REPLY, r.senderMac, r.senderMac, r.senderIp);
  }

  private ipInput(pkt: Packet, iface: Interface): boolean {
    pkt.l3 = ETH.HEADER_LEN;
    const ip: Ipv4Repr | WireError = parseIpv4(pkt.data, pkt.l3, pkt.length - pkt.l3);
    if (ip instanceof WireError) {
      this.malformed(ip);
      return false;
    }
    this.stats.ipIn++;
    pkt.l4 = pkt.l3 + ip.headerLen;
    if (this.hooks.preRouting.length > 0) {
      const v = this.hooks.runPreRouting(pkt, iface.dev);
      if (v === 'drop') {
        this.stats.hookDrops++;
        return false;
      }
      if (v === 'stolen') {
        this.stats.hookStolen++;
        return true;
      }
    }
    if (!this.isLocal(ip.dst) && ip.dst !== IPV4_BROADCAST && !inSubnet(ip.dst, this.lo.address, this.lo.prefix)) {
      this.stats.notForUs++; // a guest does not forward (ip_forward = 0)
      return false;
    }
    if (ip.moreFragments || ip.fragOffset > 0) {
      const whole = this.reassembler.add(pkt, ip, this.memory);
      if (whole === null) return false;
      whole.iface = iface;
      // No device validates a fragment's transport checksum: the datagram's is verified now.
      whole.csum = CSUM_NONE;
      const again = parseIpv4(whole.data, whole.l3, whole.length - whole.l3);
      if (again instanceof WireError) {
        this.malformed(again);
        whole.release();
        return false;
      }
      this.deliver(whole, again);
      whole.release();
      return false;
    }
    this.deliver(pkt, ip);
    return false;
  }

  private deliver(pkt: Packet, ip: Ipv4Repr): void {
    switch (ip.protocol) {
      case IPPROTO_TCP:
        this.tcp.input(pkt, ip);
        break;
      case IPPROTO_UDP:
        this.udp.input(pkt, ip);
        break;
      case IPPROTO_ICMP:
        this.icmp.input(pkt, ip);
        break;
      default:
        this.stats.unknownProtocol++;
    }
  }

  /**
   * Allocates a frame with room for Ethernet + IPv4 headers and writes the IPv4 header, with
   * DF as the sending socket's path-MTU mode gives it: TCP always; UDP and ping sockets
   * (IP_PMTUDISC_WANT, Linux's default) when the datagram fits the route's MTU
   * (__ip_make_skb); the kernel's ICMP socket (echo replies) never (IP_PMTUDISC_DONT).
   */
  buildIp(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, l4Len: number, df: boolean): Packet {
    const pkt = Packet.alloc(this.memory, ETH.HEADER_LEN + IP.HEADER_LEN + l4Len);
    pkt.l3 = ETH.HEADER_LEN;
    pkt.l4 = ETH.HEADER_LEN + IP.HEADER_LEN;
    emitIpv4(
      {
        src,
        dst,
        protocol,
        ttl: DEFAULT_TTL,
        tos: 0,
        ident: this.nextIdent(),
        dontFragment: df,
        moreFragments: false,
        fragOffset: 0,
        payloadLen: l4Len,
      },
      pkt.data,
      ETH.HEADER_LEN,
    );
    return pkt;
  }

  toString(): string {
    return `stack ${this.name} (${this.interfaces.map((i) => `${i.name} ${formatIpv4(i.address)}/${i.prefix}`).join(', ')})`;
  }
}
