import type { Env } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import type { NetDevice } from '../net/index.js';
import type { BridgePortHandle } from '../vnet/index.js';
import type { HostDescription } from './description.js';
import type { Dom0Side } from './host.js';

/** Dom0's network side: its bridges (ports: vifs, taps, the physical NIC) and its own address. */
export class Dom0Network {
  constructor(
    readonly env: Env,
    readonly profile: Profile,
    readonly dom0: Dom0Side,
    readonly desc: HostDescription,
  ) {}

  addPort(bridge: string, _dev: NetDevice): BridgePortHandle {
    throw new Error(`bridge ${bridge}: not built`);
  }
}
