import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, type SimEvent } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { bootGuestKernel } from './guest/boot.js';
import { XenGuest } from './guest/xen-guest.js';
import type { XenbusClient } from './guest/xenbus.js';
import { Hypervisor } from './hypervisor.js';
import { Toolstack, XENSTORE_SPECIAL_GFN } from './toolstack.js';
import { XS_READ } from './abi/xs-wire.js';
import { xenstoreRings } from './xenstore/ring.js';
import { XsReassembler, bytesToLatin1, encodeMessage, latin1ToBytes, type XsMessage } from './xenstore/wire.js';

const profile = Profile.load('default');

interface World {
  env: SimEnvironment;
  hv: Hypervisor;
  ts: Toolstack;
  run<T>(body: Generator<SimEvent<unknown>, T, unknown>): T;
  /** Builds a guest and boots its kernel up to a connected xenbus. */
  guest(name: string): { kernel: XenGuest; xb: XenbusClient; domid: number };
}

function world(seed = 1): World {
  const env = new SimEnvironment({ seed });
  const hv = new Hypervisor(env, profile, { pcpus: 2 });
  const run = <T>(body: Generator<SimEvent<unknown>, T, unknown>): T => {
    const p = env.process(body);
    env.run({ until: p });
    if (!p.ok) throw p.error;
    return p.value;
  };
  const ts = run(Toolstack.boot(hv, profile, { name: 'Domain-0', vcpus: 1, memoryMiB: 512 }));
  const guest = (name: string): { kernel: XenGuest; xb: XenbusClient; domid: number } =>
    run(
      (function* () {
        const rec = yield* ts.createGuest({ name, kind: 'hvm', vcpus: 1, memoryMiB: 64 });
        const { kernel, xenbus } = yield* bootGuestKernel(hv, rec.domain, profile);
        return { kernel, xb: xenbus, domid: rec.domain.domid };
      })(),
    );
  return { env, hv, ts, run, guest };
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('toolstack and XenStore', () => {
  it('creating a guest fires @introduceDomain and writes its home as libxl does', () => {
    const w = world();
    const watcher = w.ts.store.connect(0);
    assert.ok(watcher.watch('@introduceDomain', 'intro').ok);
    watcher.takeEvents(); // the initial event
    const { domid } = w.guest('web');
    assert.deepEqual(watcher.takeEvents(), [{ path: '@introduceDomain', token: 'intro' }]);
    const xs = w.ts.xs;
    const read = (p: string): string => {
      const r = xs.read(p);
      assert.ok(r.ok, `${p}: ${r.ok ? '' : r.error}`);
      return text(r.value);
    };
    assert.equal(read(`/local/domain/${domid}/name`), 'web');
    assert.equal(read(`/local/domain/${domid}/store/ring-ref`), String(XENSTORE_SPECIAL_GFN));
    const perms = (p: string): string[] => {
      const r = xs.getPerms(p);
      assert.ok(r.ok);
      return r.value.map((x) => `${'nrwb'[x.access]}${x.id}`);
    };
    assert.deepEqual(perms(`/local/domain/${domid}`), ['n0', `r${domid}`]);
    assert.deepEqual(perms(`/local/domain/${domid}/data`), [`n${domid}`]);
    assert.match(read(`/local/domain/${domid}/vm`), /^\/vm\/[0-9a-f-]{36}$/);
  });

  it('a guest talks to xenstored through its ring and event channel, with Xen’s permissions, and it takes time', () => {
    const w = world();
    const a = w.guest('a');
    const b = w.guest('b');
    const t0 = w.env.now;
    const before = w.hv.snapshot();
    const results = w.run(
      (function* () {
        const name = yield* a.xb.readText('name'); // relative to /local/domain/<a>
        const own = yield* a.xb.write('data/greeting', 'hello');
        const back = yield* a.xb.readText(`/local/domain/${a.domid}/data/greeting`);
        const home = yield* a.xb.write('name', 'renamed'); // the home is n0,r<id>: read-only
        const other = yield* a.xb.read(`/local/domain/${b.domid}/name`); // not readable by a
        const missing = yield* a.xb.read('data/nope');
        return { name, own, back, home, other, missing };
      })(),
    );
    assert.deepEqual(results.name, { ok: true, value: 'a' });
    assert.deepEqual(results.own, { ok: true, value: undefined });
    assert.deepEqual(results.back, { ok: true, value: 'hello' });
    assert.deepEqual(results.home, { ok: false, error: 'EACCES' });
    assert.deepEqual(results.other, { ok: false, error: 'EACCES' });
    assert.deepEqual(results.missing, { ok: false, error: 'ENOENT' });
    assert.equal(w.ts.xenstored.requestsServed(a.domid), 6);
    // Timed: six round trips through Dom0, each at least xenstored's request cost.
    assert.ok(w.env.now - t0 > 6 * profile.ns('xen.xenstore.daemonRequest'));
    const r = w.hv.cpuReport(before);
    const dom0 = r.domains.find((d) => d.domid === 0)!;
    const ga = r.domains.find((d) => d.domid === a.domid)!;
    assert.ok(
      dom0.byCategory.user >= 6 * profile.ns('xen.xenstore.daemonRequest') + profile.ns('xen.xenstore.daemonModify'),
      'xenstored ran in Dom0 user space',
    );
    assert.ok(ga.byCategory.kernel > 0 && ga.byCategory.xen > 0, 'the guest kernel and Xen on its behalf did the rest');
  });

  it('moves messages larger than the 1 KiB ring in pieces, both ways, and applies quotas to guests', () => {
    const w = world();
    const a = w.guest('a');
    const value = new Uint8Array(1800).map((_, i) => (i * 7 + 3) & 0xff);
    const r = w.run(
      (function* () {
        const wr = yield* a.xb.write('data/big', value);
        const rd = yield* a.xb.read('data/big');
        const tooBig = yield* a.xb.write('data/huge', new Uint8Array(3000));
        return { wr, rd, tooBig };
      })(),
    );
    assert.ok(r.wr.ok);
    assert.ok(r.rd.ok && Buffer.from(r.rd.value).equals(Buffer.from(value)));
    assert.deepEqual(r.tooBig, { ok: false, error: 'ENOSPC' }, 'node-size quota (2048) for an unprivileged domain');
    // Dom0's kernel xenbus is privileged: no quota, and a 4000-byte value crosses the ring.
    const big = new Uint8Array(4000).fill(0x5a);
    const d0 = w.run(
      (function* () {
        yield* w.ts.dom0Xenbus!.write('/local/domain/0/data/big', big);
        return yield* w.ts.dom0Xenbus!.read('/local/domain/0/data/big');
      })(),
    );
    assert.ok(d0.ok && d0.value.length === 4000 && d0.value.every((x) => x === 0x5a));
  });

  it('delivers watch events over the ring to the guest’s xenwatch thread, with relative paths', () => {
    const w = world();
    const a = w.guest('a');
    const seen: string[] = [];
    w.run(
      (function* () {
        const r = yield* a.xb.watch('data/trigger', 'tok', (path, token) => {
          seen.push(`${path} ${token} @${w.env.now}`);
        });
        assert.ok(r.ok);
      })(),
    );
    w.env.run({ until: w.env.now + 1_000_000 });
    assert.equal(seen.length, 1, 'the initial event');
    assert.ok(w.ts.xs.write(`/local/domain/${a.domid}/data/trigger`, 'go').ok);
    w.env.run({ until: w.env.now + 1_000_000 });
    assert.equal(seen.length, 2);
    assert.match(seen[1]!, /^data\/trigger tok @\d+$/);
  });

  it('transactions over the ring: commit, and EAGAIN when another writer got in between', () => {
    const w = world();
    const a = w.guest('a');
    const r = w.run(
      (function* () {
        const t1 = yield* a.xb.transactionStart();
        assert.ok(t1.ok);
        yield* a.xb.write('data/x', '1', t1.value);
        const c1 = yield* a.xb.transactionEnd(t1.value, true);
        const t2 = yield* a.xb.transactionStart();
        assert.ok(t2.ok);
        yield* a.xb.read('data/x', t2.value);
        w.ts.xs.write(`/local/domain/${a.domid}/data/x`, 'dom0 was here');
        yield* a.xb.write('data/x', '2', t2.value);
        const c2 = yield* a.xb.transactionEnd(t2.value, true);
        const x = yield* a.xb.readText('data/x');
        return { c1, c2, x };
      })(),
    );
    assert.ok(r.c1.ok);
    assert.deepEqual(r.c2, { ok: false, error: 'EAGAIN' });
    assert.deepEqual(r.x, { ok: true, value: 'dom0 was here' });
  });

  it('destroying a guest fires @releaseDomain and removes what it and the toolstack wrote', () => {
    const w = world();
    const a = w.guest('a');
    const uuidPath = text((w.ts.xs.read(`/local/domain/${a.domid}/vm`) as { ok: true; value: Uint8Array }).value);
    w.run(a.xb.write('data/x', '1'));
    const watcher = w.ts.store.connect(0);
    watcher.watch('@releaseDomain', 'rel');
    watcher.takeEvents();
    w.ts.destroyGuest(a.kernel.domain);
    w.env.run({ until: w.env.now + 1_000_000 });
    assert.deepEqual(watcher.takeEvents(), [{ path: '@releaseDomain', token: 'rel' }]);
    for (const p of [`/local/domain/${a.domid}`, uuidPath, `/libxl/${a.domid}`]) assert.deepEqual(w.ts.xs.read(p), { ok: false, error: 'ENOENT' }, p);
    assert.equal(w.ts.store.isIntroduced(a.domid), false);
  });

  it('a guest that corrupts its ring loses its connection; other guests keep theirs', () => {
    const w = world();
    const evil = w.guest('evil');
    const good = w.guest('good');
    // The hostile kernel claims 4096 bytes of requests in a 1024-byte ring, and kicks xenstored.
    const page = evil.kernel.mem.view(XENSTORE_SPECIAL_GFN);
    const { req } = xenstoreRings(page);
    new DataView(page.buffer, page.byteOffset).setUint32(2052, (req.cons + 4096) >>> 0, true);
    w.run(evil.kernel.evtchn.notify(evil.kernel.domain.vcpus[0]!, evil.xb.store.port));
    w.env.run({ until: w.env.now + 1_000_000 });
    assert.deepEqual(w.ts.xenstored.brokenConnections, [{ domid: evil.domid, reason: 'request ring indices corrupt' }]);
    const r = w.run(good.xb.readText('name'));
    assert.deepEqual(r, { ok: true, value: 'good' });
  });

  it('pipelined requests all get answers; xenstored stops reading at the outstanding quota, not erring', () => {
    const w = world();
    // A kernel with no xenbus of its own: it binds the store port but reads nothing.
    const g = w.run(
      (function* () {
        const rec = yield* w.ts.createGuest({ name: 'g', kind: 'hvm', vcpus: 1, memoryMiB: 64 });
        const kernel = new XenGuest(w.hv, rec.domain);
        yield* kernel.init(rec.domain.vcpus[0]);
        yield* kernel.evtchn.bindHandler(rec.domain.vcpus[0]!, rec.store.port, () => {});
        return { kernel, xb: { store: rec.store } };
      })(),
    );
    const page = g.kernel.mem.view(XENSTORE_SPECIAL_GFN);
    const { req, rsp } = xenstoreRings(page);
    const send = (n: number, first: number): void => {
      const chunks = Array.from({ length: n }, (_, i) =>
        encodeMessage({ type: XS_READ, reqId: first + i, txId: 0, payload: latin1ToBytes('name\0') }),
      );
      const all = new Uint8Array(chunks.reduce((k, c) => k + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      assert.equal(req.write(all), all.length);
    };
    const kick = (): void => {
      w.run(g.kernel.evtchn.notify(g.kernel.domain.vcpus[0]!, g.xb.store.port));
      w.env.run({ until: w.env.now + 5_000_000 });
    };
    // The kernel bypasses its xenbus and pipelines READs (21 bytes each; replies are 17),
    // without consuming replies: 48 requests, then 48 more.
    send(48, 0);
    kick();
    assert.equal(req.available(), 0, 'all 48 read; their replies (816 bytes) fit the response ring');
    send(48, 48);
    kick();
    // 12 more replies fit the ring; then replies queue in xenstored and, with 20 of them
    // outstanding, it stops reading: 16 requests (336 bytes) stay in the request ring.
    assert.equal(req.available(), 16 * 21);
    const reasm = new XsReassembler();
    const replies: XsMessage[] = [];
    for (let round = 0; round < 10 && replies.length < 96; round++) {
      replies.push(...reasm.push(rsp.read()).messages);
      kick();
    }
    assert.equal(replies.length, 96);
    const bad = replies.filter((m) => m.type !== XS_READ || bytesToLatin1(m.payload) !== 'g');
    assert.deepEqual(
      bad.map((m) => bytesToLatin1(m.payload)),
      [],
      'every request answered normally',
    );
    assert.deepEqual(
      replies.map((m) => m.reqId),
      Array.from({ length: 96 }, (_, i) => i),
    );
  });

  it('is deterministic: the same scenario gives the same timings', () => {
    const once = (): number[] => {
      const w = world(5);
      const a = w.guest('a');
      const t: number[] = [];
      w.run(
        (function* () {
          for (let i = 0; i < 5; i++) {
            yield* a.xb.write(`data/k${i}`, 'v'.repeat(100 * i));
            t.push(w.env.now);
          }
        })(),
      );
      return t;
    };
    assert.deepEqual(once(), once());
  });
});

describe('toolstack: vif directories', () => {
  it('writes the frontend and backend directories as libxl does; the guest owns its state but not the toolstack keys', () => {
    const w = world();
    const g = w.guest('web');
    const d = w.hv.domain(g.domid)!;
    const { frontend, backend } = w.ts.addVif(d, 0, { mac: '00:16:3e:00:00:01', bridge: 'xenbr0' });
    assert.equal(frontend, `/local/domain/${g.domid}/device/vif/0`);
    assert.equal(backend, `/local/domain/0/backend/vif/${g.domid}/0`);
    const read = (p: string): string => {
      const r = w.ts.xs.read(p);
      assert.ok(r.ok, p);
      return Buffer.from(r.value).toString('latin1');
    };
    assert.equal(read(`${backend}/frontend`), frontend);
    assert.equal(read(`${backend}/frontend-id`), String(g.domid));
    assert.equal(read(`${backend}/bridge`), 'xenbr0');
    assert.equal(read(`${backend}/online`), '1');
    assert.equal(read(`${backend}/state`), '1');
    assert.equal(read(`${frontend}/backend`), backend);
    assert.equal(read(`${frontend}/backend-id`), '0');
    assert.equal(read(`${frontend}/mac`), '00:16:3e:00:00:01');
    assert.equal(read(`${frontend}/state`), '1');
    const guestConn = w.ts.store.connect(g.domid);
    assert.ok(guestConn.write(`${frontend}/state`, '2').ok, 'the guest writes its state');
    assert.ok(!guestConn.write(`${frontend}/mac`, '00:16:3e:00:00:99').ok, 'but not its mac');
    assert.ok(guestConn.read(`${backend}/state`).ok, 'and reads the backend');
    assert.ok(!guestConn.write(`${backend}/state`, '4').ok, 'without writing it');
    assert.throws(() => w.ts.addVif(d, 0, { mac: '00:16:3e:00:00:02', bridge: 'xenbr0' }), /vif 0 already exists/);
    assert.throws(() => w.ts.addVif(d, 1, { mac: '00:16:3E:00:00:02', bridge: 'xenbr0' }), /mac "00:16:3E:00:00:02" is not/);
    w.ts.removeVif(d, 0);
    assert.ok(!w.ts.xs.read(frontend).ok && !w.ts.xs.read(backend).ok);
  });
});
