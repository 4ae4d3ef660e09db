/**
 * A hostile HV²M peer (src/vnet/hv2m/channel.ts). As a sender it controls everything in my
 * receive ring's responses: ids, offsets, lengths, flags, chains, the producer index, and how
 * often it notifies. Property: whatever it writes, my receive poll never throws, hands up only
 * frames made of my own posted pages within their bounds, drops and counts every frame that
 * breaks the protocol, and after the first such frame ends the channel and delivers nothing
 * more from it. As a receiver it controls the requests my sender consumes: garbage grant refs
 * and a producer index past the ring cost my copies (Xen refuses them) or end the channel, and
 * my flows fall back to the ordinary NIC, byte-exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4, type Packet } from '../net/index.js';
import { NETIF_RX_RING_ENTRY_SIZE, NETRXF_more_data, PAGE_SIZE, netifRxRequestCodec, netifRxResponseCodec } from '../xen/abi/index.js';
import { BackRing, guestFramePage } from '../xen/index.js';
import { ChannelEnd, Hv2mChannel, emptyHv2mStats, hv2mCosts, type Hv2mNic } from '../vnet/index.js';
import { Host } from '../host/index.js';
import { run, twoGuestHost } from '../host/test-support.js';
import { tcpStream } from './workloads/index.js';

const profile = Profile.load('default');
const RUNS = Number(process.env.HV2M_HOSTILE_RUNS ?? 10_000);

/** One hostile write into my ring, then a poll. */
type Action =
  | { kind: 'rsp'; id: number; offset: number; status: number; flags: number; count: number }
  | { kind: 'realIds'; n: number; status: number; more: boolean }
  | { kind: 'prod'; delta: number }
  | { kind: 'notify'; times: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant('rsp' as const),
    id: fc.oneof(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 0xffff })),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
    status: fc.oneof(fc.integer({ min: -2, max: 64 }), fc.integer({ min: -32768, max: 32767 })),
    flags: fc.integer({ min: 0, max: 0xffff }),
    count: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    kind: fc.constant('realIds' as const),
    n: fc.integer({ min: 1, max: 20 }),
    status: fc.integer({ min: 1, max: PAGE_SIZE }),
    more: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('prod' as const), delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: 200, max: 70000 })) }),
  fc.record({ kind: fc.constant('notify' as const), times: fc.integer({ min: 1, max: 50 }) }),
);

describe('hv2m: a hostile sender writing my receive ring', () => {
  it(`never makes my poll throw or hand up anything but my own pages within bounds; a broken completion ends the channel (${RUNS} runs)`, () => {
    const { env, host } = twoGuestHost(profile);
    const a = host.guest('a');
    const b = host.guest('b');
    const costs = hv2mCosts(profile);
    const base = a.side.memory.outstanding;
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 12 }), (actions) => {
        try {
          const end = new ChannelEnd(a.side.kernel, a.side.xenbus, a.domain.vcpus[0]!, a.side.memory, b.domid, {
            rxBuffers: 24,
            eagainStep: costs.eagainStep,
          });
          const link = { mac: 0x00163e000001, upper: () => null, iface: () => null, memory: a.side.memory };
          const stats = emptyHv2mStats();
          const ch = new Hv2mChannel(env, a.side.kernel, a.domain.vcpus[0]!, end, link, 0x00163e000002, costs, { batchOps: 64, queueLen: 16 }, stats);
          let ended: string | null = null;
          ch.onEnd = (r) => (ended ??= r);
          run(env, end.open());
          assert.equal(end.error, null);
          ch.rxOpen = true;
          // The hostile peer's view of my ring: it is the back end.
          const back = BackRing.init(
            guestFramePage(a.side.kernel.mem, end.ringFrame),
            netifRxRequestCodec,
            netifRxResponseCodec,
            NETIF_RX_RING_ENTRY_SIZE,
          );
          const delivered: Packet[] = [];
          let deliveredAfterFault = 0;
          for (const act of actions) {
            if (act.kind === 'rsp') {
              for (let i = 0; i < act.count; i++) {
                // a response slot written whatever it says, whether or not a request was taken for it
                if (back.reqCons === back.rspProdPvt) back.reqCons = back.rspProdPvt + 1;
                back.putResponse({ id: act.id, offset: act.offset, flags: act.flags, status: act.status });
              }
              back.pushResponses();
            } else if (act.kind === 'realIds') {
              // a plausible frame: real ids taken off the ring, in a chain that may or may not end
              const reqs: number[] = [];
              for (let i = 0; i < act.n; i++) {
                const u = back.unconsumedRequests();
                if (typeof u !== 'number' || u === 0) break;
                reqs.push(back.consumeRequest().id);
              }
              reqs.forEach((id, i) =>
                back.putResponse({ id, offset: 0, flags: act.more || i + 1 < reqs.length ? NETRXF_more_data : 0, status: act.status }),
              );
              back.pushResponses();
            } else if (act.kind === 'prod') {
              back.sring.rspProd = (back.sring.rspProd + act.delta) >>> 0;
            } else {
              for (let i = 0; i < act.times; i++) end.hooks.rxEvent();
            }
            const faultedBefore = ch.fault !== null;
            for (let i = 0; i < 300; i++) {
              const p = ch.napi.poll();
              if (p === undefined) break;
              if (faultedBefore) deliveredAfterFault++;
              delivered.push(p);
            }
            ch.napi.complete();
            env.run({ until: env.now + 100_000 });
          }
          for (const p of delivered) {
            const frags = p.fragments()!;
            assert.ok(frags.length >= 1 && frags.length <= 18);
            for (const f of frags) {
              assert.equal(f.buf.domid, a.domid, 'only my own pages');
              assert.ok(f.bufOffset >= 0 && f.len >= 0 && f.bufOffset + f.len <= PAGE_SIZE, 'within the page');
            }
            p.release();
          }
          assert.equal(deliveredAfterFault, 0, 'nothing delivered once the channel was found broken');
          if (ch.fault !== null) {
            assert.equal(ended, 'fault');
            assert.ok(stats.rxBad + stats.faults >= 1);
          }
          // Tear down: every grant ended, every page back (nobody maps them).
          run(env, ch.shutdown(false));
          assert.equal(end.pendingGrants, 0);
          return true;
        } catch (e) {
          if (process.env.HV2M_DEBUG) console.error(e);
          throw e;
        }
      }),
      { numRuns: RUNS, seed: 42 },
    );
    env.run({ until: env.now + 1 * MS });
    assert.equal(a.side.memory.outstanding, base, 'every posted page came back over all runs');
  });
});

describe('hv2m: a hostile receiver posting garbage requests', () => {
  it('bad grant refs cost my copies (Xen refuses them, counted); a request index past the ring ends the channel; my stream completes byte-exact over the ordinary NIC', () => {
    const env = new SimEnvironment({ seed: 2 });
    const nic = (i: number) => ({ path: 'hv2m', mac: `00:16:3e:00:00:0${i}`, ip: `10.0.0.${i}/24` });
    const hp = env.process(
      Host.build(env, profile, {
        name: 'h',
        pcpus: 4,
        guests: [
          { name: 'a', tenant: 't', nics: [nic(1)] },
          { name: 'b', tenant: 't', nics: [nic(2)] },
        ],
      }),
    );
    env.run({ until: hp });
    if (!hp.ok) throw hp.error;
    const host = hp.value;
    env.run({ until: env.now + 5 * MS });
    const a = host.guest('a');
    const b = host.guest('b');
    const na = a.nics[0]!.attached as Hv2mNic;
    const nb = b.nics[0]!.attached as Hv2mNic;
    assert.ok(na.settled && nb.settled);
    // b turns hostile: it rewrites the requests it posted to a with grant refs it never gave.
    const chB = nb.module.channels.get(a.domid)!;
    const ring = chB.end.rx!;
    const page = guestFramePage(b.side.kernel.mem, chB.end.ringFrame);
    // the gref field of each netif_rx_request (id u16, pad u16, gref u32)
    for (let i = 0; i < 256; i++) page.setU32(ring.sring.slotOffset(i) + 4, 0xfff0 + (i & 7));
    const ts = tcpStream(
      env,
      { client: a.stack, server: b.stack, serverAddr: ipv4('10.0.0.2'), port: 13001 },
      { bytes: 3_000_000, messageSize: 65536 },
    );
    env.run({ until: env.now + 2 * MS });
    const s1 = na.stats();
    assert.ok(s1['hv2m.txCopyErrors']! > 0, `Xen refused a's copies into refs b never granted: ${s1['hv2m.txCopyErrors']}`);
    // then it pushes its request producer index far past the ring
    ring.sring.reqProd = (ring.sring.reqProd + 5000) >>> 0;
    env.run({ until: ts });
    assert.ok(ts.ok, String(ts.error));
    assert.equal(ts.value.bytesVerified, 3_000_000, 'the stream completed over the ordinary NIC, byte-exact');
    const s2 = na.stats();
    assert.equal(s2['hv2m.faults'], 1, 'a ended the channel for the broken index');
    assert.ok(na.module.barred.has(b.domid) && !na.module.channels.has(b.domid), 'and opens no new one while b stays listed');
    assert.ok(s2['front.txPackets']! > 0, 'a fell back to netfront');
  });
});
