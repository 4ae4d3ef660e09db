import type { Env, Executor, Rng, Time } from '../../sim/index.js';
import { Deque } from '../../sim/index.js';
import type { MacAddr } from '../wire/addr.js';
import { NO_OFFLOADS, fixFeatures, type DeviceFeatures, type DeviceUpper, type NetDevice } from './device.js';
import { CSUM_NONE, CSUM_UNNECESSARY, Packet } from './packet.js';

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
  /** TX descriptors per end: frames accepted but not yet on the wire; default 256. */
  txRing?: number;
  mtu?: number;
  /**
   * Offloads of both ends, as a virtual wire between two guests (veth): partial checksums
   * cross it unfinished and arrive trusted, as on Linux veth. Default: none (checksums are
   * computed in software and verified by the receiver).
   */
  features?: Partial<DeviceFeatures>;
  /** Per-interrupt cost of the receiving NIC's handler on the receiving guest's CPU, ns. */
  irqCost: Time;
}

export interface LinkStats {
  frames: number;
  bytes: number;
  lost: number;
  reordered: number;
}

/**
 * An ideal wire between two stacks, for testing the stack before the Xen I/O paths exist:
 * each direction serializes frames at `bandwidth`, delivers them `delay` later, and may lose
 * or hold back frames with a seeded generator (`env.rng.fork('link:<name>:<dir>')`). The
 * receiving end raises an interrupt on its guest's CPU (context 'irq') and delivers every
 * frame that arrived meanwhile in one batch, as NAPI does.
 */
export class DirectLink {
  readonly a: LinkEnd;
  readonly b: LinkEnd;

  constructor(env: Env, name: string, macA: MacAddr, macB: MacAddr, opts: DirectLinkOptions) {
    if (!(opts.bandwidth > 0)) throw new RangeError(`link ${name}: bandwidth ${opts.bandwidth} must be positive`);
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
  readonly stats: LinkStats = { frames: 0, bytes: 0, lost: 0, reordered: 0 };
  private upper: DeviceUpper | null = null;
  private readonly ring: Deque<Packet> = new Deque();
  private wireBusy = false;
  private stopped = false;
  private readonly txRing: number;
  private readonly nsPerByte: number;
  private readonly overhead: number;
  private readonly rxBatch: Deque<Packet> = new Deque();
  private irqPending = false;
  private readonly serialized: () => void;
  private readonly irqDone: () => void;

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
    this.irqDone = () => this.onIrqDone();
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  get cpu(): Executor {
    if (this.upper === null) throw new Error(`${this.name}: not attached`);
    return this.upper.cpu;
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
    const pkt = this.ring.peek();
    if (pkt === undefined) {
      this.wireBusy = false;
      return;
    }
    this.wireBusy = true;
    const t = Math.max(1, Math.round((pkt.length + this.overhead) * this.nsPerByte));
    this.env.timeout(t).addCallback(this.serialized);
  }

  private onSerialized(): void {
    const pkt = this.ring.shift()!;
    this.stats.frames++;
    this.stats.bytes += pkt.length;
    // The frame has left: its bytes travel on as a new buffer on the far side.
    const copy = pkt.data.slice();
    const l3 = pkt.l3;
    const gsoType = pkt.gsoType;
    const gsoSize = pkt.gsoSize;
    const csum = pkt.csum;
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
      const rx = new Packet(copy);
      rx.l3 = l3;
      rx.gsoType = gsoType;
      rx.gsoSize = gsoSize;
      // A partial checksum crosses a virtual wire unfinished and is trusted (veth); a
      // complete one is verified by the receiver unless its NIC validates checksums.
      rx.csum = csum === CSUM_NONE ? (peer.features.rxCsum ? CSUM_UNNECESSARY : CSUM_NONE) : csum;
      rx.csumStart = pkt.csumStart;
      rx.csumOffset = pkt.csumOffset;
      peer.arrive(rx);
    });
  }

  private arrive(pkt: Packet): void {
    this.rxBatch.push(pkt);
    if (this.irqPending) return;
    this.irqPending = true;
    this.cpu.exec(this.opts.irqCost, 'irq').addCallback(this.irqDone);
  }

  private onIrqDone(): void {
    this.irqPending = false;
    const upper = this.upper!;
    for (let p = this.rxBatch.shift(); p !== undefined; p = this.rxBatch.shift()) upper.receive(p);
  }
}
