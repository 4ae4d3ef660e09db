import type { SimEvent } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import type { Domain } from '../domain.js';
import type { StoreLocation } from './xenbus.js';
import { XenbusClient } from './xenbus.js';
import { XenGuest } from './xen-guest.js';
import type { FrameAllocator } from './frame-alloc.js';
import type { XenPlatform } from './platform.js';

/** A booted guest kernel's Xen side: grant table, event channels, and a connected xenbus. */
export interface GuestKernel {
  kernel: XenGuest;
  xenbus: XenbusClient;
}

export class GuestBootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestBootError';
  }
}

/**
 * What a Linux guest does at boot for Xen on vCPU 0: map shared info and install the upcall,
 * map its grant table, then connect xenbus (HVM: from its HVM params; PV: from the start_info
 * values in `pv`). Throws GuestBootError naming the step that failed. A kernel resuming after
 * live migration (`frames`: its own allocator, its RAM already the domain's) does the same
 * steps, as Linux's xen_hvm_post_suspend / gnttab_resume / xs_resume re-map shared info and
 * the grant table and reconnect to the new host's xenstored.
 */
export function* bootGuestKernel(
  xen: XenPlatform,
  d: Domain,
  profile: Profile,
  pv?: StoreLocation,
  frames?: FrameAllocator,
): Generator<SimEvent<unknown>, GuestKernel, unknown> {
  const kernel = new XenGuest(xen, d, frames);
  const v = d.vcpus[0]!;
  const rc = yield* kernel.init(v);
  if (rc !== 0) throw new GuestBootError(`d${d.domid} (${d.name}): Xen setup failed (${rc})`);
  const xenbus = yield* XenbusClient.connect(kernel, v, profile, pv);
  if (typeof xenbus === 'number') throw new GuestBootError(`d${d.domid} (${d.name}): xenbus connect failed (${xenbus})`);
  return { kernel, xenbus };
}
