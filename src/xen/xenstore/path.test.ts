import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseName, canonicalize, isChildOrEqual, parentOf } from './path.js';

describe('xenstore paths (xen-abi.md §1.4)', () => {
  it('absolute and special names are kept; relative ones go under the caller home', () => {
    assert.deepEqual(canonicalize('/', 0, false), { name: '/', relative: false });
    assert.deepEqual(canonicalize('/local/domain/3/x', 7, false), { name: '/local/domain/3/x', relative: false });
    assert.deepEqual(canonicalize('device/vif', 7, false), { name: '/local/domain/7/device/vif', relative: true });
    assert.deepEqual(canonicalize('@releaseDomain', 0, true), { name: '@releaseDomain', relative: false });
  });

  it('rejects empty names, bad characters, // and a trailing /', () => {
    for (const bad of ['', 'a b', '/a.b', '/a/', 'a/', '/a//b', '//', '/é', '/a\0b', '/a\tb', '/a:b']) {
      assert.equal(canonicalize(bad, 0, true), undefined, JSON.stringify(bad));
    }
    for (const good of ['-', '_', 'A-Z_0-9', '/a@b', '/x/y/z']) assert.ok(canonicalize(good, 0, false), good);
  });

  it('accepts @ names only where special paths are allowed', () => {
    assert.equal(canonicalize('@introduceDomain', 0, false), undefined);
    assert.ok(canonicalize('@introduceDomain', 0, true));
  });

  it('limits the part after /local/domain/<n>/ to 2048 characters, and other names as a whole', () => {
    const rel = 'a'.repeat(2048);
    assert.ok(canonicalize(`/local/domain/5/${rel}`, 0, false));
    assert.equal(canonicalize(`/local/domain/5/${rel}b`, 0, false), undefined);
    assert.ok(canonicalize(rel, 5, false), 'relative: counted after the home prefix');
    assert.equal(canonicalize(`${rel}b`, 5, false), undefined);
    assert.ok(canonicalize(`/${'a'.repeat(2047)}`, 0, false));
    assert.equal(canonicalize(`/${'a'.repeat(2048)}`, 0, false), undefined);
    // sscanf's %5u reads at most five digits: a six-digit "domid" is not a home prefix.
    assert.equal(canonicalize(`/local/domain/123456/${'a'.repeat(2040)}`, 0, false), undefined);
  });

  it('parents, base names and the watch prefix rule', () => {
    assert.equal(parentOf('/a/b'), '/a');
    assert.equal(parentOf('/a'), '/');
    assert.equal(parentOf('@introduceDomain'), '/');
    assert.equal(baseName('/a/bc'), 'bc');
    assert.equal(isChildOrEqual('/a/b', '/a'), true);
    assert.equal(isChildOrEqual('/a', '/a'), true);
    assert.equal(isChildOrEqual('/ab', '/a'), false);
    assert.equal(isChildOrEqual('/a', '/a/b'), false);
    assert.equal(isChildOrEqual('@releaseDomain', '/'), true, 'a watch on / matches every name');
  });
});
