import { XS_PERM_LETTERS, XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE, type XsPermLetter } from '../abi/xs-wire.js';

/**
 * A node's permission entry (xen-abi.md §1.6). Entry 0 names the owner and gives the default
 * access for domains without an entry of their own.
 */
export interface XsPerm {
  readonly id: number;
  /** XS_PERM_READ | XS_PERM_WRITE bits. */
  readonly access: number;
  /**
   * The entry named a domain that did not exist when it was set (xenstored's XS_PERM_IGNORE):
   * it is still listed by GET_PERMS but grants nothing, even to a later domain with that id.
   */
  readonly ignored: boolean;
}

/** Who is asking: a connection's domain, its SET_TARGET target, and whether it is privileged. */
export interface Accessor {
  readonly domid: number;
  readonly target: number | undefined;
  readonly privileged: boolean;
}

const MAX_DOMID = 0xffff;

/**
 * Parses one `<letter><id>` entry as `xenstore_strings_to_perms` does: the id is read like
 * `strtol(…, 0)` (decimal, `0x` hex or leading-0 octal), with nothing after it.
 */
export function parsePerm(s: string): XsPerm | undefined {
  const letter = s.charAt(0);
  if (!(letter in XS_PERM_LETTERS)) return undefined;
  const digits = s.slice(1);
  let id: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(digits)) id = parseInt(digits.slice(2), 16);
  else if (/^0[0-7]*$/.test(digits)) id = parseInt(digits, 8);
  else if (/^[1-9][0-9]*$/.test(digits)) id = parseInt(digits, 10);
  else return undefined;
  if (!(id <= MAX_DOMID)) return undefined;
  return { id, access: XS_PERM_LETTERS[letter as XsPermLetter], ignored: false };
}

export function formatPerm(p: XsPerm): string {
  const letter = p.access === (XS_PERM_READ | XS_PERM_WRITE) ? 'b' : p.access === XS_PERM_WRITE ? 'w' : p.access === XS_PERM_READ ? 'r' : 'n';
  return `${letter}${p.id}`;
}

export function formatPerms(perms: readonly XsPerm[]): string {
  return perms.map(formatPerm).join(',');
}

/**
 * xenstored's `perm_for_conn`: the privileged domain and the owner (or a domain whose SET_TARGET
 * target is the owner) get read, write and owner rights whatever the letters say; otherwise
 * the first later entry naming the domain or its target decides; otherwise entry 0's letter.
 */
export function permFor(perms: readonly XsPerm[], who: Accessor): number {
  const all = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;
  const owner = perms[0];
  if (who.privileged || owner === undefined) return who.privileged ? all : 0;
  const names = (id: number): boolean => id === who.domid || (who.target !== undefined && id === who.target);
  if (names(owner.id)) return all;
  for (let i = 1; i < perms.length; i++) {
    const p = perms[i]!;
    if (!p.ignored && names(p.id)) return p.access;
  }
  return owner.access;
}
