import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE } from '../abi/xs-wire.js';
import { formatPerm, parsePerm, permFor, type Accessor, type XsPerm } from './permissions.js';

const perms = (...s: string[]): XsPerm[] => s.map((x) => parsePerm(x)!);
const as = (domid: number, target?: number): Accessor => ({ domid, target, privileged: domid === 0 });
const R = XS_PERM_READ;
const W = XS_PERM_WRITE;
const ALL = R | W | XS_PERM_OWNER;

describe('xenstore permissions (xen-abi.md §1.6)', () => {
  it('parses and prints <letter><domid>', () => {
    assert.deepEqual(parsePerm('n0'), { id: 0, access: 0, ignored: false });
    assert.deepEqual(parsePerm('r5'), { id: 5, access: R, ignored: false });
    assert.deepEqual(parsePerm('w12'), { id: 12, access: W, ignored: false });
    assert.deepEqual(parsePerm('b7'), { id: 7, access: R | W, ignored: false });
    // strtol(…, 0): hex and octal forms are accepted, printed back as decimal.
    assert.equal(formatPerm(parsePerm('r0x10')!), 'r16');
    assert.equal(formatPerm(parsePerm('r010')!), 'r8');
    for (const bad of ['', 'x5', 'r', 'r-1', 'r5x', 'r 5', 'R5', 'r65536', 'b1.5']) assert.equal(parsePerm(bad), undefined, bad);
  });

  it('the privileged domain may do anything', () => {
    assert.equal(permFor(perms('n5'), as(0)), ALL);
  });

  it('the owner (entry 0) may do anything whatever its letter', () => {
    assert.equal(permFor(perms('n5', 'r6'), as(5)), ALL);
  });

  it('a later entry naming the domain decides; the first one wins', () => {
    assert.equal(permFor(perms('n5', 'r6', 'b6'), as(6)), R);
    assert.equal(permFor(perms('b5', 'n6'), as(6)), 0);
    assert.equal(permFor(perms('n5', 'w6'), as(6)), W);
  });

  it("others get entry 0's letter", () => {
    assert.equal(permFor(perms('r5', 'w6'), as(7)), R);
    assert.equal(permFor(perms('b5'), as(7)), R | W);
    assert.equal(permFor(perms('n5'), as(7)), 0);
  });

  it("a domain with a SET_TARGET target acts as the target's owner and entries", () => {
    assert.equal(permFor(perms('n5'), as(9, 5)), ALL);
    assert.equal(permFor(perms('n3', 'r5'), as(9, 5)), R);
  });

  it('ignored entries (domain did not exist) grant nothing', () => {
    const p: XsPerm[] = [parsePerm('n0')!, { ...parsePerm('b5')!, ignored: true }];
    assert.equal(permFor(p, as(5)), 0);
  });
});
