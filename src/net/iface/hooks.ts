import type { Ipv4Addr } from '../wire/addr.js';
import type { NetDevice } from './device.js';
import type { Packet } from './packet.js';

/**
 * What a hook decides (netfilter's verdicts): let the packet go on, drop it (counted), or
 * take it ('stolen': the hook owns it now and may transmit it through another device, or
 * deliver it by its own channel; it must call `pkt.release()` when done with it).
 */
export type HookVerdict = 'accept' | 'drop' | 'stolen';

/**
 * Receive side, before routing (NF_INET_PRE_ROUTING): sees every IPv4 packet that arrived
 * on `inDev`, after its header was validated; `pkt.l3` points at the IP header.
 */
export type PreRoutingHook = (pkt: Packet, inDev: NetDevice) => HookVerdict;

/**
 * Transmit side, after routing (NF_INET_POST_ROUTING): sees each outgoing IPv4 packet with
 * its next hop and output device, before link-layer resolution (the Ethernet header at
 * `pkt.data[0..14)` is not yet written). XenLoop-style and HV²M interception sit here.
 */
export type PostRoutingHook = (pkt: Packet, nextHop: Ipv4Addr, outDev: NetDevice) => HookVerdict;

interface Entry<H> {
  hook: H;
  priority: number;
}

/** An ordered list of hooks (lower priority value runs first, as netfilter). */
export class HookChain<H> {
  private entries: Entry<H>[] = [];

  get length(): number {
    return this.entries.length;
  }

  /** Adds a hook; returns a function that removes it. */
  add(hook: H, priority = 0): () => void {
    this.entries.push({ hook, priority });
    this.entries.sort((a, b) => a.priority - b.priority);
    return () => {
      this.entries = this.entries.filter((e) => e.hook !== hook);
    };
  }

  /** @internal */
  get list(): readonly Entry<H>[] {
    return this.entries;
  }
}

export class Hooks {
  readonly preRouting = new HookChain<PreRoutingHook>();
  readonly postRouting = new HookChain<PostRoutingHook>();

  runPreRouting(pkt: Packet, dev: NetDevice): HookVerdict {
    for (const e of this.preRouting.list) {
      const v = e.hook(pkt, dev);
      if (v !== 'accept') return v;
    }
    return 'accept';
  }

  runPostRouting(pkt: Packet, nextHop: Ipv4Addr, dev: NetDevice): HookVerdict {
    for (const e of this.postRouting.list) {
      const v = e.hook(pkt, nextHop, dev);
      if (v !== 'accept') return v;
    }
    return 'accept';
  }
}
