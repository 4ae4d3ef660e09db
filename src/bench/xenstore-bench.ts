/**
 * `npm run bench:xenstore`: a guest's XenStore requests through its ring to xenstored in
 * Dom0, timed by the model: the round-trip time of a READ and a WRITE and where the CPU time
 * went (guest kernel, Xen, Dom0's xenstored).
 */
import { SimEnvironment, type SimEvent } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { Hypervisor, Toolstack, bootGuestKernel } from '../xen/index.js';

const profile = Profile.load(process.env.HV2M_PROFILE ?? 'default');
const env = new SimEnvironment({ seed: 1 });
const hv = new Hypervisor(env, profile, { pcpus: 2 });
const run = <T>(g: Generator<SimEvent<unknown>, T, unknown>): T => {
  const p = env.process(g);
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return p.value;
};
const ts = run(Toolstack.boot(hv, profile, { name: 'Domain-0', vcpus: 1, memoryMiB: 512 }));
const xb = run(
  (function* () {
    const rec = yield* ts.createGuest({ name: 'guest', kind: 'hvm', vcpus: 1, memoryMiB: 256 });
    return (yield* bootGuestKernel(hv, rec.domain, profile)).xenbus;
  })(),
);
env.run({ until: env.now + 1_000_000 });

const N = 1000;
for (const op of ['read', 'write'] as const) {
  const before = hv.snapshot();
  const t0 = env.now;
  run(
    (function* () {
      for (let i = 0; i < N; i++) {
        const r = op === 'read' ? yield* xb.read('name') : yield* xb.write('data/counter', String(i));
        if (!r.ok) throw new Error(`${op} failed: ${r.error}`);
        // Requests one after another, with the guest otherwise idle.
        yield env.timeout(100_000);
      }
    })(),
  );
  const per = (env.now - t0 - N * 100_000) / N;
  const r = hv.cpuReport(before);
  const us = (ns: number): string => (ns / N / 1000).toFixed(2);
  const g = r.domains.find((d) => d.name === 'guest')!;
  const d0 = r.domains.find((d) => d.domid === 0)!;
  console.log(
    `xenstore ${op.padEnd(5)}: ${(per / 1000).toFixed(2)} us round trip; CPU per request: guest kernel ${us(g.byCategory.kernel)} us, Xen for guest ${us(g.byCategory.xen)} us, ` +
      `Dom0 kernel ${us(d0.byCategory.kernel)} us, xenstored ${us(d0.byCategory.user)} us, Xen for Dom0 ${us(d0.byCategory.xen)} us, vCPU switches ${us(r.xenOwn)} us`,
  );
}
