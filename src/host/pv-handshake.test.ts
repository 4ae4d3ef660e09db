/**
 * The pv path's XenbusState handshake and teardown on a whole host (Linux 3.18's
 * xen-netfront / xen-netback xenbus sides, src/vnet/pv), built with Host.build.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, type AnyOfResult } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { GNTTAB_NR_RESERVED_ENTRIES, XenbusStateClosed, XenbusStateClosing, XenbusStateConnected, XenbusStateInitWait } from '../xen/abi/index.js';
import { TP_RX_DELIVER, TP_TX_START } from '../vnet/index.js';
import type { PvNic } from '../vnet/pv/index.js';
import { Host } from './host.js';
import type { HostInput } from './description.js';
import { run } from './test-support.js';

const profile = Profile.load('default');

function build(input: HostInput, seed = 5): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed });
  const p = env.process(Host.build(env, profile, input));
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

function rd(host: Host, path: string): string | null {
  const r = host.toolstack.xs.read(path);
  return r.ok ? Buffer.from(r.value).toString() : null;
}

/** One ping from `from` to `to`; true if the reply came. */
function pings(env: SimEnvironment, host: Host, from: string, to: string): boolean {
  const sock = host.guest(from).stack.icmp.openPing();
  const p = env.process(
    (function* () {
      yield* sock.send(ipv4(to), 1, new Uint8Array(56));
      const r = (yield env.anyOf([env.process(sock.recv()), env.timeout(50_000_000)])) as AnyOfResult;
      return r.index === 0;
    })(),
  );
  env.run({ until: p });
  const replied = p.ok && p.value;
  sock.close();
  return replied;
}

const nic = (host: Host, g: string, i = 0): PvNic => host.guest(g).nics[i]!.attached as PvNic;

const twoGuests = (extraA: HostInput['guests'] = []): HostInput => ({
  name: 'h',
  pcpus: 4,
  dom0: { vcpus: 2, memoryMiB: 1024, ip: '10.0.0.254/24' },
  guests: [
    { name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24' }] },
    { name: 'b', nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
    ...(extraA ?? []),
  ],
});

describe('pv handshake (Linux 3.18 xenbus)', () => {
  it("both ends reach Connected with the real keys: backend features first, then the frontend's rings, channels and requests", () => {
    const { env, host } = build(twoGuests());
    const a = nic(host, 'a');
    const d = host.guest('a').domid;
    const B = `/local/domain/0/backend/vif/${d}/0`;
    const F = `/local/domain/${d}/device/vif/0`;
    assert.equal(rd(host, `${B}/state`), String(XenbusStateConnected));
    assert.equal(rd(host, `${F}/state`), String(XenbusStateConnected));
    for (const [k, v] of Object.entries({
      'feature-sg': '1',
      'feature-gso-tcpv4': '1',
      'feature-rx-copy': '1',
      'feature-rx-flip': '0',
      'feature-split-event-channels': '1',
      'multi-queue-max-queues': '2',
      'hotplug-status': 'connected',
    })) {
      assert.equal(rd(host, `${B}/${k}`), v, `${B}/${k}`);
    }
    for (const [k, v] of Object.entries({ 'request-rx-copy': '1', 'feature-rx-notify': '1', 'feature-sg': '1', 'feature-gso-tcpv4': '1' }))
      assert.equal(rd(host, `${F}/${k}`), v, `${F}/${k}`);
    const rings = a.device.rings!;
    assert.equal(rd(host, `${F}/event-channel-tx`), String(rings.txPort));
    assert.equal(rd(host, `${F}/event-channel-rx`), String(rings.rxPort));
    assert.equal(rd(host, `${F}/event-channel`), null, 'split channels: no single event-channel key');
    assert.ok(
      Number(rd(host, `${F}/tx-ring-ref`)) >= GNTTAB_NR_RESERVED_ENTRIES && Number(rd(host, `${F}/rx-ring-ref`)) >= GNTTAB_NR_RESERVED_ENTRIES,
    );
    assert.equal(a.back.mappedRings, 2);
    assert.equal(a.device.rxPosted, 256, 'the RX ring holds 256 posted pages');
    assert.ok(host.dom0.network.bridge('xenbr0').port(`vif${d}.0`) !== undefined, 'the vif is a bridge port');
    const seen: string[] = [];
    const off1 = env.trace.on(TP_TX_START, (_t, p) => seen.push(`tx ${p.path} d${p.domid} ${p.dev}`));
    const off2 = env.trace.on(TP_RX_DELIVER, (_t, p) => seen.push(`rx ${p.path} d${p.domid} ${p.dev}`));
    assert.ok(pings(env, host, 'a', '10.0.0.2'));
    off1();
    off2();
    const db = host.guest('b').domid;
    for (const e of [`tx pv d${d} eth0`, `rx pv d${db} eth0`, `tx pv d${db} eth0`, `rx pv d${d} eth0`])
      assert.ok(seen.includes(e), `trace ${e} in ${seen.join(', ')}`);
    assert.ok(pings(env, host, 'a', '10.0.0.254'), 'ping to Dom0 over its bridge');
  });

  it('a backend without split channels: one event-channel key, traffic flows', () => {
    const { env, host } = build({
      pcpus: 2,
      guests: [
        { name: 'a', nics: [{ path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24', options: { backend: { splitEventChannels: false } } }] },
        { name: 'b', type: 'pv', nics: [{ path: 'pv', mac: '00:16:3e:00:00:02', ip: '10.0.0.2/24' }] },
      ],
    });
    const d = host.guest('a').domid;
    const F = `/local/domain/${d}/device/vif/0`;
    assert.equal(rd(host, `${F}/event-channel`), String(nic(host, 'a').device.rings!.txPort));
    assert.equal(rd(host, `${F}/event-channel-tx`), null);
    assert.ok(pings(env, host, 'a', '10.0.0.2'));
    assert.ok(pings(env, host, 'b', '10.0.0.1'));
  });

  /** Guest `c` with a broken first NIC and a good second one, on a host with `a` and `b`. */
  const broken = (options: Record<string, unknown>): { env: SimEnvironment; host: Host; c: PvNic } => {
    const { env, host } = build(
      twoGuests([
        {
          name: 'c',
          nics: [
            { path: 'pv', mac: '00:16:3e:00:00:03', ip: '10.9.0.3/24', options },
            { path: 'pv', mac: '00:16:3e:00:00:13', ip: '10.0.0.3/24' },
          ],
        },
      ]),
    );
    return { env, host, c: nic(host, 'c') };
  };

  it('a frontend that omits a required key (tx-ring-ref): xenbus_dev_fatal — error node, Closing then Closed — and its guest keeps running', () => {
    const { env, host, c } = broken({ faults: { omitKeys: ['tx-ring-ref'] } });
    const d = host.guest('c').domid;
    assert.match(
      rd(host, `/local/domain/0/error/backend/vif/${d}/0/error`) ?? '',
      new RegExp(`^2 reading /local/domain/${d}/device/vif/0/ring-ref$`),
    );
    assert.ok(c.back.state === XenbusStateClosing || c.back.state === XenbusStateClosed, `backend ${c.back.stateName}`);
    env.run({ until: env.now + 1_000_000 });
    assert.equal(c.front.state, XenbusStateClosed, 'the frontend closed in answer (xenbus_frontend_closed)');
    assert.equal(c.back.state, XenbusStateClosed);
    assert.equal(c.back.mappedRings, 0);
    assert.equal(host.dom0.network.bridge('xenbr0').port(`vif${d}.0`), undefined, 'never bridged');
    assert.ok(pings(env, host, 'c', '10.0.0.1'), 'the guest runs on, over its other NIC');
    assert.ok(pings(env, host, 'a', '10.0.0.2'), 'other guests are unaffected');
    // The failed NIC and its guest can still be removed cleanly.
    run(env, host.removeGuest('c'));
    assert.equal(rd(host, `/local/domain/0/backend/vif/${d}/0`), null);
    assert.equal(rd(host, `/local/domain/0/backend/vif/${d}/1`), null);
    assert.equal(host.hv.domain(d), undefined);
    assert.ok(pings(env, host, 'a', '10.0.0.2'));
  });

  it('a frontend asking for more queues than offered: xenbus_dev_fatal ("guest requested 4 queues, exceeding the maximum of 2.")', () => {
    const { env, host, c } = broken({ faults: { keys: { 'multi-queue-num-queues': '4' } } });
    const d = host.guest('c').domid;
    assert.equal(rd(host, `/local/domain/0/error/backend/vif/${d}/0/error`), '22 guest requested 4 queues, exceeding the maximum of 2.');
    env.run({ until: env.now + 1_000_000 });
    assert.equal(c.front.state, XenbusStateClosed);
    assert.equal(c.back.state, XenbusStateClosed);
    assert.ok(pings(env, host, 'c', '10.0.0.2'));
  });

  it('request-rx-copy=0 (the flipping receive path 3.18 no longer has): the backend refuses to connect, as read_xenbus_vif_flags returns -EOPNOTSUPP without an error node', () => {
    const { env, host, c } = broken({ faults: { keys: { 'request-rx-copy': '0' } } });
    const d = host.guest('c').domid;
    assert.equal(c.back.connectError?.err, -95);
    assert.equal(c.back.state, XenbusStateInitWait, 'the backend stays in InitWait');
    assert.equal(rd(host, `/local/domain/0/error/backend/vif/${d}/0/error`), null);
    assert.equal(c.back.mappedRings, 0);
    assert.ok(pings(env, host, 'c', '10.0.0.1'), 'the guest runs on');
    run(env, c.detach());
    assert.equal(rd(host, `/local/domain/0/backend/vif/${d}/0`), null);
    assert.equal(c.front.state, XenbusStateClosed);
  });
});

describe('pv teardown', () => {
  it('hot-unplug (xl network-detach): Closing → Closed on both ends, rings unmapped, grants ended, buffers back, vif off the bridge; the other guest goes on', () => {
    const { env, host } = build(twoGuests());
    const ga = host.guest('a');
    const a = nic(host, 'a');
    const xg = ga.side.kernel;
    const d0mem = host.dom0.memory;
    const d0base = d0mem.outstanding;
    assert.ok(pings(env, host, 'a', '10.0.0.2'));
    assert.ok(ga.side.memory.outstanding >= 256, "the posted RX pages are the guest's");
    run(env, a.detach());
    const d = ga.domid;
    assert.equal(a.front.state, XenbusStateClosed);
    assert.equal(a.back.removed, true);
    assert.equal(a.back.mappedRings, 0);
    assert.equal(rd(host, `/local/domain/0/backend/vif/${d}/0`), null);
    assert.equal(rd(host, `/local/domain/${d}/device/vif/0`), null);
    assert.equal(host.dom0.network.bridge('xenbr0').port(`vif${d}.0`), undefined);
    assert.equal(xg.gnttab.available, xg.gnttab.capacity - GNTTAB_NR_RESERVED_ENTRIES, 'every grant ref of the guest ended and free');
    env.run({ until: env.now + 1_000_000 });
    assert.equal(ga.side.memory.outstanding, 0, "the guest's packet buffers are all back");
    assert.equal(d0mem.outstanding, d0base, "Dom0's packet buffers are back to their baseline");
    assert.ok(pings(env, host, 'b', '10.0.0.254'), 'b still reaches Dom0');
    assert.ok(!pings(env, host, 'b', '10.0.0.1'), 'a is gone from the network');
  });

  it('removeGuest: its NIC detached, the domain destroyed, Dom0 clean; the other guest goes on', () => {
    const { env, host } = build(twoGuests());
    const d0base = host.dom0.memory.outstanding;
    assert.ok(pings(env, host, 'a', '10.0.0.2'));
    const d = host.guest('a').domid;
    run(env, host.removeGuest('a'));
    env.run({ until: env.now + 1_000_000 });
    assert.equal(host.hv.domain(d), undefined);
    assert.equal(host.dom0.network.bridge('xenbr0').port(`vif${d}.0`), undefined);
    assert.equal(rd(host, `/local/domain/0/backend/vif/${d}/0`), null);
    assert.equal(host.dom0.memory.outstanding, d0base);
    assert.ok(pings(env, host, 'b', '10.0.0.254'));
  });
});
