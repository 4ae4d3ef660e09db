import type { Executor } from '../../sim/index.js';
import type { MacAddr } from '../wire/addr.js';
import type { Packet, PacketMemory } from './packet.js';

/**
 * What a device can do for the stack (Linux netdev features). The stack reads them to decide
 * how to build packets (sk_route_caps) and what to do in software before handing a packet
 * over (validate_xmit_skb).
 */
export interface DeviceFeatures {
  /** Accepts CSUM_PARTIAL packets and completes their checksum (NETIF_F_HW_CSUM). */
  txCsum: boolean;
  /** Marks received packets CSUM_UNNECESSARY when it validated them (NETIF_F_RXCSUM). */
  rxCsum: boolean;
  /** Scatter-gather: takes a packet in several fragments (NETIF_F_SG); GSO needs it. */
  sg: boolean;
  /** TCP segmentation offload: accepts GSO_TCPV4 packets up to `gsoMaxSize` (NETIF_F_TSO). */
  tso: boolean;
  /** Largest GSO packet, bytes of IP datagram (Linux GSO_MAX_SIZE 65536). */
  gsoMaxSize: number;
  /** May deliver merged TCP segments (LRO/GRO) marked with gsoType/gsoSize. */
  lro: boolean;
  /** No link-layer resolution (loopback, point-to-point channels): IFF_NOARP. */
  noArp: boolean;
}

export const NO_OFFLOADS: DeviceFeatures = { txCsum: false, rxCsum: false, sg: false, tso: false, gsoMaxSize: 65536, lro: false, noArp: false };

/**
 * The features the stack uses, as Linux's netdev_fix_features leaves them: scatter-gather
 * is dropped without a checksum feature ("Dropping NETIF_F_SG since no checksum feature"),
 * and TSO without scatter-gather. So a GSO packet always carries a partial checksum.
 */
export function fixFeatures(f: DeviceFeatures): DeviceFeatures {
  const sg = f.sg && f.txCsum;
  return { ...f, sg, tso: f.tso && sg };
}

/**
 * A device's NAPI context (struct napi_struct): the receive softirq polls it for frames
 * while it is scheduled, and the device keeps its interrupt masked meanwhile.
 */
export interface Napi {
  /** The next received frame (one RX descriptor), or undefined when the ring is empty. */
  poll(): Packet | undefined;
  /** napi_complete: the poll emptied the ring; the device may interrupt again. */
  complete(): void;
}

/**
 * The NAPI contexts of a lower device as seen from a layer above it that looks at every frame
 * polled (`seen`) before passing it up: one wrapper per context, kept so that scheduling a
 * context twice schedules the same wrapper.
 */
export class NapiTap {
  private readonly wrapped = new Map<Napi, Napi>();
  constructor(private readonly seen: (pkt: Packet) => void) {}

  of(napi: Napi): Napi {
    let w = this.wrapped.get(napi);
    if (w === undefined) {
      const seen = this.seen;
      w = {
        poll: () => {
          const p = napi.poll();
          if (p !== undefined) seen(p);
          return p;
        },
        complete: () => napi.complete(),
      };
      this.wrapped.set(napi, w);
    }
    return w;
  }
}

/** What the stack gives a device it owns. */
export interface DeviceUpper {
  /** The guest CPU where the device's interrupt handler and NAPI poll run. */
  readonly cpu: Executor;
  /** The stack's packet memory: where the device puts the frames it receives (its RX buffers). */
  readonly memory: PacketMemory;
  /**
   * NAPI: from the device's interrupt handler, have the receive softirq poll `napi` (which
   * hands over frames until its ring is empty or its weight is used).
   */
  napiSchedule(napi: Napi): void;
  /**
   * A received frame from a device without NAPI (netif_rx): queued to the CPU's backlog
   * (netdev_max_backlog frames, then dropped and counted) for softirq processing.
   */
  receive(pkt: Packet): void;
  /** netif_wake_queue: the device can take frames again after refusing one. */
  wake(): void;
}

/**
 * A network device as the guest stack sees it: netfront, the e1000 driver, an SR-IOV VF
 * driver, HV²M and shared-memory channels, loopback, a pcap tap, a direct link.
 *
 * Contract: `xmit` either accepts the packet (returns true; the device owns it and calls
 * `pkt.release()` once it no longer needs the bytes) or refuses it because it is busy
 * (returns false; Linux's netif_stop_queue). After a refusal the stack keeps the packet at
 * the head of the device's queue and sends nothing more to the device until it calls
 * `upper.wake()`. A device never drops a packet it accepted without counting it.
 * Packets handed to `xmit` satisfy the device's features: no CSUM_PARTIAL without txCsum,
 * no GSO without tso, nothing longer than mtu + 14 unless GSO.
 */
export interface NetDevice {
  readonly name: string;
  readonly mac: MacAddr;
  /** Largest IP datagram, bytes (the Ethernet header is not counted). */
  readonly mtu: number;
  readonly features: DeviceFeatures;
  attach(upper: DeviceUpper): void;
  xmit(pkt: Packet): boolean;
}

/** A device that wraps another and is a device (tap, tracer, fault injector). */
export abstract class DeviceWrapper implements NetDevice {
  protected upper: DeviceUpper | null = null;
  constructor(protected readonly inner: NetDevice) {}
  get name(): string {
    return this.inner.name;
  }
  get mac(): MacAddr {
    return this.inner.mac;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get features(): DeviceFeatures {
    return this.inner.features;
  }
  attach(upper: DeviceUpper): void {
    this.upper = upper;
    const tap = new NapiTap((p) => this.onReceive(p));
    this.inner.attach({
      cpu: upper.cpu,
      memory: upper.memory,
      napiSchedule: (n) => upper.napiSchedule(tap.of(n)),
      receive: (p) => {
        this.onReceive(p);
        upper.receive(p);
      },
      wake: () => upper.wake(),
    });
  }
  xmit(pkt: Packet): boolean {
    return this.inner.xmit(pkt);
  }
  /** Sees each received frame as the stack takes it (NAPI poll or netif_rx). */
  protected onReceive(_pkt: Packet): void {}
}
