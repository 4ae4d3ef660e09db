import type { SimEvent } from '../../sim/index.js';
import type { Domain } from '../domain.js';
import type { GuestMemory } from '../memory.js';
import type { Vcpu } from '../vcpu.js';
import { EventChannelDriver } from './evtchn.js';
import { FrameAllocator } from './frame-alloc.js';
import { GrantClient } from './gnttab.js';
import type { XenPlatform } from './platform.js';

/**
 * A guest kernel's Xen support, in one place (what Linux has in arch/x86/xen and
 * drivers/xen): its memory and frame allocator, grant table and event channels. `init` does
 * what the kernel does at boot: map the shared-info page, install the upcall, map the grant
 * table. The same code serves Dom0 and guests.
 */
export class XenGuest {
  readonly mem: GuestMemory;
  readonly frames: FrameAllocator;
  readonly gnttab: GrantClient;
  readonly evtchn: EventChannelDriver;

  /**
   * `frames`: a resuming kernel's own frame allocator (its state is in the guest's memory and
   * migrates with it, src/host/migration.ts); a booting one gets a fresh one.
   */
  constructor(
    readonly xen: XenPlatform,
    readonly domain: Domain,
    frames?: FrameAllocator,
  ) {
    this.mem = domain.memory;
    this.frames = frames ?? new FrameAllocator(this.mem);
    this.gnttab = new GrantClient(xen, this.mem, this.frames);
    this.evtchn = new EventChannelDriver(xen, domain, this.frames);
  }

  get domid(): number {
    return this.domain.domid;
  }

  /** Boot-time setup on vCPU `v` (default vCPU 0) with `grantFrames` table frames; 0 or the first error. */
  *init(v: Vcpu = this.domain.vcpus[0]!, grantFrames = 1): Generator<SimEvent<unknown>, number, unknown> {
    const rc = yield* this.evtchn.init(v);
    if (rc !== 0) return rc;
    return yield* this.gnttab.expand(v, grantFrames);
  }
}
