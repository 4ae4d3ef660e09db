import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XenStore } from './store.js';
import { err, text, val } from './test-util.js';

function setup() {
  const store = new XenStore();
  return { store, a: store.connect(0), b: store.connect(0) };
}

describe('xenstore transactions (xen-abi.md §1.8)', () => {
  it('ids are per connection: first 1, then the next unused; an ended id is dead', () => {
    const { a, b } = setup();
    assert.equal(val(a.transactionStart()), 1);
    assert.equal(val(a.transactionStart()), 2);
    assert.equal(val(b.transactionStart()), 1);
    val(a.transactionEnd(1, false));
    assert.equal(err(a.read('/', 1)), 'ENOENT');
    assert.equal(err(a.transactionEnd(1, true)), 'ENOENT');
    assert.equal(val(a.transactionStart()), 3);
    assert.equal(err(a.transactionEnd(0, true)), 'ENOENT', 'tx id 0 is no transaction');
    assert.equal(err(a.write('/x', '1', 99)), 'ENOENT', 'unknown id');
  });

  it('a transaction sees its own writes; others see nothing until commit', () => {
    const { a, b } = setup();
    const tx = val(a.transactionStart());
    val(a.write('/t/x', 'in-tx', tx));
    val(a.mkdir('/t/y', tx));
    assert.equal(text(val(a.read('/t/x', tx))), 'in-tx');
    assert.deepEqual(val(a.directory('/t', tx)), ['x', 'y']);
    assert.equal(err(b.read('/t/x')), 'ENOENT');
    assert.equal(err(a.read('/t/x')), 'ENOENT', 'the same connection outside the transaction');
    val(a.transactionEnd(tx, true));
    assert.equal(text(val(b.read('/t/x'))), 'in-tx');
    assert.deepEqual(val(b.directory('/t')), ['x', 'y']);
  });

  it('abort discards everything, removals included', () => {
    const { a, b } = setup();
    val(a.write('/keep', 'v'));
    const tx = val(a.transactionStart());
    val(a.rm('/keep', tx));
    val(a.write('/new', 'n', tx));
    assert.equal(err(a.read('/keep', tx)), 'ENOENT');
    val(a.transactionEnd(tx, false));
    assert.equal(text(val(b.read('/keep'))), 'v');
    assert.equal(err(b.read('/new')), 'ENOENT');
  });

  it('isolation: what a transaction read stays as it read it', () => {
    const { a, b } = setup();
    val(a.write('/iso', 'old'));
    const tx = val(a.transactionStart());
    assert.equal(text(val(a.read('/iso', tx))), 'old');
    assert.equal(err(a.read('/absent', tx)), 'ENOENT');
    val(b.write('/iso', 'new'));
    val(b.write('/absent', 'now here'));
    assert.equal(text(val(a.read('/iso', tx))), 'old');
    assert.equal(err(a.read('/absent', tx)), 'ENOENT');
  });

  it('a node read in the transaction and changed outside → EAGAIN, and the transaction is gone', () => {
    const { a, b } = setup();
    val(a.write('/c', '1'));
    const tx = val(a.transactionStart());
    val(a.read('/c', tx));
    val(a.write('/other', 'x', tx));
    val(b.write('/c', '2'));
    assert.equal(err(a.transactionEnd(tx, true)), 'EAGAIN');
    assert.equal(err(b.read('/other')), 'ENOENT', 'nothing of it was applied');
    assert.equal(err(a.transactionEnd(tx, true)), 'ENOENT');
  });

  it('reading an absent node counts: its creation outside is a conflict; so is a removal', () => {
    const { a, b } = setup();
    const tx = val(a.transactionStart());
    assert.equal(err(a.read('/probe', tx)), 'ENOENT');
    val(b.write('/probe', 'appeared'));
    assert.equal(err(a.transactionEnd(tx, true)), 'EAGAIN');
    val(b.write('/gone', ''));
    const tx2 = val(a.transactionStart());
    val(a.read('/gone', tx2));
    val(b.rm('/gone'));
    assert.equal(err(a.transactionEnd(tx2, true)), 'EAGAIN');
  });

  it('writes imply reads of the parents they change: a concurrent new sibling conflicts', () => {
    const { a, b } = setup();
    val(a.mkdir('/dir'));
    const tx = val(a.transactionStart());
    val(a.write('/dir/mine', '1', tx));
    val(b.write('/dir/theirs', '2'));
    assert.equal(err(a.transactionEnd(tx, true)), 'EAGAIN');
  });

  it('changes to nodes the transaction never touched do not conflict', () => {
    const { a, b } = setup();
    val(a.write('/u/x', '1'));
    const tx = val(a.transactionStart());
    val(a.write('/u/x', 'tx', tx));
    val(b.write('/elsewhere', '1'));
    val(b.write('/u/x/child-of-x', '1'));
    // /u/x was touched (read then written) and got a child outside: that is a conflict ...
    assert.equal(err(a.transactionEnd(tx, true)), 'EAGAIN');
    // ... while a change under an untouched sibling is not.
    const tx2 = val(a.transactionStart());
    val(a.write('/u/y', 'tx2', tx2));
    val(b.write('/u/x/another', '1'));
    assert.equal(err(a.transactionEnd(tx2, true)), 'ok');
    assert.equal(text(val(b.read('/u/y'))), 'tx2');
  });

  it('two transactions: the first commit wins, the second retries', () => {
    const { a, b } = setup();
    val(a.write('/cnt', '0'));
    const ta = val(a.transactionStart());
    const tb = val(b.transactionStart());
    const na = Number(text(val(a.read('/cnt', ta))));
    const nb = Number(text(val(b.read('/cnt', tb))));
    val(a.write('/cnt', String(na + 1), ta));
    val(b.write('/cnt', String(nb + 1), tb));
    assert.equal(err(a.transactionEnd(ta, true)), 'ok');
    assert.equal(err(b.transactionEnd(tb, true)), 'EAGAIN');
    const tb2 = val(b.transactionStart());
    val(b.write('/cnt', String(Number(text(val(b.read('/cnt', tb2)))) + 1), tb2));
    val(b.transactionEnd(tb2, true));
    assert.equal(text(val(a.read('/cnt'))), '2');
  });

  it('RM, SET_PERMS, GET_PERMS and DIRECTORY_PART work inside a transaction', () => {
    const { a, b } = setup();
    val(a.write('/r/x/y', '1'));
    const tx = val(a.transactionStart());
    val(a.rm('/r/x', tx));
    val(a.mkdir('/p', tx));
    val(a.setPerms('/p', ['r0'], tx));
    assert.deepEqual(val(a.getPerms('/p', tx)), [{ id: 0, access: 1, ignored: false }]);
    assert.deepEqual(val(a.directoryPart('/r', 0, tx)).names, []);
    assert.deepEqual(val(b.directory('/r')), ['x']);
    val(a.transactionEnd(tx, true));
    assert.deepEqual(val(b.directory('/r')), []);
    assert.equal(err(b.read('/r/x/y')), 'ENOENT');
    assert.equal(val(b.getPerms('/p'))[0]!.access, 1);
  });
});
