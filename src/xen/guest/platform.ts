import type { Env, SimEvent } from '../../sim/index.js';
import type { XenCosts } from '../costs.js';
import type { HypercallArgs } from '../hypercall.js';
import type { ForeignMapping } from '../memory-op.js';
import type { Vcpu } from '../vcpu.js';
import type { LinuxRelease } from './linux-release.js';

/**
 * What a guest kernel sees of Xen: the hypercall instruction (the hypercall page), emulated
 * I/O (MMIO and port accesses that exit), and for a privileged kernel the foreign mapping of
 * other domains' frames; plus the cost figures of its own Xen-related code and the kernel release
 * it is. The Hypervisor
 * satisfies this; guest code is written against it so it cannot reach Xen's internals.
 */
export interface XenPlatform {
  /** The environment guest code runs in (clock, processes). */
  readonly env: Env;
  readonly costs: Pick<XenCosts, 'guestUpcall' | 'guestUpcallPort' | 'guestFifoUpcall' | 'guestFifoConsume'>;
  /** The Linux release the host's kernels run (the profile's `linux.version`), whose Xen support guest code follows. */
  readonly linux: LinuxRelease;
  hypercall(v: Vcpu, args: HypercallArgs): Generator<SimEvent<unknown>, number, unknown>;
  mmio(v: Vcpu, dir: number, gpa: number, size: number, data?: bigint): Generator<SimEvent<unknown>, bigint, unknown>;
  pio(v: Vcpu, dir: number, port: number, size: number, data?: bigint): Generator<SimEvent<unknown>, bigint, unknown>;
  foreignMap(v: Vcpu, domid: number, gfns: readonly number[]): Generator<SimEvent<unknown>, { rc: number; mapping?: ForeignMapping }, unknown>;
}
