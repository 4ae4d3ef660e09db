import { Deque, type Env } from '../../sim/index.js';
import { NO_OFFLOADS, Packet, type DeviceFeatures, type DeviceUpper, type MacAddr, type NetDevice, type PacketMemory } from '../../net/index.js';

/** TUN_READQ_SIZE: the tap's queue toward its reader (also its tx_queue_len). */
export const TUN_READQ_SIZE = 500;

/** What a tap counts. */
export interface TapStats {
  /** Frames from the bridge queued for qemu, dropped because the queue was full, read by qemu. */
  queued: number;
  dropped: number;
  read: number;
  /** Frames qemu wrote, handed to the bridge. */
  written: number;
}

/**
 * A tap device in Dom0's kernel (drivers/net/tun.c, IFF_TAP | IFF_NO_PI, no vnet header: QEMU's
 * e1000 does its offloads in software), named tap<domid>.<devid> as libxl names it and
 * enslaved to the guest's bridge. Frames the bridge sends to it (tun_net_xmit) queue for
 * qemu's read() (at most TUN_READQ_SIZE, then dropped and counted); frames qemu write()s
 * (tun_get_user) are new skbs in Dom0's memory given to the bridge through netif_rx_ni.
 */
export class TapDevice implements NetDevice {
  readonly mtu = 1500;
  /** The address the vif-bridge hotplug script gives a tap as to a vif. */
  readonly mac: MacAddr = 0xfe_ff_ff_ff_ff_ff;
  readonly features: DeviceFeatures = NO_OFFLOADS;
  readonly stats: TapStats = { queued: 0, dropped: 0, read: 0, written: 0 };
  private upper: DeviceUpper | null = null;
  private readonly queue = new Deque<Packet>();
  /** Told when a frame is queued for the reader (the fd became readable). */
  onReadable: () => void = () => undefined;

  constructor(
    readonly env: Env,
    readonly name: string,
    private readonly dom0Memory: PacketMemory,
  ) {}

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  xmit(pkt: Packet): boolean {
    if (this.queue.length >= TUN_READQ_SIZE) {
      this.stats.dropped++;
      pkt.release();
      return true;
    }
    this.queue.push(pkt);
    this.stats.queued++;
    this.onReadable();
    return true;
  }

  /** Frames waiting for qemu. */
  get pending(): number {
    return this.queue.length;
  }

  /** qemu's read(): the next frame's bytes (a copy; the skb is freed), or undefined. */
  read(): Uint8Array | undefined {
    const p = this.queue.shift();
    if (p === undefined) return undefined;
    const bytes = p.data.slice();
    p.release();
    this.stats.read++;
    return bytes;
  }

  /** qemu's write(): the frame becomes an skb in Dom0's memory and goes to the bridge. */
  write(frame: Uint8Array): void {
    if (this.upper === null) return;
    const p = Packet.alloc(this.dom0Memory, frame.length);
    p.data.set(frame);
    this.stats.written++;
    this.upper.receive(p);
  }

  /** The tap is closed (qemu exits): frames still queued are freed. */
  close(): void {
    for (let p = this.queue.shift(); p !== undefined; p = this.queue.shift()) p.release();
  }
}
