import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Resource, SimEnvironment, type SimEvent } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import {
  GNTST_bad_gntref,
  GNTST_bad_virt_addr,
  GNTST_okay,
  netifTxRequestCodec,
  netifTxResponseCodec,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateUnknown,
  xenbusStrstate,
} from '../abi/index.js';
import { Hypervisor } from '../hypervisor.js';
import { BackRing, FrontRing, guestFramePage } from '../ring.js';
import { Toolstack } from '../toolstack.js';
import { bootGuestKernel } from './boot.js';
import { xenbusMapRingValloc, xenbusUnmapRingVfree } from './grant-ring.js';
import {
  XenbusDevice,
  xenbusDevFatal,
  xenbusReadDriverState,
  xenbusSwitchState,
  xenbusUnwatchOtherend,
  xenbusWatchOtherend,
} from './xenbus-device.js';
import type { XenbusClient } from './xenbus.js';
import type { XenGuest } from './xen-guest.js';

const profile = Profile.load('default');
const step = profile.ns('guest.gnttab.eagainRetryStep');

interface World {
  env: SimEnvironment;
  ts: Toolstack;
  run<T>(body: Generator<SimEvent<unknown>, T, unknown>): T;
  settle(): void;
  read(path: string): string | null;
  /** A guest with a vif 0 whose frontend and backend directories are written as libxl does (both state 1). */
  guest(name: string): { kernel: XenGuest; xb: XenbusClient; domid: number; front: XenbusDevice; back: XenbusDevice; F: string; B: string };
}

function world(): World {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, profile, { pcpus: 2 });
  const run = <T>(body: Generator<SimEvent<unknown>, T, unknown>): T => {
    const p = env.process(body);
    env.run({ until: p });
    if (!p.ok) throw p.error;
    return p.value;
  };
  const ts = run(Toolstack.boot(hv, profile, { name: 'Domain-0', vcpus: 1, memoryMiB: 512 }));
  const read = (path: string): string | null => {
    const r = ts.xs.read(path);
    return r.ok ? new TextDecoder().decode(r.value) : null;
  };
  const guest: World['guest'] = (name) => {
    const { kernel, xenbus, domid } = run(
      (function* () {
        const rec = yield* ts.createGuest({ name, kind: 'hvm', vcpus: 1, memoryMiB: 64 });
        const k = yield* bootGuestKernel(hv, rec.domain, profile);
        return { ...k, domid: rec.domain.domid };
      })(),
    );
    const F = `/local/domain/${domid}/device/vif/0`;
    const B = `/local/domain/0/backend/vif/${domid}/0`;
    for (const [dir, perms] of [
      [F, [`n${domid}`, 'r0']],
      [B, ['n0', `r${domid}`]],
    ] as const) {
      assert.ok(ts.xs.write(`${dir}/state`, '1').ok);
      assert.ok(ts.xs.setPerms(dir, perms).ok);
      assert.ok(ts.xs.setPerms(`${dir}/state`, perms).ok);
    }
    const front = new XenbusDevice(xenbus, domid, 'device/vif/0', B, 0);
    const back = new XenbusDevice(ts.dom0Xenbus!, 0, `backend/vif/${domid}/0`, F, domid);
    return { kernel, xb: xenbus, domid, front, back, F, B };
  };
  return { env, ts, run, settle: () => env.run({ until: env.now + 5_000_000 }), read, guest };
}

describe('xenbus device helpers (xenbus_client.c)', () => {
  it('xenbus_switch_state writes <nodename>/state in a transaction, and not again for the same state', () => {
    const w = world();
    const g = w.guest('a');
    const watcher = w.ts.store.connect(0);
    assert.ok(watcher.watch(`${g.F}/state`, 'f').ok);
    watcher.takeEvents();
    assert.equal(g.front.state, XenbusStateInitialising);
    assert.equal(w.run(xenbusSwitchState(g.front, XenbusStateConnected)), 0);
    assert.equal(w.read(`${g.F}/state`), '4');
    assert.equal(g.front.state, XenbusStateConnected);
    assert.equal(watcher.takeEvents().length, 1);
    const served = w.ts.xenstored.requestsServed(g.domid);
    assert.equal(w.run(xenbusSwitchState(g.front, XenbusStateConnected)), 0);
    assert.equal(w.ts.xenstored.requestsServed(g.domid), served, 'no request at all: dev->state already says Connected');
    assert.equal(watcher.takeEvents().length, 0, 'no watch fired');
    assert.equal(xenbusStrstate(g.front.state), 'Connected');
  });

  it('many devices switching at once: beyond xenstored’s transaction quota some fail (ENOSPC, then Closing); with a shared stateLock all succeed', () => {
    const attempt = (locked: boolean): number[] => {
      const w = world();
      const g = w.guest('a');
      const lock = new Resource(w.env, 1);
      const devs = Array.from({ length: 16 }, (_, i) => {
        const node = `/local/domain/${g.domid}/data/ch/${i}`;
        assert.ok(w.ts.xs.write(`${node}/state`, '1').ok);
        assert.ok(w.ts.xs.setPerms(node, [`n${g.domid}`]).ok);
        assert.ok(w.ts.xs.setPerms(`${node}/state`, [`n${g.domid}`]).ok);
        const d = new XenbusDevice(g.xb, g.domid, node, `/local/domain/0/x/${i}`, 0);
        if (locked) d.stateLock = lock;
        return d;
      });
      const procs = devs.map((d) => w.env.process(xenbusSwitchState(d, XenbusStateConnected)));
      w.settle();
      return procs.map((p) => {
        assert.ok(p.ok);
        return p.value;
      });
    };
    const free = attempt(false);
    assert.ok(
      free.some((rc) => rc < 0),
      `16 concurrent transactions exceed the quota of 10 + 1: ${free.join(',')}`,
    );
    assert.deepEqual(attempt(true), new Array<number>(16).fill(0), 'one at a time: every switch succeeds');
  });

  it('does not resurrect a removed directory: the transaction aborts, dev->state still moves', () => {
    const w = world();
    const g = w.guest('a');
    assert.ok(w.ts.xs.rm(g.F).ok);
    assert.equal(w.run(xenbusSwitchState(g.front, XenbusStateClosing)), 0);
    assert.equal(w.read(g.F), null, 'still gone');
    assert.equal(g.front.state, XenbusStateClosing);
  });

  it('xenbus_dev_fatal writes error/<nodename>/error under the domain’s home and switches to Closing (frontend and backend)', () => {
    const w = world();
    const g = w.guest('a');
    w.run(xenbusDevFatal(g.front, -22, 'no tx-ring-ref'));
    assert.equal(w.read(`/local/domain/${g.domid}/error/device/vif/0/error`), '22 no tx-ring-ref');
    assert.equal(w.read(`${g.F}/state`), '5');
    assert.equal(g.front.state, XenbusStateClosing);
    w.run(xenbusDevFatal(g.back, -95, 'frontend does not support rx-copy'));
    assert.equal(w.read(`/local/domain/0/error/backend/vif/${g.domid}/0/error`), '95 frontend does not support rx-copy');
    assert.equal(w.read(`${g.B}/state`), '5');
  });

  it('a state write the store refuses is reported once in the error node, without recursing', () => {
    const w = world();
    const g = w.guest('a');
    // The frontend directory is read-only to the guest here (as the backend's is).
    assert.ok(w.ts.xs.setPerms(`${g.F}/state`, ['n0', `r${g.domid}`]).ok);
    assert.equal(w.run(xenbusSwitchState(g.front, XenbusStateConnected)), -13);
    assert.equal(w.read(`${g.F}/state`), '1', 'unchanged');
    // The inner switch to Closing failed too; its error (written last) is what remains.
    assert.equal(w.read(`/local/domain/${g.domid}/error/device/vif/0/error`), '13 writing new state');
    // As Linux: both transactions ended without error (they aborted), so dev->state took the requested value.
    assert.equal(g.front.state, XenbusStateConnected);
  });

  it('the other-end watch calls back with the peer’s parsed state on every firing, until unwatched', () => {
    const w = world();
    const g = w.guest('a');
    const seen: number[] = [];
    assert.equal(
      w.run(
        xenbusWatchOtherend(g.front, (s) => {
          seen.push(s);
        }),
      ),
      0,
    );
    w.settle();
    assert.deepEqual(seen, [1], 'the initial firing reads Initialising');
    for (const v of ['2', '4', 'garbage', ' 5']) {
      assert.ok(w.ts.xs.write(`${g.B}/state`, v).ok);
      w.settle();
    }
    assert.deepEqual(
      seen,
      [1, XenbusStateInitWait, XenbusStateConnected, XenbusStateUnknown, XenbusStateClosing],
      'unparsable reads as Unknown; "%d" skips spaces',
    );
    assert.ok(w.ts.xs.rm(g.B).ok);
    w.settle();
    assert.deepEqual(seen.slice(5), [XenbusStateUnknown], 'removed: Unknown');
    assert.equal(w.run(xenbusReadDriverState(g.xb, g.B)), XenbusStateUnknown);
    assert.equal(w.run(xenbusUnwatchOtherend(g.front)), 0);
    assert.ok(w.ts.xs.write(`${g.B}/state`, '6').ok);
    w.settle();
    assert.equal(seen.length, 6, 'no callback after unwatch');
  });

  it('a watch the store refuses is xenbus_dev_fatal("adding watch on …")', () => {
    const w = world();
    const g = w.guest('a');
    // A relative path with a character xenstored rejects (EINVAL).
    const bad = new XenbusDevice(g.xb, g.domid, 'device/vif/1', '/local/domain/0/backend/vif/bad path', 0);
    assert.ok(w.ts.xs.write(`/local/domain/${g.domid}/device/vif/1/state`, '1').ok);
    assert.ok(w.ts.xs.setPerms(`/local/domain/${g.domid}/device/vif/1`, [`n${g.domid}`]).ok);
    assert.ok(w.ts.xs.setPerms(`/local/domain/${g.domid}/device/vif/1/state`, [`n${g.domid}`]).ok);
    assert.equal(w.run(xenbusWatchOtherend(bad, () => {})), -22);
    assert.equal(w.read(`/local/domain/${g.domid}/error/device/vif/1/error`), '22 adding watch on /local/domain/0/backend/vif/bad path/state');
    assert.equal(w.read(`/local/domain/${g.domid}/device/vif/1/state`), '5');
  });
});

describe('xenbus_map_ring_valloc / xenbus_unmap_ring_vfree', () => {
  it('Dom0 maps the guest’s granted ring page and runs the back end of a netif TX ring on it', () => {
    const w = world();
    const g = w.guest('a');
    const v0 = w.ts.dom0.vcpus[0]!;
    const gfn = g.kernel.frames.alloc()!;
    const front = FrontRing.init(guestFramePage(g.kernel.mem, gfn), netifTxRequestCodec, netifTxResponseCodec);
    const ref = g.kernel.gnttab.grantAccess(0, gfn, false);
    const m = w.run(xenbusMapRingValloc(g.back, w.ts.dom0Kernel, v0, [ref], step));
    assert.equal(m.rc, 0);
    const ring = m.ring!;
    assert.equal(ring.handles.length, 1);
    const back = BackRing.init(ring.page, netifTxRequestCodec, netifTxResponseCodec);
    front.putRequest({ gref: 77, offset: 0, flags: 0, id: 1, size: 60 });
    assert.equal(front.pushRequestsAndCheckNotify(), true);
    assert.deepEqual(back.consumeRequest(), { gref: 77, offset: 0, flags: 0, id: 1, size: 60 });
    back.putResponse({ id: 1, status: 0 });
    back.pushResponses();
    assert.deepEqual(front.consumeResponse(), { id: 1, status: 0 });
    assert.equal(g.kernel.gnttab.endAccess(ref), false, 'the grant is in use while mapped');
    assert.equal(w.run(xenbusUnmapRingVfree(g.back, w.ts.dom0Kernel, v0, ring)), GNTST_okay);
    assert.equal(g.kernel.gnttab.endAccess(ref), true);
    assert.equal(w.run(xenbusUnmapRingVfree(g.back, w.ts.dom0Kernel, v0, ring)), GNTST_bad_virt_addr, 'a second unmap finds nothing');
    assert.match(w.read(`/local/domain/0/error/backend/vif/${g.domid}/0/error`) ?? '', /^2 can't find mapped virtual address/);
  });

  it('a bad ring ref is xenbus_dev_fatal with the GNTST status; what did map is unmapped again', () => {
    const w = world();
    const g = w.guest('a');
    const v0 = w.ts.dom0.vcpus[0]!;
    const gfn = g.kernel.frames.alloc()!;
    const good = g.kernel.gnttab.grantAccess(0, gfn, false);
    const m = w.run(xenbusMapRingValloc(g.back, w.ts.dom0Kernel, v0, [good, 99999], step));
    assert.equal(m.rc, -2, '-ENOENT');
    assert.equal(m.ring, undefined);
    assert.equal(
      w.read(`/local/domain/0/error/backend/vif/${g.domid}/0/error`),
      `${-GNTST_bad_gntref} mapping in shared page 99999 from domain ${g.domid}`,
    );
    assert.equal(w.read(`${g.B}/state`), '5', 'the backend is Closing');
    assert.equal(g.kernel.gnttab.endAccess(good), true, 'the good page was unmapped again');
    assert.equal(
      w.run(xenbusMapRingValloc(g.back, w.ts.dom0Kernel, v0, new Array<number>(17).fill(good), step)).rc,
      -22,
      'more than XENBUS_MAX_RING_GRANTS',
    );
  });
});
