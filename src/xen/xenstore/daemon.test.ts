/**
 * The built daemon (`node dist/cli/main.js xenstored`) over a raw socket: the requests
 * xenstore-utils never send, exact bytes, framing, bad input, and its life cycle.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as X from '../abi/xs-wire.js';
import { RawClient, daemonAlive, msg, startDaemon, type RunningDaemon } from './test-util.js';
import { bytesToLatin1, encodeMessage, type XsMessage } from './wire.js';

const body = (m: XsMessage): string => bytesToLatin1(m.payload);
const header = (type: number, len: number, reqId = 0, txId = 0): Uint8Array => {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, reqId, true);
  v.setUint32(8, txId, true);
  v.setUint32(12, len, true);
  return h;
};

describe('xenstored daemon: raw socket', { timeout: 60_000 }, () => {
  let d: RunningDaemon;
  let c: RawClient;
  const call = async (type: number, payload: string, reqId = 0, txId = 0): Promise<XsMessage> =>
    (await c.request(msg(type, payload, reqId, txId))).reply;

  before(async () => {
    d = await startDaemon(['--introduce', '3']);
    c = await RawClient.open(d.socketPath);
  });
  after(async () => {
    c?.close();
    await d?.stop();
  });

  it('OK is the bytes 4f 4b 00, with req_id and tx_id echoed', async () => {
    const r = await call(X.XS_MKDIR, '/raw/dir\0', 0x01020304);
    assert.deepEqual([...encodeMessage(r)], [12, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0x4f, 0x4b, 0x00]);
    const tx = await call(X.XS_TRANSACTION_START, '\0', 77);
    assert.equal(body(tx), '1\0');
    const w = await call(X.XS_WRITE, '/raw/dir/x\0v', 78, 1);
    assert.deepEqual([w.type, w.reqId, w.txId, body(w)], [X.XS_WRITE, 78, 1, 'OK\0']);
    assert.equal(body(await call(X.XS_TRANSACTION_END, 'T\0', 79, 1)), 'OK\0');
  });

  it('a request split byte by byte, and several requests in one write', async () => {
    const m = encodeMessage(msg(X.XS_READ, '/raw/dir/x\0', 5));
    for (const b of m) {
      c.sendRaw(new Uint8Array([b]));
      await new Promise((r) => setImmediate(r));
    }
    const r = await c.next();
    assert.deepEqual([r.type, r.reqId, body(r)], [X.XS_READ, 5, 'v']);
    c.sendRaw(
      new Uint8Array([
        ...encodeMessage(msg(X.XS_READ, '/raw/dir/x\0', 6)),
        ...encodeMessage(msg(X.XS_DIRECTORY, '/raw\0', 7)),
        ...encodeMessage(msg(X.XS_GET_PERMS, '/raw\0', 8)),
      ]),
    );
    assert.deepEqual(
      [await c.next(), await c.next(), await c.next()].map((x) => [x.reqId, body(x)]),
      [
        [6, 'v'],
        [7, 'dir\0'],
        [8, 'n0\0'],
      ],
    );
  });

  it('GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, and INTRODUCE/RELEASE seen through special watches', async () => {
    assert.equal(body(await call(X.XS_GET_DOMAIN_PATH, '7\0')), '/local/domain/7\0');
    assert.equal(body(await call(X.XS_IS_DOMAIN_INTRODUCED, '3\0')), 'T\0', 'introduced by --introduce 3');
    assert.equal(body(await call(X.XS_IS_DOMAIN_INTRODUCED, '7\0')), 'F\0');
    const watcher = await RawClient.open(d.socketPath);
    try {
      const w1 = await watcher.request(msg(X.XS_WATCH, '@introduceDomain\0in\0'));
      assert.equal(body(w1.reply), 'OK\0');
      assert.equal(body(await watcher.next()), '@introduceDomain\0in\0', 'first event after the OK');
      await watcher.request(msg(X.XS_WATCH, '@releaseDomain\0out\0'));
      await watcher.next();
      assert.equal(body(await call(X.XS_INTRODUCE, '7\x00123\x0015\0')), 'OK\0');
      const ev = await watcher.next();
      assert.deepEqual([ev.type, ev.reqId, ev.txId, body(ev)], [X.XS_WATCH_EVENT, 0, 0, '@introduceDomain\0in\0']);
      assert.equal(body(await call(X.XS_IS_DOMAIN_INTRODUCED, '7\0')), 'T\0');
      assert.equal(body(await call(X.XS_RELEASE, '7\0')), 'OK\0');
      assert.equal(body(await watcher.next()), '@releaseDomain\0out\0');
      assert.equal(body(await call(X.XS_IS_DOMAIN_INTRODUCED, '7\0')), 'F\0');
      assert.equal(body(await call(X.XS_RELEASE, '7\0')), 'ENOENT\0');
      assert.equal(body(await call(X.XS_RESUME, '3\0')), 'OK\0');
    } finally {
      watcher.close();
    }
  });

  it('SET_TARGET, DIRECTORY_PART', async () => {
    assert.equal(body(await call(X.XS_INTRODUCE, '8\x001\x001\0')), 'OK\0');
    assert.equal(body(await call(X.XS_SET_TARGET, '8\x003\0')), 'OK\0');
    assert.equal(body(await call(X.XS_SET_TARGET, '8\x009\0')), 'ENOENT\0');
    for (const n of ['one', 'two', 'three']) await call(X.XS_MKDIR, `/raw/part/${n}\0`);
    assert.match(body(await call(X.XS_DIRECTORY_PART, '/raw/part\x000\0')), /^\d+\0one\0two\0three\0\0$/);
    assert.match(body(await call(X.XS_DIRECTORY_PART, '/raw/part\x004\0')), /^\d+\0two\0three\0\0$/);
    assert.match(body(await call(X.XS_DIRECTORY_PART, '/raw/part\x0014\0')), /^\d+\0\0$/);
  });

  it('UNWATCH and RESET_WATCHES stop events; relative watches report relative paths', async () => {
    const w = await RawClient.open(d.socketPath);
    try {
      const first = await w.request(msg(X.XS_WATCH, 'rel\0r\0'));
      assert.equal(body(first.reply), 'OK\0');
      assert.equal(body(await w.next()), 'rel\0r\0');
      await call(X.XS_WRITE, '/local/domain/0/rel/x\0v');
      assert.equal(body(await w.next()), 'rel/x\0r\0');
      assert.equal(body((await w.request(msg(X.XS_UNWATCH, 'rel\0r\0'))).reply), 'OK\0');
      assert.equal(body((await w.request(msg(X.XS_UNWATCH, 'rel\0r\0'))).reply), 'ENOENT\0');
      await w.request(msg(X.XS_WATCH, '/raw/rw\0t\0'));
      await w.next();
      assert.equal(body((await w.request(msg(X.XS_RESET_WATCHES, ''))).reply), 'OK\0');
      await call(X.XS_WRITE, '/local/domain/0/rel/x\0v2');
      await call(X.XS_WRITE, '/raw/rw\0v');
      // A request after the writes: had an event been sent, it would come before this reply.
      const probe = await w.request(msg(X.XS_READ, '/raw/rw\0', 42));
      assert.deepEqual([probe.events.length, probe.reply.reqId, body(probe.reply)], [0, 42, 'v']);
    } finally {
      w.close();
    }
  });

  it('a transaction that lost a conflict gets EAGAIN', async () => {
    await call(X.XS_WRITE, '/raw/conflict\x000');
    const tx = Number(body(await call(X.XS_TRANSACTION_START, '\0')).replace('\0', ''));
    await call(X.XS_READ, '/raw/conflict\0', 0, tx);
    const other = await RawClient.open(d.socketPath);
    await other.request(msg(X.XS_WRITE, '/raw/conflict\x001'));
    other.close();
    await call(X.XS_WRITE, '/raw/conflict\x002', 0, tx);
    const r = await call(X.XS_TRANSACTION_END, 'T\0', 9, tx);
    assert.deepEqual([r.type, r.reqId, r.txId, body(r)], [X.XS_ERROR, 9, tx, 'EAGAIN\0']);
    assert.equal(body(await call(X.XS_READ, '/raw/conflict\0')), '1');
  });
});

describe('xenstored daemon: bad input', { timeout: 60_000 }, () => {
  let d: RunningDaemon;
  let good: RawClient;
  /** The well-behaved client keeps working between every abuse. */
  const goodStillServed = async (round: number): Promise<void> => {
    const { reply } = await good.request(msg(X.XS_WRITE, `/good/n${round}\0${round}`, round));
    assert.deepEqual([reply.reqId, body(reply)], [round, 'OK\0'], `good client, round ${round}`);
  };

  before(async () => {
    d = await startDaemon();
    good = await RawClient.open(d.socketPath);
  });
  after(async () => {
    good?.close();
    await d?.stop();
  });

  it('answers malformed requests with an error, drops broken framing, keeps serving the others', async () => {
    let round = 0;
    const errors: [string, Uint8Array, string][] = [
      ['unknown type', encodeMessage(msg(99, '/x\0')), 'ENOSYS'],
      ['client-sent WATCH_EVENT', encodeMessage(msg(X.XS_WATCH_EVENT, '/x\0t\0')), 'ENOSYS'],
      ['client-sent ERROR', encodeMessage(msg(X.XS_ERROR, 'EINVAL\0')), 'ENOSYS'],
      ['XS_INVALID', encodeMessage(msg(X.XS_INVALID, '')), 'ENOSYS'],
      ['missing NUL', encodeMessage(msg(X.XS_READ, '/x')), 'EINVAL'],
      ['too many arguments', encodeMessage(msg(X.XS_WATCH, '/x\0t\0u\0')), 'EINVAL'],
      ['too few arguments', encodeMessage(msg(X.XS_SET_PERMS, '/x\0')), 'EINVAL'],
      ['garbage bytes in a path', encodeMessage(msg(X.XS_WRITE, new Uint8Array([0x2f, 0xff, 0xfe, 0xc3, 0x28, 0, 1, 2]))), 'EINVAL'],
      ['empty payload', encodeMessage(msg(X.XS_DIRECTORY, '')), 'EINVAL'],
      ['bad permission string', encodeMessage(msg(X.XS_SET_PERMS, '/\0zz\0')), 'EINVAL'],
      ['unknown transaction', encodeMessage(msg(X.XS_READ, '/\0', 0, 12345)), 'ENOENT'],
    ];
    const bad = await RawClient.open(d.socketPath);
    for (const [what, bytes, expected] of errors) {
      bad.sendRaw(bytes);
      const r = await bad.next();
      assert.deepEqual([r.type, body(r)], [X.XS_ERROR, `${expected}\0`], what);
      await goodStillServed(++round);
    }
    bad.close();

    // Framing the daemon cannot recover from: the connection is dropped without a reply.
    const drops: [string, Uint8Array][] = [
      ['len > 4096', header(X.XS_READ, 4097)],
      ['len 0xffffffff', header(X.XS_WRITE, 0xffffffff)],
      ['oversize payload actually sent', new Uint8Array([...header(X.XS_WRITE, 5000), ...new Uint8Array(5000).fill(0x41)])],
      ['random garbage', Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)],
    ];
    for (const [what, bytes] of drops) {
      const b = await RawClient.open(d.socketPath);
      b.sendRaw(bytes);
      assert.equal(await b.waitClosed(), true, `${what}: connection dropped`);
      await assert.rejects(b.next(100), /closed/, `${what}: no reply`);
      await goodStillServed(++round);
    }

    // Truncated header, then the client goes away; and a half-sent payload.
    for (const partial of [header(X.XS_READ, 10).subarray(0, 7), new Uint8Array([...header(X.XS_READ, 10), 0x2f])]) {
      const b = await RawClient.open(d.socketPath);
      b.sendRaw(partial);
      await new Promise((r) => setTimeout(r, 20));
      b.close();
      await goodStillServed(++round);
    }

    assert.ok(daemonAlive(d), 'the daemon is still running');
    const log = d.stderr();
    assert.match(log, /protocol error: type 99 "\/x" is not a request this daemon serves \(ENOSYS\)/);
    assert.match(log, /protocol error: READ message announces 4097 payload bytes, more than 4096/);
    assert.match(log, /closed, 7 bytes of an incomplete message discarded/);
  });
});

describe('xenstored daemon: clients that never read', { timeout: 60_000 }, () => {
  let d: RunningDaemon;
  const logged = async (re: RegExp): Promise<boolean> => {
    for (let i = 0; i < 500 && !re.test(d.stderr()); i++) await new Promise((r) => setTimeout(r, 10));
    return re.test(d.stderr());
  };
  before(async () => {
    d = await startDaemon(['--max-queued-bytes', '65536']);
  });
  after(async () => {
    await d?.stop();
  });

  it('a client piling up replies it never reads is dropped, and logged', async () => {
    const hog = await RawClient.open(d.socketPath);
    hog.socket.pause();
    const value = 'x'.repeat(4000);
    hog.send(msg(X.XS_WRITE, `/hog\0${value}`));
    const burst = new Uint8Array(encodeMessage(msg(X.XS_READ, '/hog\0')).length * 2000);
    const one = encodeMessage(msg(X.XS_READ, '/hog\0'));
    for (let i = 0; i < 2000; i++) burst.set(one, i * one.length);
    hog.sendRaw(burst);
    assert.ok(await logged(/conn \d+: dropping connection: client left \d+ bytes of replies and events unread, more than 65536/), d.stderr());
    // What the kernel had buffered can still be read; then the connection is closed.
    hog.socket.resume();
    assert.equal(await hog.waitClosed(10_000), true);
    assert.ok(daemonAlive(d));
  });

  it('a watcher that never reads its events is dropped; the writer goes on', async () => {
    const watcher = await RawClient.open(d.socketPath);
    watcher.socket.pause();
    const token = 't'.repeat(3000);
    watcher.send(msg(X.XS_WATCH, `/flood\0${token}\0`));
    const writer = await RawClient.open(d.socketPath);
    let i = 0;
    const before = (d.stderr().match(/dropping connection/g) ?? []).length;
    for (; i < 3000 && (d.stderr().match(/dropping connection/g) ?? []).length === before; i++) {
      const { reply } = await writer.request(msg(X.XS_WRITE, `/flood/n${i}\0v`));
      assert.equal(body(reply), 'OK\0');
    }
    assert.ok(i < 3000, 'the watcher was dropped');
    watcher.socket.resume();
    assert.equal(await watcher.waitClosed(), true);
    const { reply } = await writer.request(msg(X.XS_READ, '/flood/n0\0'));
    assert.equal(body(reply), 'v');
    writer.close();
  });
});

describe('xenstored daemon: life cycle', { timeout: 60_000 }, () => {
  it('SIGTERM and SIGINT: exit 0 and the socket file is gone', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const d = await startDaemon();
      try {
        const c = await RawClient.open(d.socketPath);
        d.proc.kill(signal);
        assert.equal(await d.exited, 0, signal);
        assert.throws(() => statSync(d.socketPath), /ENOENT/);
        assert.equal(await c.waitClosed(), true);
        assert.match(d.stderr(), new RegExp(`${signal}, shutting down`));
      } finally {
        await d.stop();
      }
    }
  });

  it('refuses a socket path in use, removes a stale socket, refuses a non-socket file', async () => {
    const live = await startDaemon();
    const dir = mkdtempSync(join(tmpdir(), 'hv2m-xs-'));
    try {
      const second = startDaemon([], live.dir);
      await assert.rejects(second, /is in use: another daemon accepted a connection on it/);
      assert.ok(daemonAlive(live), 'the first daemon is untouched');

      // A daemon killed hard leaves its socket file behind: the next one takes over.
      live.proc.kill('SIGKILL');
      await live.exited;
      assert.ok(statSync(live.socketPath).isSocket());
      const next = await startDaemon([], live.dir);
      assert.match(next.stderr(), /removed stale socket/);
      const c = await RawClient.open(next.socketPath);
      assert.equal(body((await c.request(msg(X.XS_READ, '/tool\0'))).reply), '');
      c.close();
      await next.stop();

      writeFileSync(join(dir, 'xs.sock'), 'not a socket');
      await assert.rejects(startDaemon([], dir), /exists and is not a socket; refusing to replace it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await live.stop();
    }
  });
});
