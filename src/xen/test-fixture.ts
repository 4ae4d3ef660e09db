/**
 * A small host for the hypervisor's tests: Dom0 and guests booted with their Xen support
 * (shared info mapped, upcall installed, grant table mapped), and a way to run guest code as
 * a process and get its result. Test support only.
 */
import { SimEnvironment, type SimEvent } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import type { DomainConfig } from './domain.js';
import type { Domain } from './domain.js';
import { XenGuest } from './guest/xen-guest.js';
import { Hypervisor } from './hypervisor.js';

export const profile = Profile.load('default');
/**
 * The default host with kernels that predate the FIFO event-channel ABI (Linux 3.13: 2-level
 * only), for tests of Xen's 2-level ABI and of FIFO set up by hand.
 */
export const twoLevelProfile = profile.withLinux('3.13.0');

export interface TestHost {
  env: SimEnvironment;
  hv: Hypervisor;
  dom0: XenGuest;
  /** Creates and boots a guest. */
  guest(name: string, config?: Partial<DomainConfig>): XenGuest;
  /** Runs `body` as a process to completion and returns its value (the clock moves on). */
  run<T>(body: Generator<SimEvent<unknown>, T, unknown>): T;
}

export function makeHost(options: { pcpus?: number; dom0?: Partial<DomainConfig>; profile?: Profile; boot?: boolean } = {}): TestHost {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, options.profile ?? profile, { pcpus: options.pcpus ?? 2 });
  const run = <T>(body: Generator<SimEvent<unknown>, T, unknown>): T => {
    const p = env.process(body);
    env.run({ until: p });
    if (!p.ok) throw p.error;
    return p.value;
  };
  const boot = (d: Domain): XenGuest => {
    const g = new XenGuest(hv, d);
    if (options.boot !== false) {
      const rc = run(g.init());
      if (rc !== 0) throw new Error(`boot of ${d.name} failed: ${rc}`);
    }
    return g;
  };
  const dom0 = boot(hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1, ...options.dom0 }));
  return { env, hv, dom0, run, guest: (name, config = {}) => boot(hv.createDomain({ name, kind: 'hvm', vcpus: 1, memoryMiB: 64, ...config })) };
}

/** A guest RAM frame filled with `byte` (via the guest's own memory). */
export function filledFrame(g: XenGuest, byte: number): number {
  const gfn = g.frames.alloc();
  if (gfn === null) throw new Error('out of frames');
  g.mem.fill(gfn * 4096, 4096, byte);
  return gfn;
}
