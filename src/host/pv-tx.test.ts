/**
 * The pv path's TX ring under pressure and under attack, on a whole host: a full ring stops
 * netfront's queue until responses free slots (and the ring rules hold notifications back
 * meanwhile); each kind of malformed request a guest can write is handled as Linux 3.18's
 * netback handles it — a dropped frame with NETIF_RSP_ERROR, or xenvif_fatal_tx_err — and the
 * other guests' traffic goes on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, type AnyOfResult } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4, isSocketError } from '../net/index.js';
import { NETIF_RSP_ERROR, NETTXF_more_data, NET_TX_RING_SIZE, PAGE_SIZE } from '../xen/abi/index.js';
import type { PvNic } from '../vnet/pv/index.js';
import { Host } from './host.js';
import { run } from './test-support.js';

const profile = Profile.load('default');

function build(seed = 9): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: ['a', 'b', 'c'].map((n, i) => ({ name: n, nics: [{ path: 'pv', mac: `00:16:3e:00:00:0${i + 1}`, ip: `10.0.0.${i + 1}/24` }] })),
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

function pings(env: SimEnvironment, host: Host, from: string, to: string): boolean {
  const sock = host.guest(from).stack.icmp.openPing();
  const ok = run(
    env,
    (function* () {
      yield* sock.send(ipv4(to), 1, new Uint8Array(56));
      const r = (yield env.anyOf([env.process(sock.recv()), env.timeout(50_000_000)])) as AnyOfResult;
      return r.index === 0;
    })(),
  );
  sock.close();
  return ok;
}

const nic = (host: Host, g: string): PvNic => host.guest(g).nics[0]!.attached as PvNic;

describe('pv TX ring: full ring and notification hold-off', () => {
  it('a full ring stops the queue; the stack holds packets until wake(); hold-off: one kick for a ring-full of requests, response events half-way', () => {
    const { env, host } = build();
    const a = nic(host, 'a');
    const vif = a.back.vif;
    const port = vif.rings!.txPort;
    const d0 = host.dom0.kernel;
    assert.ok(pings(env, host, 'a', '10.0.0.2'), 'addresses resolved');
    // Dom0 takes no TX events for a while (its backend is not running): the ring fills.
    d0.evtchn.mask(port);
    const before = { ...a.device.stats };
    const rx = host.guest('b').stack.udp.socket();
    rx.rcvbuf = 16 << 20;
    assert.equal(rx.bind(7000), 7000);
    const tx = host.guest('a').stack.udp.socket();
    tx.sndbuf = 16 << 20;
    const N = 400;
    const sender = env.process(
      (function* () {
        for (let i = 0; i < N; i++) {
          const m = new Uint8Array(1000);
          m[0] = i & 0xff;
          m[1] = i >> 8;
          const r = yield* tx.sendTo(ipv4('10.0.0.2'), 7000, m);
          if (isSocketError(r)) throw new Error(r.toString());
        }
      })(),
    );
    env.run({ until: env.now + 3_000_000 });
    assert.ok(sender.ok, 'the sender ran');
    const iface = host.guest('a').nics[0]!.iface;
    assert.ok(a.device.stats.txStops > before.txStops, 'netfront stopped its queue');
    assert.ok(a.device.txInFlight > NET_TX_RING_SIZE - 19 && a.device.txInFlight <= NET_TX_RING_SIZE, `${a.device.txInFlight} slots in flight`);
    assert.ok(iface.txq.length > 0 && iface.txq.stats.stops > 0, 'the stack holds the rest in its queue, waiting for wake()');
    const sent = a.device.stats.txPackets - before.txPackets;
    assert.equal(sent, a.device.txInFlight);
    // Hold-off: the backend asked (req_event) for a kick on the first request only.
    assert.equal(a.device.stats.txNotify - before.txNotify, 1, `${sent} requests pushed with one notification`);
    assert.equal(vif.rings!.tx.sring.reqEvent, (vif.rings!.tx.reqCons + 1) >>> 0);
    // The backend runs again: the pending event is delivered at unmask.
    const vnb = { ...vif.stats };
    run(env, d0.evtchn.unmask(host.dom0.domain.vcpus[0]!, port));
    env.run({ until: env.now + 20_000_000 });
    assert.ok(a.device.stats.txWakes > before.txWakes, 'netfront woke the queue (upper.wake) once responses freed slots');
    assert.equal(iface.txq.length, 0);
    const got: number[] = [];
    for (;;) {
      if (rx.queued === 0) break;
      const d = run(env, rx.recvFrom());
      if (isSocketError(d)) break;
      got.push(d.data[0]! | (d.data[1]! << 8));
    }
    assert.deepEqual(
      got,
      Array.from({ length: N }, (_, i) => i),
      'every datagram arrived, in order',
    );
    const frames = vif.stats.txFrames - vnb.txFrames;
    assert.ok(
      vif.stats.txNotify - vnb.txNotify < frames / 4,
      `TX-response events ${vif.stats.txNotify - vnb.txNotify} for ${frames} responses (rsp_event half-way)`,
    );
  });
});

/** Writes raw TX requests into guest a's ring (as a hostile kernel would), pushes them and kicks the backend. */
function inject(
  env: SimEnvironment,
  host: Host,
  reqs: (gref: number) => { offset: number; flags: number; size: number }[],
  badGref = false,
): number[] {
  const ga = host.guest('a');
  const a = nic(host, 'a');
  const r = a.device.rings!;
  const buf = ga.side.memory.alloc(PAGE_SIZE);
  const gref = badGref ? 4000 : ga.side.kernel.gnttab.grantAccess(0, buf.gfn, true);
  const idx: number[] = [];
  let id = NET_TX_RING_SIZE - 1;
  for (const q of reqs(gref)) idx.push(r.tx.putRequest({ gref, id: id--, ...q }));
  r.tx.pushRequests();
  run(env, ga.side.kernel.evtchn.notify(ga.domain.vcpus[0]!, r.txPort));
  env.run({ until: env.now + 2_000_000 });
  return idx;
}

describe('pv TX: malformed requests handled as Linux 3.18 netback', () => {
  const dropped = (name: string, reqs: (gref: number) => { offset: number; flags: number; size: number }[], badGref = false): void => {
    it(`${name}: the frame is dropped with NETIF_RSP_ERROR, the vif carries on`, () => {
      const { env, host } = build();
      const a = nic(host, 'a');
      const vif = a.back.vif;
      const e0 = vif.stats.txErrors;
      const idx = inject(env, host, reqs, badGref);
      assert.equal(vif.stats.txErrors, e0 + 1);
      assert.equal(vif.stats.fatalErrors, 0);
      assert.equal(vif.disabled, false);
      for (const i of idx) assert.equal(a.device.rings!.tx.copyResponse(i).status, NETIF_RSP_ERROR, `response ${i}`);
      assert.ok(pings(env, host, 'a', '10.0.0.2'), 'the vif still works');
      assert.ok(pings(env, host, 'b', '10.0.0.3'), 'other guests are unaffected');
    });
  };
  const fatal = (name: string, re: RegExp, reqs: ((gref: number) => { offset: number; flags: number; size: number }[]) | null): void => {
    it(`${name}: xenvif_fatal_tx_err — the vif is disabled and its carrier off; other guests go on`, () => {
      const { env, host } = build();
      const a = nic(host, 'a');
      const vif = a.back.vif;
      if (reqs !== null) inject(env, host, reqs);
      else {
        // The producer index pushed past the ring: more unconsumed requests than it holds.
        const r = a.device.rings!;
        r.tx.sring.reqProd = (r.tx.reqProdPvt + NET_TX_RING_SIZE + 44) >>> 0;
        run(env, host.guest('a').side.kernel.evtchn.notify(host.guest('a').domain.vcpus[0]!, r.txPort));
        env.run({ until: env.now + 2_000_000 });
      }
      assert.equal(vif.stats.fatalErrors, 1);
      assert.match(vif.fatal ?? '', re);
      assert.equal(vif.disabled, true);
      assert.equal(vif.carrier, false, "queue 0's kthread turned the carrier off");
      assert.equal(host.dom0.network.bridge('xenbr0').port(vif.name)?.state, 'disabled', 'and the bridge disabled the port');
      assert.ok(!pings(env, host, 'a', '10.0.0.2'), 'the misbehaving guest is cut off');
      assert.ok(pings(env, host, 'b', '10.0.0.3'), 'other guests are unaffected');
      assert.ok(pings(env, host, 'c', '10.0.0.2'));
    });
  };

  dropped('a bad grant ref (the copy fails with GNTST_bad_gntref)', () => [{ offset: 0, flags: 0, size: 60 }], true);
  fatal('offset + size beyond the page', /^txreq\.offset: f00, size: 512, end: 4352$/, () => [{ offset: 0xf00, flags: 0, size: 512 }]);
  dropped('a frame over 64 KiB (its slots add up to more than the first size can say)', () => [
    { offset: 0, flags: NETTXF_more_data, size: 0xffff },
    ...Array.from({ length: 17 }, (_, i) => ({ offset: 0, flags: i < 16 ? NETTXF_more_data : 0, size: PAGE_SIZE })),
  ]);
  // xenvif_count_requests counts the slots after the first: 19 of them reach XEN_NETBK_LEGACY_SLOTS_MAX (18).
  dropped(`more slots than the legacy limit (a first slot and 19 more; XEN_NETBK_LEGACY_SLOTS_MAX 18)`, () => [
    { offset: 0, flags: NETTXF_more_data, size: 20 * 100 },
    ...Array.from({ length: 19 }, (_, i) => ({ offset: 0, flags: i < 18 ? NETTXF_more_data : 0, size: 100 })),
  ]);
  fatal('fatal_skb_slots (20) or more slots: a malicious frontend', /^Malicious frontend using 20 slots, threshold 20$/, () => [
    { offset: 0, flags: NETTXF_more_data, size: 22 * 100 },
    ...Array.from({ length: 21 }, (_, i) => ({ offset: 0, flags: i < 20 ? NETTXF_more_data : 0, size: 100 })),
  ]);
  fatal('a producer index pushed past the ring', /^Impossible number of requests\. req_prod \d+, req_cons \d+, size 256$/, null);
});
