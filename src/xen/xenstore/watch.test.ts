import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { XsConnection } from './connection.js';
import { err, storeWith as setup, val } from './test-util.js';

/** Paths of the events queued for `c` (taking them). */
const paths = (c: XsConnection): string[] => c.takeEvents().map((e) => e.path);

describe('xenstore watches (xen-abi.md §1.7)', () => {
  it('WATCH answers OK and queues one first event with the path as given', () => {
    const { dom0 } = setup();
    assert.equal(err(dom0.watch('/nonexistent/yet', 'tok')), 'ok');
    assert.deepEqual(dom0.takeEvents(), [{ path: '/nonexistent/yet', token: 'tok' }]);
  });

  it('fires for the node, its descendants, their creation and removal; not for others', () => {
    const { dom0 } = setup();
    val(dom0.write('/a/b', ''));
    val(dom0.watch('/a/b', 't'));
    dom0.takeEvents();
    val(dom0.write('/a/b', 'v'));
    val(dom0.write('/a/b/c/d', 'created'));
    val(dom0.write('/a/bc', 'sibling with a common prefix'));
    val(dom0.write('/a', 'parent'));
    val(dom0.mkdir('/a/b/e'));
    assert.deepEqual(paths(dom0), ['/a/b', '/a/b/c/d', '/a/b/e']);
    val(dom0.rm('/a/b/c'));
    assert.deepEqual(paths(dom0), ['/a/b/c'], 'below the removed top, only exact watches fire');
  });

  it('a change fires once per matching watch, with each watch token; / sees everything', () => {
    const { dom0 } = setup();
    val(dom0.watch('/', 'root'));
    val(dom0.watch('/x', 'x'));
    dom0.takeEvents();
    val(dom0.write('/x/y', '1'));
    assert.deepEqual(dom0.takeEvents(), [
      { path: '/x/y', token: 'root' },
      { path: '/x/y', token: 'x' },
    ]);
  });

  it('WRITE fires only for the written node, not for the ancestors it created', () => {
    const { dom0 } = setup();
    val(dom0.watch('/n/o', 'mid'));
    val(dom0.watch('/n', 'top'));
    dom0.takeEvents();
    val(dom0.write('/n/o/p', ''));
    assert.deepEqual(dom0.takeEvents(), [
      { path: '/n/o/p', token: 'mid' },
      { path: '/n/o/p', token: 'top' },
    ]);
  });

  it('MKDIR of an existing node fires nothing', () => {
    const { dom0 } = setup();
    val(dom0.mkdir('/k'));
    val(dom0.watch('/k', 't'));
    dom0.takeEvents();
    val(dom0.mkdir('/k'));
    assert.deepEqual(paths(dom0), []);
  });

  it('RM of a subtree: removed nodes fire exact watches deepest first, the top also its ancestors', () => {
    const { dom0 } = setup();
    val(dom0.write('/r/s/t/u', ''));
    val(dom0.write('/r/s/v', ''));
    for (const w of ['/', '/r', '/r/s', '/r/s/t', '/r/s/t/u', '/r/s/v', '/r/s/ghost', '/elsewhere']) val(dom0.watch(w, w));
    dom0.takeEvents();
    val(dom0.rm('/r/s'));
    assert.deepEqual(
      dom0.takeEvents().map((e) => `${e.token}:${e.path}`),
      ['/r/s/t/u:/r/s/t/u', '/r/s/t:/r/s/t', '/r/s/v:/r/s/v', '/:/r/s', '/r:/r/s', '/r/s:/r/s'],
    );
  });

  it('relative watches get relative event paths', () => {
    const { store, dom0 } = setup(4);
    val(dom0.write('/local/domain/4', ''));
    val(dom0.setPerms('/local/domain/4', ['n4']));
    const d4 = store.connect(4);
    val(d4.watch('device', 'rel'));
    val(d4.watch('/local/domain/4/device', 'abs'));
    assert.deepEqual(d4.takeEvents(), [
      { path: 'device', token: 'rel' },
      { path: '/local/domain/4/device', token: 'abs' },
    ]);
    val(dom0.write('/local/domain/4/device/vif/0/state', '1'));
    assert.deepEqual(d4.takeEvents(), [
      { path: 'device/vif/0/state', token: 'rel' },
      { path: '/local/domain/4/device/vif/0/state', token: 'abs' },
    ]);
  });

  it('a watcher gets events only for nodes it may read, or whose parent it may read', () => {
    const { store, dom0 } = setup(5);
    const d5 = store.connect(5);
    val(dom0.mkdir('/priv'));
    val(d5.watch('/priv', 'w'));
    d5.takeEvents();
    val(dom0.write('/priv/x', '1'));
    assert.deepEqual(paths(d5), [], 'n0 everywhere: nothing');
    val(dom0.setPerms('/priv', ['n0', 'r5']));
    d5.takeEvents();
    val(dom0.write('/priv/y', '1'));
    assert.deepEqual(paths(d5), ['/priv/y'], 'node n0 but parent readable');
  });

  it('SET_PERMS that takes read access away still tells the watcher (old permissions count)', () => {
    const { store, dom0 } = setup(5);
    const d5 = store.connect(5);
    val(dom0.write('/s/node', ''));
    val(dom0.setPerms('/s/node', ['n0', 'r5']));
    val(d5.watch('/s/node', 'w'));
    d5.takeEvents();
    val(dom0.setPerms('/s/node', ['n0']));
    assert.deepEqual(paths(d5), ['/s/node']);
    val(dom0.write('/s/node', 'now hidden'));
    assert.deepEqual(paths(d5), []);
  });

  it('an identical event still queued is not queued again', () => {
    const { dom0 } = setup();
    val(dom0.watch('/d', 't'));
    dom0.takeEvents();
    val(dom0.write('/d', '1'));
    val(dom0.write('/d', '2'));
    val(dom0.write('/d/e', '3'));
    assert.deepEqual(paths(dom0), ['/d', '/d/e']);
    val(dom0.write('/d', '4'));
    assert.deepEqual(paths(dom0), ['/d'], 'once taken, the next change queues again');
  });

  it('duplicate (path, token) is EEXIST; UNWATCH removes; unknown UNWATCH is ENOENT', () => {
    const { dom0 } = setup();
    val(dom0.watch('/w', 'a'));
    assert.equal(err(dom0.watch('/w', 'a')), 'EEXIST');
    assert.equal(err(dom0.watch('/local/domain/0/w', 'a')), 'ok', 'different node');
    assert.equal(err(dom0.watch('w', 'a')), 'EEXIST', 'same canonical path as the one above');
    assert.equal(err(dom0.watch('/w', 'b')), 'ok');
    assert.equal(err(dom0.unwatch('/w', 'a')), 'ok');
    assert.equal(err(dom0.unwatch('/w', 'a')), 'ENOENT');
    assert.equal(err(dom0.watch('/w/', 'a')), 'EINVAL');
    assert.equal(err(dom0.watch('/w', 'nul\0inside')), 'EINVAL');
    dom0.takeEvents();
    val(dom0.write('/w', 'x'));
    assert.deepEqual(dom0.takeEvents(), [{ path: '/w', token: 'b' }]);
  });

  it('RESET_WATCHES drops the caller watches and transactions', () => {
    const { dom0 } = setup();
    val(dom0.watch('/z', 't'));
    const tx = val(dom0.transactionStart());
    val(dom0.resetWatches());
    dom0.takeEvents();
    val(dom0.write('/z', '1'));
    assert.deepEqual(paths(dom0), []);
    assert.equal(err(dom0.read('/z', tx)), 'ENOENT', 'the transaction is gone');
  });

  it('changes in a transaction fire at commit only, and not at all when aborted', () => {
    const { dom0 } = setup();
    const other = dom0;
    val(other.watch('/t', 'w'));
    other.takeEvents();
    const tx = val(dom0.transactionStart());
    val(dom0.write('/t/a', '1', tx));
    val(dom0.write('/t/a', '2', tx));
    val(dom0.rm('/t/gone', tx));
    assert.deepEqual(paths(other), []);
    val(dom0.transactionEnd(tx, true));
    assert.deepEqual(paths(other), ['/t/a']);
    const tx2 = val(dom0.transactionStart());
    val(dom0.write('/t/b', '1', tx2));
    val(dom0.transactionEnd(tx2, false));
    assert.deepEqual(paths(other), []);
  });

  it('@introduceDomain / @releaseDomain reach privileged watchers, and others only if permitted', () => {
    const { store, dom0 } = setup(5);
    const d5 = store.connect(5);
    val(dom0.watch('@introduceDomain', 'i'));
    val(dom0.watch('@releaseDomain', 'r'));
    val(d5.watch('@introduceDomain', 'i5'));
    dom0.takeEvents();
    d5.takeEvents();
    store.introduceDomain(6);
    assert.deepEqual(dom0.takeEvents(), [{ path: '@introduceDomain', token: 'i' }]);
    assert.deepEqual(paths(d5), []);
    val(dom0.setPerms('@introduceDomain', ['n0', 'r5']));
    assert.deepEqual(paths(d5), ['@introduceDomain'], 'SET_PERMS fires watches on the node itself');
    dom0.takeEvents();
    store.introduceDomain(7);
    assert.deepEqual(paths(d5), ['@introduceDomain']);
    dom0.takeEvents();
    store.releaseDomain(7);
    assert.deepEqual(dom0.takeEvents(), [{ path: '@releaseDomain', token: 'r' }]);
  });

  it('shutdown fires @releaseDomain once until RESUME', () => {
    const { store, dom0 } = setup(5);
    val(dom0.watch('@releaseDomain', 'r'));
    dom0.takeEvents();
    assert.equal(store.shutdownDomain(5), true);
    assert.equal(store.shutdownDomain(5), false);
    assert.deepEqual(paths(dom0), ['@releaseDomain']);
    val(dom0.resume(5));
    assert.equal(store.shutdownDomain(5), true);
    assert.deepEqual(paths(dom0), ['@releaseDomain']);
  });

  it('onEvent is told of each queued event', () => {
    const { dom0 } = setup();
    let told = 0;
    dom0.onEvent = () => told++;
    val(dom0.watch('/o', 't'));
    val(dom0.write('/o/p', '1'));
    assert.equal(told, 2);
    assert.equal(dom0.events.length, 2);
  });
});
