import type { Env } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { Bridge, ipv4, type Interface, type MacAddr, type NetDevice } from '../net/index.js';
import type { BridgePortHandle } from '../vnet/index.js';
import type { HostDescription } from './description.js';
import type { Dom0Side } from './host.js';

/**
 * Dom0's network side: its bridges (xenbr0…, Linux bridges in Dom0's kernel whose ports are
 * the vifs, taps and the physical NIC) on Dom0's stack, and Dom0's own address on the first
 * bridge (so ping to Dom0 works).
 */
export class Dom0Network {
  readonly bridges = new Map<string, Bridge>();
  /** Dom0's interface on its first bridge, if it has an address. */
  readonly iface: Interface | null = null;

  constructor(
    readonly env: Env,
    readonly profile: Profile,
    readonly dom0: Dom0Side,
    desc: HostDescription,
    rngMac: (name: string) => MacAddr,
  ) {
    for (const name of desc.bridges) {
      // A bridge's address is its lowest port's (Linux br_stp_recalculate_bridge_id); Xen's vifs
      // all carry fe:ff:ff:ff:ff:ff, so a bridge with no physical NIC gets a fixed local address.
      this.bridges.set(name, new Bridge(dom0.stack, profile, { name, mac: rngMac(name) }));
    }
    if (desc.dom0.ip !== undefined) {
      const [a, p] = desc.dom0.ip.split('/') as [string, string];
      this.iface = dom0.stack.addInterface(this.bridges.get(desc.bridges[0]!)!.dev, { address: ipv4(a), prefix: Number(p) });
    }
  }

  bridge(name: string): Bridge {
    const b = this.bridges.get(name);
    if (b === undefined) throw new Error(`Dom0: no bridge named "${name}" (bridges: ${[...this.bridges.keys()].join(', ')})`);
    return b;
  }

  addPort(bridge: string, dev: NetDevice): BridgePortHandle {
    const b = this.bridge(bridge);
    const port = b.addPort(dev);
    return { remove: () => b.removePort(port), setCarrier: (up) => b.setCarrier(port, up) };
  }
}
