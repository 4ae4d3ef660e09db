import type { SimEnvironment, SimEvent } from '../sim/index.js';

/** Runs `g` as a process until it ends (tests of whole hosts); its error is thrown, its value returned. */
export function run<T>(env: SimEnvironment, g: Generator<SimEvent<unknown>, T, unknown>): T {
  const p = env.process(g);
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return p.value;
}
