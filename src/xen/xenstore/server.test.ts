import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as X from '../abi/xs-wire.js';
import { XsSession } from './server.js';
import { XenStore } from './store.js';
import { msg } from './test-util.js';
import { bytesToLatin1, encodeMessage, type XsMessage } from './wire.js';

function sessions() {
  const store = new XenStore();
  store.introduceDomain(5);
  return { store, s0: new XsSession(store, 0), s5: new XsSession(store, 5) };
}

/** The single reply of a request (no events expected). */
function reply(s: XsSession, m: XsMessage): XsMessage {
  const out = s.handle(m);
  assert.equal(out.length, 1, `one message back, got ${out.length}`);
  return out[0]!;
}
const body = (m: XsMessage): string => bytesToLatin1(m.payload);
const errorOf = (s: XsSession, m: XsMessage): string => {
  const r = reply(s, m);
  return r.type === X.XS_ERROR ? body(r) : `type ${r.type}: ${body(r)}`;
};

describe('xenstore protocol engine (xen-abi.md §1.1–1.3)', () => {
  it('OK is exactly 4f 4b 00; req_id and tx_id are echoed', () => {
    const { s0 } = sessions();
    const tx = Number(body(reply(s0, msg(X.XS_TRANSACTION_START, '\0', 7))).replace('\0', ''));
    const r = reply(s0, msg(X.XS_WRITE, '/a\0v', 0xcafe, tx));
    assert.deepEqual([...encodeMessage(r)], [11, 0, 0, 0, 0xfe, 0xca, 0, 0, tx, 0, 0, 0, 3, 0, 0, 0, 0x4f, 0x4b, 0x00]);
  });

  it('replies carry Xen formats: READ raw, DIRECTORY NUL-separated, perms, ids, T/F', () => {
    const { s0 } = sessions();
    reply(s0, msg(X.XS_WRITE, '/d/x\0a\0b'));
    reply(s0, msg(X.XS_MKDIR, '/d/y\0'));
    assert.equal(body(reply(s0, msg(X.XS_READ, '/d/x\0'))), 'a\0b', 'no NUL added to a value');
    assert.equal(body(reply(s0, msg(X.XS_DIRECTORY, '/d\0'))), 'x\0y\0');
    assert.equal(reply(s0, msg(X.XS_DIRECTORY, '/d/y\0')).payload.length, 0);
    assert.equal(body(reply(s0, msg(X.XS_GET_PERMS, '/d\0'))), 'n0\0');
    assert.equal(body(reply(s0, msg(X.XS_TRANSACTION_START, '\0'))), '1\0');
    assert.equal(body(reply(s0, msg(X.XS_GET_DOMAIN_PATH, '12\0'))), '/local/domain/12\0');
    assert.equal(body(reply(s0, msg(X.XS_IS_DOMAIN_INTRODUCED, '5\0'))), 'T\0');
    assert.equal(body(reply(s0, msg(X.XS_IS_DOMAIN_INTRODUCED, '6\0'))), 'F\0');
    const gen = reply(s0, msg(X.XS_DIRECTORY_PART, '/d\x000\0'));
    assert.match(body(gen), /^[0-9]+\0x\0y\0\0$/);
    assert.match(body(reply(s0, msg(X.XS_DIRECTORY_PART, '/d\x0099\0'))), /^[0-9]+\0\0$/);
    assert.equal(errorOf(s0, msg(X.XS_READ, '/nope\0')), 'ENOENT\0');
  });

  it('unknown types, server-only types, the removed type 20 and post-4.17 types are ENOSYS', () => {
    const { s0 } = sessions();
    for (const t of [
      X.XS_WATCH_EVENT,
      X.XS_ERROR,
      X.XS_RESTRICT,
      X.XS_GET_FEATURE,
      X.XS_SET_FEATURE,
      X.XS_GET_QUOTA,
      X.XS_SET_QUOTA,
      99,
      X.XS_INVALID,
      0xffffffff,
    ]) {
      const r = reply(s0, msg(t, '/\0', 3, 0));
      assert.equal(r.type, X.XS_ERROR);
      assert.equal(body(r), 'ENOSYS\0', `type ${t}`);
      assert.equal(r.reqId, 3);
    }
    assert.equal(errorOf(s0, msg(X.XS_CONTROL, 'print\0x\0')), 'ENOSYS\0', 'CONTROL is not modelled');
  });

  it('privileged-only requests from a guest are EACCES', () => {
    const { s5 } = sessions();
    for (const [t, p] of [
      [X.XS_CONTROL, 'check\0'],
      [X.XS_INTRODUCE, '6\x001\x001\0'],
      [X.XS_RELEASE, '5\0'],
      [X.XS_IS_DOMAIN_INTRODUCED, '5\0'],
      [X.XS_RESUME, '5\0'],
      [X.XS_SET_TARGET, '5\x000\0'],
    ] as const) {
      assert.equal(errorOf(s5, msg(t, p)), 'EACCES\0', X.XS_TYPE_NAMES[t]);
    }
    assert.equal(body(reply(s5, msg(X.XS_GET_DOMAIN_PATH, '0\0'))), '/local/domain/0\0', 'anyone may ask');
  });

  it('wrong argument counts, missing NULs and bad numbers are EINVAL', () => {
    const { s0 } = sessions();
    const cases: [number, string][] = [
      [X.XS_READ, '/a'],
      [X.XS_READ, ''],
      [X.XS_READ, '/a\0/b\0'],
      [X.XS_WRITE, '/a'],
      [X.XS_MKDIR, ''],
      [X.XS_RM, '/x\0y\0'],
      [X.XS_DIRECTORY, '/'],
      [X.XS_WATCH, '/a\0'],
      [X.XS_WATCH, '/a\0t\0extra\0'],
      [X.XS_UNWATCH, '/a'],
      [X.XS_SET_PERMS, '/a\0'],
      [X.XS_SET_PERMS, '/\0q7\0'],
      [X.XS_DIRECTORY_PART, '/\0'],
      [X.XS_DIRECTORY_PART, '/\x000\0x\0'],
      [X.XS_DIRECTORY_PART, '/\0-1\0'],
      [X.XS_INTRODUCE, '7\x001\0'],
      [X.XS_INTRODUCE, '7\0x\x001\0'],
      [X.XS_GET_DOMAIN_PATH, '65536\0'],
      [X.XS_GET_DOMAIN_PATH, '1x\0'],
      [X.XS_GET_DOMAIN_PATH, '\0'],
      [X.XS_RELEASE, '0\0'],
      [X.XS_SET_TARGET, '5\0'],
      [X.XS_SET_TARGET, '5\0z\0'],
      [X.XS_TRANSACTION_END, 'X\0'],
      [X.XS_TRANSACTION_END, 'T'],
      [X.XS_READ, '/a\xff\0'],
    ];
    for (const [t, p] of cases) assert.equal(errorOf(s0, msg(t, p)), 'EINVAL\0', `${X.XS_TYPE_NAMES[t]} ${JSON.stringify(p)}`);
  });

  it('transactions on the wire: EBUSY when nested, ENOENT for unknown ids, WATCH ignores tx_id', () => {
    const { s0 } = sessions();
    assert.equal(errorOf(s0, msg(X.XS_TRANSACTION_START, '\0', 0, 1)), 'ENOENT\0', 'unknown id: looked up first');
    reply(s0, msg(X.XS_TRANSACTION_START, '\0'));
    assert.equal(errorOf(s0, msg(X.XS_TRANSACTION_START, '\0', 0, 1)), 'EBUSY\0');
    assert.equal(errorOf(s0, msg(X.XS_READ, '/\0', 0, 42)), 'ENOENT\0');
    assert.equal(errorOf(s0, msg(X.XS_GET_DOMAIN_PATH, '1\0', 0, 42)), 'ENOENT\0', 'every tx-aware type looks the id up');
    assert.equal(errorOf(s0, msg(X.XS_TRANSACTION_END, 'T\0', 0, 0)), 'ENOENT\0');
    assert.equal(errorOf(s0, msg(X.XS_TRANSACTION_END, 'T\0', 0, 42)), 'ENOENT\0');
    assert.equal(reply(s0, msg(X.XS_UNWATCH, '/x\0t\0', 0, 42)).type, X.XS_ERROR);
    const out = s0.handle(msg(X.XS_WATCH, '/x\0t\0', 0, 42));
    assert.equal(out[0]!.type, X.XS_WATCH, 'tx_id of WATCH is ignored (and echoed)');
    assert.equal(out[0]!.txId, 42);
    assert.equal(body(reply(s0, msg(X.XS_TRANSACTION_END, 'F\0', 0, 1))), 'OK\0');
  });

  it('WATCH: the OK first, then the event; a change: its events before its reply', () => {
    const { s0 } = sessions();
    const w = s0.handle(msg(X.XS_WATCH, '/w\0tok\0', 9));
    assert.deepEqual(
      w.map((m) => [m.type, m.reqId, m.txId, body(m)]),
      [
        [X.XS_WATCH, 9, 0, 'OK\0'],
        [X.XS_WATCH_EVENT, 0, 0, '/w\0tok\0'],
      ],
    );
    const c = s0.handle(msg(X.XS_WRITE, '/w/x\0v', 10));
    assert.deepEqual(
      c.map((m) => [m.type, body(m)]),
      [
        [X.XS_WATCH_EVENT, '/w/x\0tok\0'],
        [X.XS_WRITE, 'OK\0'],
      ],
    );
  });

  it("another session's change queues events and calls onEventsPending (not during its own request)", () => {
    const { s0, store } = sessions();
    const other = new XsSession(store, 0);
    let pending = 0;
    other.onEventsPending = () => pending++;
    other.handle(msg(X.XS_WATCH, '/o\0t\0'));
    assert.equal(pending, 0, 'its own first event comes with its reply');
    s0.handle(msg(X.XS_WRITE, '/o\0v'));
    assert.equal(pending, 1);
    assert.equal(other.pendingEventBytes, 16 + 5);
    assert.deepEqual(other.takeEvents().map(body), ['/o\0t\0']);
  });

  it('a session whose domain was released answers nothing', () => {
    const { s0, s5 } = sessions();
    assert.equal(body(reply(s0, msg(X.XS_RELEASE, '5\0'))), 'OK\0');
    assert.equal(s5.conn.closed, true);
    assert.deepEqual(s5.handle(msg(X.XS_READ, '/\0')), []);
  });

  it('replies over 4096 bytes become E2BIG', () => {
    const { s0 } = sessions();
    for (let i = 0; i < 300; i++) reply(s0, msg(X.XS_MKDIR, `/big/a-longish-child-name-${i}\0`));
    assert.equal(errorOf(s0, msg(X.XS_DIRECTORY, '/big\0')), 'E2BIG\0');
  });

  it('any message at all: never throws, one reply of its type or ERROR, echoing req_id and tx_id', () => {
    // Mostly well-formed requests on a few paths (so they meet each other's nodes, watches
    // and transactions), then argument soup, then garbage.
    const path = fc.oneof(
      {
        arbitrary: fc.constantFrom(
          '/',
          '/a',
          '/a/b',
          '/a/b/c',
          '/local/domain/5',
          '/local/domain/5/x',
          'x',
          'x/y',
          '@introduceDomain',
          '@releaseDomain',
        ),
        weight: 5,
      },
      { arbitrary: fc.stringMatching(/^[/@a-z0-9_-]{0,12}$/), weight: 1 },
    );
    const domid = fc.constantFrom('0', '5', '7', '65536', '1x');
    const perm = fc.constantFrom('n0', 'r5', 'b5', 'n5', 'w7', 'q1');
    const token = fc.constantFrom('t', 'u', '\xff');
    const req = (type: number, payload: string): [number, string] => [type, payload];
    const wellFormed = fc.oneof(
      fc.tuple(fc.constantFrom(X.XS_READ, X.XS_DIRECTORY, X.XS_MKDIR, X.XS_RM, X.XS_GET_PERMS), path).map(([t, p]) => req(t, `${p}\0`)),
      fc.tuple(fc.constant(X.XS_WRITE), path, fc.string({ maxLength: 6 })).map(([t, p, v]) => req(t, `${p}\0${v}`)),
      fc
        .tuple(fc.constant(X.XS_SET_PERMS), path, fc.array(perm, { minLength: 1, maxLength: 7 }))
        .map(([t, p, ps]) => req(t, `${p}\0${ps.join('\0')}\0`)),
      fc.tuple(fc.constantFrom(X.XS_WATCH, X.XS_UNWATCH), path, token).map(([t, p, k]) => req(t, `${p}\0${k}\0`)),
      fc.constant(req(X.XS_TRANSACTION_START, '\0')),
      fc.constantFrom('T\0', 'F\0').map((a) => req(X.XS_TRANSACTION_END, a)),
      fc.tuple(fc.constant(X.XS_INTRODUCE), domid).map(([t, d]) => req(t, `${d}\x001\x002\0`)),
      fc.tuple(fc.constantFrom(X.XS_RELEASE, X.XS_RESUME, X.XS_IS_DOMAIN_INTRODUCED, X.XS_GET_DOMAIN_PATH), domid).map(([t, d]) => req(t, `${d}\0`)),
      fc.tuple(fc.constant(X.XS_SET_TARGET), domid, domid).map(([t, a, b]) => req(t, `${a}\0${b}\0`)),
      fc.tuple(fc.constant(X.XS_DIRECTORY_PART), path, fc.nat(40)).map(([t, p, o]) => req(t, `${p}\0${o}\0`)),
      fc.constant(req(X.XS_RESET_WATCHES, '')),
    );
    const soup = fc.tuple(
      fc.constantFrom(...Object.keys(X.XS_TYPE_NAMES).map(Number), 20, 27, X.XS_INVALID),
      fc.array(fc.oneof(path, domid, perm, token, fc.constantFrom('T', 'F', '')), { maxLength: 4 }).map((a) => a.map((x) => `${x}\0`).join('')),
    );
    const garbage = fc.tuple(
      fc.nat(),
      fc.uint8Array({ maxLength: 64 }).map((b) => String.fromCharCode(...b)),
    );
    const request = fc
      .record({
        tp: fc.oneof({ arbitrary: wellFormed, weight: 8 }, { arbitrary: soup, weight: 2 }, { arbitrary: garbage, weight: 1 }),
        reqId: fc.nat(),
        txId: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.nat(3), weight: 3 }, { arbitrary: fc.nat(), weight: 1 }),
      })
      .map(({ tp: [type, p], reqId, txId }) => msg(type, p, reqId, txId));
    fc.assert(
      fc.property(fc.array(fc.record({ guest: fc.boolean(), req: request }), { minLength: 1, maxLength: 25 }), (steps) => {
        const { s0, s5 } = sessions();
        for (const { guest, req } of steps) {
          const s = guest ? s5 : s0;
          const closed = s.conn.closed;
          const out = s.handle(req);
          if (closed) {
            assert.deepEqual(out, [], 'a session whose domain was released answers nothing');
            continue;
          }
          const replies = out.filter((m) => m.type !== X.XS_WATCH_EVENT || req.type === X.XS_WATCH_EVENT);
          assert.equal(replies.length, 1, 'exactly one reply');
          const r = replies[0]!;
          assert.ok(r.type === req.type || r.type === X.XS_ERROR, `reply type ${r.type} to ${req.type}`);
          assert.equal(r.reqId, req.reqId);
          assert.equal(r.txId, req.txId);
          assert.ok(r.payload.length <= X.XENSTORE_PAYLOAD_MAX);
          if (r.type === X.XS_ERROR) assert.ok(X.isXsErrorName(body(r).replace(/\0$/, '')) && body(r).endsWith('\0'), body(r));
          for (const e of out.filter((m) => m !== r)) {
            assert.equal(e.type, X.XS_WATCH_EVENT);
            assert.equal(e.reqId, 0);
            assert.equal(e.txId, 0);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
