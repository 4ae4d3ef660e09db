import type { Env, Executor, Rng, Time } from '../../sim/index.js';
import { Deque } from '../../sim/index.js';
import type { MacAddr } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import { IP, IPPROTO_TCP, IPPROTO_UDP, parseIpv4 } from '../wire/ipv4.js';
import { l4ChecksumValid } from '../wire/l4-checksum.js';
import { NO_OFFLOADS, fixFeatures, type DeviceFeatures, type DeviceUpper, type Napi, type NetDevice } from './device.js';
import { gsoSegment } from './gso.js';
import { lroMerge } from './lro.js';
import { CSUM_NONE, CSUM_UNNECESSARY, GSO_NONE, HEAP_MEMORY, Packet } from './packet.js';

export interface DirectLinkOptions {
  /** Line rate, bits per second. */
  bandwidth: number;
  /** One-way propagation delay, ns. */
  delay: Time;
  /** Probability that a frame is lost (seeded, per direction). */
  loss?: number;
  /** Probability that a frame is held back by `reorderDelay` so that later frames overtake it. */
  reorder?: number;
  reorderDelay?: Time;
  /** Extra bytes on the wire per frame (preamble, FCS, inter-frame gap: 24 for Ethernet); default 0. */
  frameOverhead?: number;
  /** TX descriptors per end: packets accepted but not yet on the wire; default 256. */
  txRing?: number;
  /** RX descriptors per end: frames received and not yet polled; more are dropped (counted). */
  rxRing: number;
  mtu?: number;
  /**
   * Offloads of both ends (netdev_fix_features applied). TX checksum: partial checksums
   * cross the wire unfinished and arrive trusted, as on Linux veth. RX checksum: the NIC
   * verifies complete checksums of unfragmented TCP and UDP frames and marks the good ones
   * validated. TSO: the NIC cuts a GSO packet into MSS frames on the wire. LRO: the NIC
   * merges the in-order TCP frames of a flow waiting in its RX ring into one packet when
   * polled. Default: none.
   */
  features?: Partial<DeviceFeatures>;
  /** Per-interrupt cost of the receiving NIC's handler on the receiving guest's CPU, ns. */
  irqCost: Time;
}

export interface LinkStats {
  /** Frames that left on the wire (a TSO packet counts as its segments). */
  frames: number;
  bytes: number;
  lost: number;
  reordered: number;
  /** Frames the receiving end dropped because its RX ring was full (rx_missed_errors). */
  rxDropped: number;
  /** Interrupts the receiving end raised. */
  irqs: number;
  /** Frames merged into a preceding one by LRO. */
  lroMerged: number;
}

/**
 * An ideal wire between two stacks, for testing the stack before the Xen I/O paths exist:
 * each direction serializes frames at `bandwidth`, delivers them `delay` later, and may lose
 * or hold back frames with a seeded generator (`env.rng.fork('link:<name>:<dir>')`). The
 * receiving end is a NAPI NIC: frames land in an RX ring of `rxRing` descriptors; the first
 * raises an interrupt on its guest's CPU (context 'irq') whose handler schedules the NAPI
 * poll and masks the interrupt; the stack's softirq polls the ring, and only when a poll
 * finds it empty is the interrupt unmasked (raised again at once if frames came meanwhile).
 */
export class DirectLink {
  readonly a: LinkEnd;
  readonly b: LinkEnd;

  constructor(env: Env, name: string, macA: MacAddr, macB: MacAddr, opts: DirectLinkOptions) {
    if (!(opts.bandwidth > 0)) throw new RangeError(`link ${name}: bandwidth ${opts.bandwidth} must be positive`);
    if (!(Number.isInteger(opts.rxRing) && opts.rxRing > 0)) throw new RangeError(`link ${name}: rxRing ${opts.rxRing} must be a positive integer`);
    this.a = new LinkEnd(env, `${name}.a`, macA, opts, env.rng.fork(`link:${name}:a->b`));
    this.b = new LinkEnd(env, `${name}.b`, macB, opts, env.rng.fork(`link:${name}:b->a`));
    this.a.peer = this.b;
    this.b.peer = this.a;
  }
}

export class LinkEnd implements NetDevice {
  readonly mtu: number;
  readonly features: DeviceFeatures;
  peer: LinkEnd | null = null;
  readonly stats: LinkStats = { frames: 0, bytes: 0, lost: 0, reordered: 0, rxDropped: 0, irqs: 0, lroMerged: 0 };
  private upper: DeviceUpper | null = null;
  /** Accepted packets (one TX descriptor each) until their last byte left. */
  private readonly ring: Deque<Packet> = new Deque();
  /** The wire frames of the packet at the head of `ring` (its TSO segments, or itself). */
  private frames: Packet[] | null = null;
  private frameIdx = 0;
  private wireBusy = false;
  private stopped = false;
  private readonly txRing: number;
  private readonly nsPerByte: number;
  private readonly overhead: number;
  private readonly rxRing: Deque<Packet> = new Deque();
  /** The interrupt is masked: raised and not yet re-enabled by napi_complete. */
  private irqMasked = false;
  private readonly serialized: () => void;
  private readonly irqDone: () => void;
  readonly napi: Napi;

  constructor(
    private readonly env: Env,
    readonly name: string,
    readonly mac: MacAddr,
    private readonly opts: DirectLinkOptions,
    private readonly rng: Rng,
  ) {
    this.mtu = opts.mtu ?? 1500;
    this.features = fixFeatures({ ...NO_OFFLOADS, ...opts.features });
    this.txRing = opts.txRing ?? 256;
    this.nsPerByte = 8e9 / opts.bandwidth;
    this.overhead = opts.frameOverhead ?? 0;
    this.serialized = () => this.onSerialized();
    this.irqDone = () => this.upper!.napiSchedule(this.napi);
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  get cpu(): Executor {
    if (this.upper === null) throw new Error(`${this.name}: not attached`);
    return this.upper.cpu;
  }

  /** Frames waiting in the RX ring. */
  get rxPending(): number {
    return this.rxRing.length;
  }

  xmit(pkt: Packet): boolean {
    if (this.ring.length >= this.txRing) {
      this.stopped = true;
      return false;
    }
    this.ring.push(pkt);
    if (!this.wireBusy) this.startNext();
    return true;
  }

  private startNext(): void {
    if (this.frames === null) {
      const head = this.ring.peek();
      if (head === undefined) {
        this.wireBusy = false;
        return;
      }
      // TSO: the NIC cuts the packet into MSS frames with their own headers and checksums.
      this.frames = head.gsoType !== GSO_NONE ? gsoSegment(head, true, HEAP_MEMORY) : [head];
      this.frameIdx = 0;
    }
    this.wireBusy = true;
    const f = this.frames[this.frameIdx]!;
    const t = Math.max(1, Math.round((f.length + this.overhead) * this.nsPerByte));
    this.env.timeout(t).addCallback(this.serialized);
  }

  private onSerialized(): void {
    const pkt = this.frames![this.frameIdx++]!;
    if (this.frameIdx === this.frames!.length) {
      this.frames = null;
      this.ring.shift();
    }
    this.stats.frames++;
    this.stats.bytes += pkt.length;
    // The frame has left: its bytes travel on, to land in a buffer on the far side.
    const copy = pkt.data.slice();
    const l3 = pkt.l3;
    const csum = pkt.csum;
    const csumStart = pkt.csumStart;
    const csumOffset = pkt.csumOffset;
    pkt.release();
    if (this.stopped && this.ring.length < this.txRing) {
      this.stopped = false;
      this.upper?.wake();
    }
    this.startNext();
    if (this.rng.chance(this.opts.loss ?? 0)) {
      this.stats.lost++;
      return;
    }
    let delay = this.opts.delay;
    if (this.rng.chance(this.opts.reorder ?? 0)) {
      delay += this.opts.reorderDelay ?? 0;
      this.stats.reordered++;
    }
    const peer = this.peer!;
    this.env.timeout(delay).addCallback(() => {
      const rx = peer.receiveBuffer(copy);
      rx.l3 = l3;
      // A partial checksum crosses a virtual wire unfinished and is trusted (veth); a
      // complete one is verified by the receiving NIC when it can (not in fragments).
      rx.csum = csum === CSUM_NONE ? (peer.features.rxCsum && nicChecksumValid(rx) ? CSUM_UNNECESSARY : CSUM_NONE) : csum;
      rx.csumStart = csumStart;
      rx.csumOffset = csumOffset;
      peer.arrive(rx);
    });
  }

  /** The receiving NIC's DMA of a frame into one of its stack's buffers. */
  receiveBuffer(bytes: Uint8Array): Packet {
    const p = Packet.alloc(this.upper?.memory ?? HEAP_MEMORY, bytes.length);
    p.data.set(bytes);
    return p;
  }

  private arrive(pkt: Packet): void {
    if (this.rxRing.length >= this.opts.rxRing) {
      this.stats.rxDropped++;
      pkt.release();
      return;
    }
    this.rxRing.push(pkt);
    if (!this.irqMasked) this.raiseIrq();
  }

  private raiseIrq(): void {
    this.irqMasked = true;
    this.stats.irqs++;
    this.cpu.exec(this.opts.irqCost, 'irq').addCallback(this.irqDone);
  }

  /** NAPI poll, one descriptor: the next frame, merged with its flow's followers under LRO. */
  private poll(): Packet | undefined {
    const pkt = this.rxRing.shift();
    if (pkt === undefined || !this.features.lro) return pkt;
    const before = this.rxRing.length;
    const merged = lroMerge(pkt, this.rxRing, this.upper!.memory);
    this.stats.lroMerged += before - this.rxRing.length;
    return merged;
  }

  /** napi_complete: unmask; frames that came after the last poll raise the interrupt again. */
  private complete(): void {
    this.irqMasked = false;
    if (this.rxRing.length > 0) this.raiseIrq();
  }
}

/**
 * What a receiving NIC's checksum offload can vouch for: the complete, valid checksum of an
 * unfragmented TCP or UDP datagram over IPv4. Fragments are left to the stack, which
 * verifies the datagram once reassembled.
 */
function nicChecksumValid(pkt: Packet): boolean {
  const d = pkt.data;
  const l3 = pkt.l3;
  if (d.length < l3 + IP.HEADER_LEN || d[12] !== 0x08 || d[13] !== 0x00) return false;
  const ip = parseIpv4(d, l3, d.length - l3);
  if (ip instanceof WireError || ip.moreFragments || ip.fragOffset !== 0) return false;
  if (ip.protocol !== IPPROTO_TCP && ip.protocol !== IPPROTO_UDP) return false;
  const l4 = l3 + ip.headerLen;
  // RFC 768: a UDP checksum of zero means none was computed.
  if (ip.protocol === IPPROTO_UDP && ip.payloadLen >= 8 && d[l4 + 6] === 0 && d[l4 + 7] === 0) return false;
  return l4ChecksumValid(d, l4, ip.payloadLen, ip.src, ip.dst, ip.protocol);
}
