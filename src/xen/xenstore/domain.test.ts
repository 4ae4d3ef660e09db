import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPerms } from './permissions.js';
import { XenStore } from './store.js';
import { err, val } from './test-util.js';

describe('xenstore domains: introduce, release, resume, target', () => {
  it('INTRODUCE is privileged, checks its port, fires @introduceDomain once per new domain', () => {
    const store = new XenStore();
    const dom0 = store.connect(0);
    val(dom0.watch('@introduceDomain', 'i'));
    dom0.takeEvents();
    assert.equal(val(dom0.isDomainIntroduced(3)), false);
    assert.equal(err(dom0.introduce(3, 0xfeffc, 0)), 'EINVAL', 'event channel port 0');
    assert.equal(err(dom0.introduce(70000, 1, 1)), 'EINVAL');
    assert.equal(err(dom0.introduce(0x7ff0, 1, 1)), 'EINVAL', 'DOMID_SELF is no domain');
    assert.equal(err(dom0.introduce(3, 0xfeffc, 11)), 'ok');
    assert.equal(val(dom0.isDomainIntroduced(3)), true);
    assert.equal(val(dom0.isDomainIntroduced(0)), true);
    assert.equal(val(dom0.isDomainIntroduced(0x7ff0)), true, 'DOMID_SELF');
    assert.deepEqual(dom0.takeEvents(), [{ path: '@introduceDomain', token: 'i' }]);
    const d3 = store.connect(3);
    assert.equal(err(d3.introduce(4, 1, 1)), 'EACCES');
    assert.equal(err(d3.isDomainIntroduced(0)), 'EACCES');
    assert.equal(err(d3.release(3)), 'EACCES');
    assert.equal(err(d3.resume(3)), 'EACCES');
  });

  it('introducing a known domain again resets its connections, without an event', () => {
    const store = new XenStore();
    store.introduceDomain(3);
    const dom0 = store.connect(0);
    const d3 = store.connect(3);
    val(d3.watch('x', 't'));
    const tx = val(d3.transactionStart());
    val(dom0.watch('@introduceDomain', 'i'));
    dom0.takeEvents();
    val(dom0.introduce(3, 1, 2));
    assert.deepEqual(dom0.takeEvents(), []);
    assert.equal(d3.watches.length, 0);
    assert.equal(err(d3.read('x', tx)), 'ENOENT');
  });

  it('RELEASE: dom0 is EINVAL, an unknown domain ENOENT', () => {
    const dom0 = new XenStore().connect(0);
    assert.equal(err(dom0.release(0)), 'EINVAL');
    assert.equal(err(dom0.release(8)), 'ENOENT');
    assert.equal(err(dom0.resume(0)), 'EINVAL');
    assert.equal(err(dom0.resume(8)), 'ENOENT');
    assert.equal(err(dom0.release(-2)), 'EINVAL');
  });

  it('release deletes the nodes the domain owns (watchers told), drops entries naming it, fires @releaseDomain', () => {
    const store = new XenStore();
    store.introduceDomain(5);
    const dom0 = store.connect(0);
    // A guest home as libxl makes it: dom0-owned, guest-readable; data/ guest-owned.
    val(dom0.mkdir('/local/domain/5/data'));
    val(dom0.setPerms('/local/domain/5', ['n0', 'r5']));
    val(dom0.setPerms('/local/domain/5/data', ['n5']));
    val(dom0.write('/shared/x', ''));
    val(dom0.setPerms('/shared/x', ['n0', 'r5', 'b7']));
    const d5 = store.connect(5);
    val(d5.write('data/hv2m/state', '4'));
    val(dom0.watch('/local/domain/5', 'home'));
    val(dom0.watch('@releaseDomain', 'rel'));
    dom0.takeEvents();

    assert.equal(err(dom0.release(5)), 'ok');
    assert.deepEqual(dom0.takeEvents(), [
      { path: '/local/domain/5/data', token: 'home' },
      { path: '@releaseDomain', token: 'rel' },
    ]);
    assert.deepEqual(val(dom0.directory('/local/domain/5')), [], 'dom0-owned home stays, guest-owned data goes');
    assert.equal(formatPerms(val(dom0.getPerms('/local/domain/5'))), 'n0');
    assert.equal(formatPerms(val(dom0.getPerms('/shared/x'))), 'n0,b7', 'entry for 5 dropped, others kept');
    assert.equal(store.isIntroduced(5), false);
    assert.equal(d5.closed, true);
    assert.throws(() => d5.read('data'));
    assert.equal(store.releaseDomain(5), false, 'already gone');
    // A new domain 5 starts with nothing of the old one's rights.
    store.introduceDomain(5);
    assert.equal(err(store.connect(5).read('/local/domain/5')), 'EACCES');
  });

  it('the special nodes and / are never deleted: if the released domain owned them they pass to dom0', () => {
    const store = new XenStore();
    store.introduceDomain(5);
    const dom0 = store.connect(0);
    val(dom0.setPerms('@releaseDomain', ['n5']));
    store.releaseDomain(5);
    assert.equal(formatPerms(val(dom0.getPerms('@releaseDomain'))), 'n0');
  });

  it('the hooks refuse model mistakes loudly', () => {
    const store = new XenStore();
    assert.throws(() => store.introduceDomain(1.5), /not the id of a domain/);
    assert.throws(() => store.introduceDomain(0x7ff0), /not the id of a domain/);
    assert.throws(() => store.releaseDomain(0), /dom0/);
    assert.equal(store.shutdownDomain(9), false, 'unknown domain: nothing to fire');
  });
});
