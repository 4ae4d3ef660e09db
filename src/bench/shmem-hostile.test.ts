/**
 * A hostile shmem peer (src/vnet/shmem/shmem-channel.ts). As a sender it maps my receive FIFO
 * and controls everything in it: the producer index, the event fields, every record header and
 * byte. Property: whatever it writes, my receive poll never throws, hands up only frames of a
 * length a record may have, each copied into a buffer of my own; well-formed records alone
 * arrive byte-exact and in order; the first record or index that breaks the rules ends the
 * channel (counted once), and nothing more is handed up from it; tearing down ends every
 * grant and gives every page back. The whole-host version with a third guest is in
 * shmem-path.test.ts (fewer runs: it builds a host per run).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Profile } from '../profile/index.js';
import type { Packet } from '../net/index.js';
import { ShmemChannel, ShmemEnd, emptyShmemStats, shmemCosts } from '../vnet/index.js';
import {
  FIFO_CONS,
  FIFO_CONS_EVENT,
  FIFO_PROD,
  FIFO_PROD_EVENT,
  REC_HEADER,
  REC_MIN_LEN,
  recordBytes,
  used,
  writeRecord,
} from '../vnet/shmem/index.js';
import { run, twoGuestHost } from '../host/test-support.js';

const profile = Profile.load('default');
const RUNS = Number(process.env.HV2M_HOSTILE_RUNS ?? 10_000);
const PAGES = 2;

type Action =
  | { k: 'good'; len: number; fill: number }
  | { k: 'prod'; v: number }
  | { k: 'prodStep'; v: number }
  | { k: 'event'; v: number }
  | { k: 'bytes'; at: number; b: Uint8Array }
  | { k: 'header'; len: number; flags: number; gso: number; short: number }
  | { k: 'notify'; times: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('good' as const),
      len: fc.integer({ min: REC_MIN_LEN, max: 3000 }),
      fill: fc.integer({ min: 0, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('prod' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('prodStep' as const), v: fc.integer({ min: 0, max: 70_000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('event' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('bytes' as const),
      at: fc.integer({ min: 0, max: 0xffff }),
      b: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('header' as const),
      len: fc.integer({ min: 0, max: 70_000 }),
      flags: fc.integer({ min: 0, max: 255 }),
      gso: fc.integer({ min: 0, max: 0xffff }),
      // Produce less than the header claims (a record announced before its bytes are there), or exactly as much.
      short: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4096 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('notify' as const), times: fc.integer({ min: 1, max: 20 }) }) },
);

/** The frame a well-formed record of the test carries: its length and fill, recognisable byte by byte. */
function frame(len: number, fill: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (fill + i * 7) & 0xff;
  return b;
}

describe('shmem: a hostile sender writing my receive FIFO', () => {
  it(`never makes my poll throw; well-formed records arrive byte-exact and in order; the first broken one ends the channel (${RUNS} runs)`, () => {
    const { env, host } = twoGuestHost(profile);
    const a = host.guest('a');
    const b = host.guest('b');
    const costs = shmemCosts(profile);
    const v = a.domain.vcpus[0]!;
    const base = a.side.memory.outstanding;
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 12 }), (actions) => {
        try {
          const end = new ShmemEnd(a.side.kernel, a.side.xenbus, v, b.domid, PAGES, profile.ns('guest.gnttab.eagainRetryStep'));
          const link = { mac: 0x00163e000001, upper: () => null, iface: () => null, memory: a.side.memory };
          const stats = emptyShmemStats();
          const ch = new ShmemChannel(env, a.side.kernel, v, end, link, 0x00163e000002, costs, { queueLen: 16 }, stats);
          let ended: string | null = null;
          ch.onEnd = (r) => (ended ??= r);
          run(env, end.open());
          const own = [...end.ownFrames];
          assert.equal(own.length, PAGES + 1);
          assert.equal(end.error, null);
          ch.rxOpen = true;
          // The hostile peer's view of my FIFO: the same pages, which it maps writable.
          const f = end.rx!;
          const written: Uint8Array[] = [];
          let hostile = false;
          const delivered: Packet[] = [];
          let deliveredAfterFault = 0;
          for (const x of actions) {
            const prod = f.desc.getU32(FIFO_PROD);
            if (x.k === 'good') {
              const need = recordBytes(x.len);
              if (used(prod, f.desc.getU32(FIFO_CONS)) + need > f.size) continue;
              const bytes = frame(x.len, x.fill);
              writeRecord(f, prod, { len: x.len, flags: 0, gsoSize: 0 }, bytes);
              f.desc.setU32(FIFO_PROD, (prod + need) >>> 0);
              written.push(bytes);
            } else if (x.k === 'prod') {
              hostile = true;
              f.desc.setU32(FIFO_PROD, x.v);
            } else if (x.k === 'prodStep') {
              hostile = true;
              f.desc.setU32(FIFO_PROD, (prod + x.v) >>> 0);
            } else if (x.k === 'event') f.desc.setU32(x.v & 1 ? FIFO_PROD_EVENT : FIFO_CONS_EVENT, x.v);
            else if (x.k === 'bytes') {
              hostile = true;
              f.data.write(x.at & (f.size - 64), x.b);
            } else if (x.k === 'header') {
              hostile = true;
              const h = new Uint8Array(REC_HEADER);
              const dv = new DataView(h.buffer);
              dv.setUint32(0, x.len, true);
              dv.setUint8(4, x.flags);
              dv.setUint16(6, x.gso, true);
              f.data.write(prod & (f.size - 1) & ~7, h);
              f.desc.setU32(FIFO_PROD, (prod + Math.max(REC_HEADER, REC_HEADER + ((x.len + 7) & ~7) - x.short)) >>> 0);
            } else for (let i = 0; i < x.times; i++) end.hooks.rxEvent();
            const faultedBefore = ch.fault !== null;
            const p0 = f.desc.getU32(FIFO_PROD);
            const c0 = f.desc.getU32(FIFO_CONS);
            for (let i = 0; i < 300; i++) {
              const p = ch.napi.poll();
              if (p === undefined) break;
              if (faultedBefore) deliveredAfterFault++;
              delivered.push(p);
            }
            ch.napi.complete();
            // I consume only what was produced: never past the producer index I saw, nothing at all from an index past the FIFO.
            const took = used(f.desc.getU32(FIFO_CONS), c0);
            const avail = used(p0, c0);
            assert.ok(took <= (avail <= f.size ? avail : 0), `consumed ${took} bytes of ${avail} produced`);
            env.run({ until: env.now + 100_000 });
          }
          for (const p of delivered) {
            assert.ok(p.length >= REC_MIN_LEN && recordBytes(p.length) <= f.size, `a frame of ${p.length} bytes`);
            assert.equal(p.buf?.domid, a.domid, 'copied into a buffer of my own');
          }
          if (!hostile) {
            assert.equal(ch.fault, null, 'well-formed records alone never end the channel');
            assert.equal(delivered.length, written.length, 'every well-formed record handed up');
            delivered.forEach((p, i) => assert.deepEqual(p.data, written[i], `record ${i} byte-exact, in order`));
          }
          for (const p of delivered) p.release();
          assert.equal(deliveredAfterFault, 0, 'nothing handed up once the channel was found broken');
          assert.ok(stats.rxBad <= 1, 'the first broken record or index ends the channel: counted once');
          if (ch.fault !== null) assert.equal(ended, 'fault');
          run(env, ch.shutdown(false));
          assert.equal(end.pendingGrants, 0, 'every grant ended (nobody maps my FIFO)');
          for (const g of own) assert.ok(!a.side.kernel.frames.allocated(g), `FIFO frame ${g} freed`);
          return true;
        } catch (e) {
          if (process.env.HV2M_DEBUG) console.error(e);
          throw e;
        }
      }),
      { numRuns: RUNS, seed: 42 },
    );
    env.run({ until: env.now + 1_000_000 });
    assert.equal(a.side.memory.outstanding, base, 'every packet buffer came back over all runs');
  });
});
