import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPerms } from './permissions.js';
import { XenStore } from './store.js';
import { err, storeWith as setup, text, val } from './test-util.js';

describe('xenstore store: nodes (xen-abi.md §1.4, §1.5)', () => {
  it('a fresh store holds /, /tool, /tool/xenstored and the special nodes, all n0', () => {
    const { dom0 } = setup();
    assert.deepEqual(val(dom0.directory('/')), ['tool']);
    assert.deepEqual(val(dom0.directory('/tool')), ['xenstored']);
    assert.deepEqual(val(dom0.directory('/tool/xenstored')), []);
    for (const p of ['/', '/tool', '/tool/xenstored', '@introduceDomain', '@releaseDomain']) {
      assert.equal(formatPerms(val(dom0.getPerms(p))), 'n0', p);
    }
    assert.equal(text(val(dom0.read('/tool'))), '');
  });

  it('@ names are accepted only by GET/SET_PERMS and WATCH/UNWATCH', () => {
    const { dom0 } = setup();
    assert.equal(err(dom0.read('@introduceDomain')), 'EINVAL');
    assert.equal(err(dom0.write('@introduceDomain', 'x')), 'EINVAL');
    assert.equal(err(dom0.directory('@releaseDomain')), 'EINVAL');
    assert.equal(err(dom0.rm('@releaseDomain')), 'EINVAL');
    assert.equal(err(dom0.mkdir('@x')), 'EINVAL');
    assert.equal(err(dom0.getPerms('@nosuch')), 'ENOENT');
    assert.equal(err(dom0.setPerms('@introduceDomain', ['n0'])), 'ok');
  });

  it('WRITE creates missing ancestors with empty values; values are bytes, NULs included', () => {
    const { dom0 } = setup();
    const v = new Uint8Array([0, 1, 2, 0, 255]);
    assert.equal(err(dom0.write('/a/b/c', v)), 'ok');
    assert.deepEqual(val(dom0.read('/a/b/c')), v);
    assert.equal(val(dom0.read('/a/b')).length, 0);
    assert.deepEqual(val(dom0.directory('/a')), ['b']);
    assert.equal(err(dom0.write('/a/b', '')), 'ok');
    assert.deepEqual(val(dom0.directory('/a/b')), ['c'], 'writing a value keeps the children');
  });

  it('children are listed in creation order; a re-created child goes last', () => {
    const { dom0 } = setup();
    for (const c of ['z', 'a', 'm']) val(dom0.write(`/d/${c}`, c));
    assert.deepEqual(val(dom0.directory('/d')), ['z', 'a', 'm']);
    val(dom0.rm('/d/z'));
    val(dom0.mkdir('/d/z'));
    assert.deepEqual(val(dom0.directory('/d')), ['a', 'm', 'z']);
  });

  it('relative paths are relative to /local/domain/<caller>', () => {
    const { store, dom0 } = setup(3);
    val(dom0.write('name', 'Domain-0'));
    assert.equal(text(val(dom0.read('/local/domain/0/name'))), 'Domain-0');
    val(dom0.write('/local/domain/3', ''));
    val(dom0.setPerms('/local/domain/3', ['n3']));
    const d3 = store.connect(3);
    val(d3.write('data/x', '1'));
    assert.equal(text(val(dom0.read('/local/domain/3/data/x'))), '1');
  });

  it('MKDIR creates like WRITE with an empty value and leaves an existing node alone', () => {
    const { dom0 } = setup();
    val(dom0.write('/m', 'keep'));
    val(dom0.mkdir('/m'));
    assert.equal(text(val(dom0.read('/m'))), 'keep');
    val(dom0.mkdir('/n/o'));
    assert.deepEqual(val(dom0.directory('/n')), ['o']);
  });

  it('RM removes the subtree; absent node OK if the parent exists, else ENOENT; / is EINVAL', () => {
    const { dom0 } = setup();
    val(dom0.write('/r/a/b', 'x'));
    val(dom0.write('/r/c', 'y'));
    assert.equal(err(dom0.rm('/r/a')), 'ok');
    assert.deepEqual(val(dom0.directory('/r')), ['c']);
    assert.equal(err(dom0.read('/r/a/b')), 'ENOENT');
    assert.equal(err(dom0.rm('/r/nope')), 'ok');
    assert.equal(err(dom0.rm('/r/nope/deeper')), 'ENOENT');
    assert.equal(err(dom0.rm('/')), 'EINVAL');
    assert.equal(err(dom0.read('/missing')), 'ENOENT');
    assert.equal(err(dom0.directory('/missing')), 'ENOENT');
    assert.equal(err(dom0.getPerms('/missing')), 'ENOENT');
    assert.equal(err(dom0.setPerms('/missing', ['n0'])), 'ENOENT');
  });

  it('GET_DOMAIN_PATH answers for any domid, introduced or not', () => {
    const { dom0 } = setup();
    assert.equal(val(dom0.getDomainPath(42)), '/local/domain/42');
    assert.equal(err(dom0.getDomainPath(65536)), 'EINVAL');
    assert.equal(err(dom0.getDomainPath(-1)), 'EINVAL');
  });

  it('DIRECTORY over 4096 bytes is E2BIG; DIRECTORY_PART returns it in chunks', () => {
    const { dom0 } = setup();
    const names = Array.from({ length: 300 }, (_, i) => `child-number-${i}`);
    for (const n of names) val(dom0.mkdir(`/big/${n}`));
    assert.equal(err(dom0.directory('/big')), 'E2BIG');
    const got: string[] = [];
    let offset = 0;
    let gen: number | undefined;
    for (;;) {
      const part = val(dom0.directoryPart('/big', offset));
      gen ??= part.generation;
      assert.equal(part.generation, gen, 'no change between chunks: same generation');
      got.push(...part.names);
      offset += part.names.reduce((n, s) => n + s.length + 1, 0);
      if (part.complete) break;
      assert.ok(part.names.length > 0);
    }
    assert.deepEqual(got, names);
    assert.deepEqual(val(dom0.directoryPart('/big', offset + 10)), { generation: gen, names: [], complete: true });
    val(dom0.mkdir('/big/one-more'));
    assert.notEqual(val(dom0.directoryPart('/big', 0)).generation, gen, 'adding a child changes the generation');
    assert.equal(err(dom0.directoryPart('/big', -1)), 'EINVAL');
  });

  it('oversized in-process requests are E2BIG, as no wire message could carry them', () => {
    const { dom0 } = setup();
    assert.equal(err(dom0.write('/v', new Uint8Array(4093))), 'ok', '"/v\\0" + 4093 bytes = 4096');
    assert.equal(err(dom0.write('/v', new Uint8Array(4094))), 'E2BIG');
    assert.equal(err(dom0.watch('/v', 'x'.repeat(4094))), 'E2BIG');
  });

  it('using a closed connection is a model bug and throws', () => {
    const { dom0 } = setup();
    dom0.close();
    assert.equal(dom0.closed, true);
    assert.throws(() => dom0.read('/'), /closed/);
  });

  it('connecting for a domain never introduced throws', () => {
    assert.throws(() => new XenStore().connect(5), /not been introduced/);
  });
});

describe('xenstore store: permissions (xen-abi.md §1.6)', () => {
  it('new nodes inherit the parent list; an unprivileged creator becomes the owner', () => {
    const { store, dom0 } = setup(5);
    val(dom0.mkdir('/shared'));
    val(dom0.setPerms('/shared', ['n0', 'b5', 'r7']));
    val(dom0.mkdir('/shared/by0'));
    assert.equal(formatPerms(val(dom0.getPerms('/shared/by0'))), 'n0,b5,r7');
    const d5 = store.connect(5);
    val(d5.write('/shared/by5/deep', 'x'));
    assert.equal(formatPerms(val(dom0.getPerms('/shared/by5'))), 'n5,b5,r7');
    assert.equal(formatPerms(val(dom0.getPerms('/shared/by5/deep'))), 'n5,b5,r7');
  });

  it('EACCES vs ENOENT: a missing node is ENOENT only if the caller may access its nearest ancestor', () => {
    const { store, dom0 } = setup(5);
    val(dom0.mkdir('/secret'));
    val(dom0.write('/open/x', '1'));
    val(dom0.setPerms('/open', ['r0']));
    const d5 = store.connect(5);
    assert.equal(err(d5.read('/secret/nothing/here')), 'EACCES');
    assert.equal(err(d5.read('/open/nothing')), 'ENOENT');
    assert.equal(err(d5.read('/secret')), 'EACCES', 'existing but unreadable');
    assert.equal(err(d5.write('/open/new', 'x')), 'EACCES', 'readable is not writable: no create');
    assert.equal(err(d5.rm('/open/nothing')), 'EACCES', 'RM of a missing node needs write on the ancestor');
    assert.equal(err(d5.directory('/')), 'EACCES');
  });

  it('READ, WRITE, DIRECTORY, GET_PERMS follow the matrix', () => {
    const { store, dom0 } = setup(5, 6, 7);
    val(dom0.write('/m', 'v'));
    val(dom0.setPerms('/m', ['n5', 'r6', 'w7']));
    const [d5, d6, d7] = [store.connect(5), store.connect(6), store.connect(7)];
    // Owner: everything. r6: read only. w7: write only.
    assert.deepEqual([err(d5.read('/m')), err(d5.write('/m', 'a')), err(d5.getPerms('/m'))], ['ok', 'ok', 'ok']);
    assert.deepEqual([err(d6.read('/m')), err(d6.write('/m', 'b')), err(d6.directory('/m'))], ['ok', 'EACCES', 'ok']);
    assert.deepEqual([err(d7.read('/m')), err(d7.write('/m', 'c')), err(d7.getPerms('/m'))], ['EACCES', 'ok', 'EACCES']);
    assert.equal(text(val(dom0.read('/m'))), 'c');
  });

  it('SET_PERMS: owner or privileged only; unprivileged may not change the owner or set > 5 entries', () => {
    const { store, dom0 } = setup(5, 6);
    val(dom0.write('/p', ''));
    val(dom0.setPerms('/p', ['n5', 'b6']));
    const [d5, d6] = [store.connect(5), store.connect(6)];
    assert.equal(err(d6.setPerms('/p', ['n5', 'b6', 'r6'])), 'EACCES', 'write access is not ownership');
    assert.equal(err(d5.setPerms('/p', ['n6'])), 'EPERM');
    assert.equal(err(d5.setPerms('/p', ['n5', 'r0', 'r0', 'r0', 'r0', 'r0'])), 'ENOSPC');
    assert.equal(err(d5.setPerms('/p', ['r5', 'r0', 'r0', 'r0', 'r0'])), 'ok');
    assert.equal(formatPerms(val(dom0.getPerms('/p'))), 'r5,r0,r0,r0,r0');
    assert.equal(err(dom0.setPerms('/p', ['n6'])), 'ok', 'dom0 may give a node away');
    assert.equal(err(dom0.setPerms('/p', [])), 'EINVAL');
    assert.equal(err(dom0.setPerms('/p', ['x1'])), 'EINVAL');
    assert.equal(err(dom0.setPerms('/p', ['n0', 'r'])), 'EINVAL');
  });

  it('SET_PERMS naming an unknown domain: owner is ENOENT, other entries are kept but grant nothing', () => {
    const { store, dom0 } = setup();
    val(dom0.write('/q', ''));
    assert.equal(err(dom0.setPerms('/q', ['n9'])), 'ENOENT');
    val(dom0.setPerms('/q', ['n0', 'r9']));
    assert.equal(formatPerms(val(dom0.getPerms('/q'))), 'n0,r9');
    store.introduceDomain(9);
    assert.equal(err(store.connect(9).read('/q')), 'EACCES', 'a later domain 9 does not inherit the entry');
  });

  it('SET_TARGET: the stub domain acts as its target (owner rights on its nodes)', () => {
    const { store, dom0 } = setup(5, 9);
    val(dom0.write('/local/domain/5/x', ''));
    val(dom0.setPerms('/local/domain/5/x', ['n5']));
    const d9 = store.connect(9);
    assert.equal(err(d9.read('/local/domain/5/x')), 'EACCES');
    assert.equal(err(dom0.setTarget(9, 5)), 'ok');
    assert.equal(err(d9.read('/local/domain/5/x')), 'ok');
    assert.equal(err(d9.setPerms('/local/domain/5/x', ['n5', 'r9'])), 'ok');
    assert.equal(err(dom0.setTarget(9, 77)), 'ENOENT');
    assert.equal(err(dom0.setTarget(77, 5)), 'ENOENT');
    assert.equal(err(d9.setTarget(9, 5)), 'EACCES');
  });
});
