import { SimEnvironment, type AnyOfResult, type SimEvent } from '../sim/index.js';
import { ipv4 } from '../net/index.js';
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

/** One ICMP echo from guest `from` to address `to`; whether its reply came within 50 ms (simulated). */
export function pingOnce(env: SimEnvironment, host: Host, from: string, to: string, seq: number): boolean {
  const sock = host.guest(from).stack.icmp.openPing();
  const ok = run(
    env,
    (function* () {
      yield* sock.send(ipv4(to), seq, new Uint8Array(56).fill(seq));
      const r = (yield env.anyOf([env.process(sock.recv()), env.timeout(50_000_000)])) as AnyOfResult;
      return r.index === 0;
    })(),
  );
  sock.close();
  return ok;
}
