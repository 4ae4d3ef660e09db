import { Deque, type Executor } from '../../sim/index.js';
import { completeChecksum } from '../wire/l4-checksum.js';
import { IPPROTO_UDP } from '../wire/ipv4.js';
import type { DeviceFeatures, NetDevice } from './device.js';
import { gsoSegment } from './gso.js';
import { CSUM_NONE, CSUM_PARTIAL, GSO_NONE, type Packet, type PacketMemory } from './packet.js';

export interface TxQueueStats {
  packets: number;
  bytes: number;
  /** Packets dropped because the queue was full (qdisc drops). */
  dropped: number;
  /** Times the device refused a packet (queue stopped until it woke us). */
  stops: number;
  /** Segments made by software GSO; checksums completed in software. */
  gsoSegments: number;
  swChecksums: number;
}

export interface TxQueueCosts {
  gsoSegment: number;
  csumPerByte: number;
}

/**
 * A device's transmit queue (Linux's qdisc, pfifo_fast with txqueuelen packets, and
 * dev_hard_start_xmit): packets wait here while the device is busy and go to it in order
 * when it wakes. Before the hand-off it does in software what the device cannot
 * (validate_xmit_skb): GSO segmentation without TSO, checksum completion without TX
 * checksum offload; that work is charged to the guest CPU in softirq context (NET_TX).
 */
export class TxQueue {
  private readonly q = new Deque<Packet>();
  private stopped = false;
  private busy = false;
  readonly stats: TxQueueStats = { packets: 0, bytes: 0, dropped: 0, stops: 0, gsoSegments: 0, swChecksums: 0 };
  private readonly resume: () => void;

  constructor(
    private device: NetDevice,
    /** What the device does (netdev_fix_features applied): the rest is done here. */
    private readonly features: DeviceFeatures,
    private readonly limit: number,
    private readonly cpu: Executor,
    private readonly costs: TxQueueCosts,
    /** Where software GSO builds its segments (the stack's packet memory). */
    private readonly memory: PacketMemory,
  ) {
    this.resume = () => {
      this.busy = false;
      this.run();
    };
  }

  get length(): number {
    return this.q.length;
  }

  get dev(): NetDevice {
    return this.device;
  }

  /**
   * The queue's device is now `dev` (same features: the caller checks): a stopped queue starts
   * again and what waits in it goes to the new device, in order.
   */
  replaceDevice(dev: NetDevice): void {
    this.device = dev;
    this.stopped = false;
    this.run();
  }

  /** Queues a packet with its Ethernet header written; false (and counted) if the queue is full. */
  enqueue(pkt: Packet): boolean {
    if (this.q.length >= this.limit) {
      this.stats.dropped++;
      pkt.release();
      return false;
    }
    this.q.push(pkt);
    this.run();
    return true;
  }

  /**
   * qdisc_reset (the device leaves, e.g. a bridge port is removed): every packet still
   * queued is released; returns how many, also counted in `dropped`. Packets the device
   * already accepted are the device's.
   */
  purge(): number {
    let n = 0;
    for (let p = this.q.shift(); p !== undefined; p = this.q.shift()) {
      p.release();
      n++;
    }
    this.stats.dropped += n;
    return n;
  }

  /** The device can take packets again (netif_wake_queue). */
  wake(): void {
    this.stopped = false;
    this.run();
  }

  private run(): void {
    const dev = this.dev;
    const f = this.features;
    while (!this.stopped && !this.busy) {
      const pkt = this.q.peek();
      if (pkt === undefined) return;
      let work = 0;
      if (pkt.gsoType !== GSO_NONE && !f.tso) {
        const segs = gsoSegment(pkt, f.txCsum, this.memory);
        this.q.shift();
        for (let i = segs.length - 1; i >= 0; i--) this.q.unshift(segs[i]!);
        this.stats.gsoSegments += segs.length;
        work += segs.length * this.costs.gsoSegment;
        // Without TX checksum offload (never with fixed features: GSO needs SG, SG needs a
        // checksum feature) skb_segment computes each segment's checksum: charged here, the
        // one place it is computed, as TCP left the GSO packet's checksum partial.
        if (!f.txCsum) work += Math.round((pkt.length - pkt.l4) * this.costs.csumPerByte);
      } else if (pkt.csum === CSUM_PARTIAL && !f.txCsum) {
        const isUdp = pkt.data[pkt.l3 + 9] === IPPROTO_UDP;
        completeChecksum(pkt.data, pkt.csumStart, pkt.data.length, pkt.csumStart + pkt.csumOffset, isUdp);
        pkt.csum = CSUM_NONE;
        this.stats.swChecksums++;
        work += Math.round((pkt.length - pkt.csumStart) * this.costs.csumPerByte);
      }
      if (work > 0) {
        this.busy = true;
        this.cpu.exec(work, 'softirq').addCallback(this.resume);
        return;
      }
      if (!dev.xmit(pkt)) {
        this.stopped = true;
        this.stats.stops++;
        return;
      }
      this.q.shift();
      this.stats.packets++;
      this.stats.bytes += pkt.length;
    }
  }
}
