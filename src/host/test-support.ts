import { SimEnvironment, type SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { Host } from './host.js';

/** Runs `g` as a process until it ends (tests of whole hosts); its error is thrown, its value returned. */
export function run<T>(env: SimEnvironment, g: Generator<SimEvent<unknown>, T, unknown>): T {
  const p = env.process(g);
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return p.value;
}

/** A host of 2 pCPUs with HVM guests `a` (128 MiB) and `b` (64 MiB), no NICs: for tests that drive one guest's channel end by hand. */
export function twoGuestHost(profile: Profile, seed = 1): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed });
  const host = run(
    env,
    Host.build(env, profile, {
      name: 'h',
      pcpus: 2,
      guests: [
        { name: 'a', memoryMiB: 128 },
        { name: 'b', memoryMiB: 64 },
      ],
    }),
  );
  return { env, host };
}
