import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XS_READ, XS_WRITE } from '../abi/xs-wire.js';
import { XsSession } from './server.js';
import { XenStore, type XenStoreOptions } from './store.js';
import { err, msg, val } from './test-util.js';

/** A store with domain 5 introduced and owning its home, and a connection for it. */
function guest(options: XenStoreOptions = {}) {
  const store = new XenStore(options);
  store.introduceDomain(5);
  const dom0 = store.connect(0);
  val(dom0.mkdir('/local/domain/5'));
  val(dom0.setPerms('/local/domain/5', ['n5']));
  return { store, dom0, d5: store.connect(5) };
}

describe('xenstore quotas (xen-abi.md §1.9, unprivileged domains only)', () => {
  it('a guest writing without bound is stopped at 1000 owned nodes with ENOSPC', () => {
    const { d5, store } = guest();
    let last: string = 'ok';
    // 20 per directory: a long child list would hit the node-size quota first.
    for (let i = 0; i < 5000 && last === 'ok'; i++) last = err(d5.write(`d${Math.floor(i / 20)}/n${i}`, 'x'));
    assert.equal(last, 'ENOSPC');
    assert.equal(store.tree.owned(5), 1000, 'its home (given to it) counts too');
    assert.equal(err(d5.write('d0/n0', 'overwrite is fine')), 'ok');
    assert.equal(err(d5.rm('d0/n0')), 'ok');
    assert.equal(err(d5.write('d0/again', 'x')), 'ok', 'room again after a removal');
    assert.equal(err(d5.write('d0/more', 'x')), 'ENOSPC');
  });

  it('dom0 is not limited', () => {
    const store = new XenStore({ quotas: { nodes: 10 } });
    const dom0 = store.connect(0);
    for (let i = 0; i < 50; i++) val(dom0.write(`/many/n${i}`, 'x'));
  });

  it('a WRITE creating several nodes is refused whole when they would not all fit', () => {
    const { d5, dom0 } = guest({ quotas: { nodes: 4 } });
    val(d5.write('a', ''));
    assert.equal(err(d5.write('b/c/d', '')), 'ENOSPC', '3 more nodes, only 2 left');
    assert.equal(err(dom0.read('/local/domain/5/b')), 'ENOENT');
    assert.equal(err(d5.write('b/c', '')), 'ok');
  });

  it('the nodes quota is checked again at commit', () => {
    const { d5 } = guest({ quotas: { nodes: 4 } });
    const t1 = val(d5.transactionStart());
    const t2 = val(d5.transactionStart());
    val(d5.write('x/y', '', t1));
    val(d5.write('p/q', '', t2));
    assert.equal(err(d5.transactionEnd(t1, true)), 'ok');
    assert.equal(err(d5.transactionEnd(t2, true)), 'ENOSPC');
  });

  it('node size: a long child list counts too', () => {
    const { d5 } = guest();
    let last: string = 'ok';
    let i = 0;
    for (; i < 1000 && last === 'ok'; i++) last = err(d5.mkdir(`list/child-${String(i).padStart(4, '0')}`));
    assert.equal(last, 'ENOSPC');
    // 24 + 8 + 11 bytes per "child-NNNN\0": 183 children make 2045; a 184th would make 2056.
    assert.equal(i - 1, 183);
  });

  it('node size: header, permissions, value and child names below 2048 bytes', () => {
    const { d5 } = guest();
    // 24 + 8 (one permission) + value: 2015 bytes of value makes 2047.
    assert.equal(err(d5.write('big', new Uint8Array(2015))), 'ok');
    assert.equal(err(d5.write('big', new Uint8Array(2016))), 'ENOSPC');
    assert.equal(err(d5.write('fat', 'x'.repeat(3000))), 'ENOSPC', 'also when creating');
  });

  it('watches: the quota counts those already set, so 129 fit; the next is E2BIG (watch.c)', () => {
    const { d5 } = guest();
    for (let i = 0; i < 129; i++) val(d5.watch(`w${i}`, 't'));
    assert.equal(err(d5.watch('one-more', 't')), 'E2BIG');
    val(d5.unwatch('w0', 't'));
    assert.equal(err(d5.watch('one-more', 't')), 'ok');
  });

  it('transactions: 11 open fit (the check counts open ones), the 12th is ENOSPC', () => {
    const { d5, store } = guest();
    const ids = Array.from({ length: 11 }, () => val(d5.transactionStart()));
    assert.equal(err(d5.transactionStart()), 'ENOSPC');
    const other = store.connect(5);
    assert.equal(err(other.transactionStart()), 'ENOSPC', 'counted per domain, not per connection');
    val(d5.transactionEnd(ids[0]!, false));
    assert.equal(err(d5.transactionStart()), 'ok');
  });

  it('nodes touched by one transaction: 1024, then ENOSPC and the commit fails with ENOMEM', () => {
    const { d5 } = guest();
    const tx = val(d5.transactionStart());
    let i = 0;
    for (; i < 2000 && err(d5.read(`probe${i}`, tx)) === 'ENOENT'; i++);
    // The first probe also touched the home it found missing nodes under: 1 + 1023.
    assert.equal(i, 1023);
    assert.equal(err(d5.read(`probe${i}`, tx)), 'ENOSPC');
    assert.equal(err(d5.read('probe0', tx)), 'ENOENT', 'nodes already touched still answer');
    assert.equal(err(d5.transactionEnd(tx, true)), 'ENOMEM');
  });

  it('permissions per node: at most 5 entries in one SET_PERMS', () => {
    const { d5 } = guest();
    val(d5.mkdir('p'));
    assert.equal(err(d5.setPerms('p', ['n5', 'r0', 'r0', 'r0', 'r0'])), 'ok');
    assert.equal(err(d5.setPerms('p', ['n5', 'r0', 'r0', 'r0', 'r0', 'r0'])), 'ENOSPC');
  });

  it('queued watch events beyond the event-bytes quota are dropped and counted', () => {
    const { d5, dom0 } = guest({ quotas: { eventBytes: 16 + 11 } });
    val(d5.watch('/local/domain/5', 'tok'));
    // First event: "/local/domain/5\0tok\0" is 20 bytes + 16 of header > 27: dropped too.
    assert.equal(d5.events.length, 0);
    assert.equal(d5.events.dropped, 1);
    val(d5.unwatch('/local/domain/5', 'tok'));
    val(d5.watch('x', 't'));
    assert.equal(d5.events.length, 1, '"x\\0t\\0" + header = 20 bytes fits');
    val(dom0.write('/local/domain/5/x/y', ''));
    assert.equal(d5.events.dropped, 2);
  });

  it('outstanding replies: a guest session stops taking requests at 20 undelivered', () => {
    const store = new XenStore();
    store.introduceDomain(5);
    const s = new XsSession(store, 5);
    for (let i = 0; i < 20; i++) {
      assert.ok(s.acceptsRequests);
      s.handle(msg(XS_READ, 'nope\0', i));
    }
    assert.equal(s.outstanding, 20);
    assert.equal(s.acceptsRequests, false);
    const [reply] = s.handle(msg(XS_WRITE, 'x\0v', 99));
    assert.equal(Buffer.from(reply!.payload).toString('latin1'), 'ENOSPC\0', 'a transport that ignores it gets ENOSPC');
    s.replyDelivered();
    s.replyDelivered();
    assert.ok(s.acceptsRequests);
    const d0 = new XsSession(store, 0);
    for (let i = 0; i < 30; i++) d0.handle(msg(XS_READ, '/\0'));
    assert.ok(d0.acceptsRequests, 'dom0 has no such limit');
  });
});
