import { XENSTORE_REL_PATH_MAX } from '../abi/xs-wire.js';

/**
 * XenStore node names (xen-abi.md §1.4; xenstored's canonicalize/is_valid_nodename).
 *
 * A canonical name is either absolute (`/`, `/a/b`) or special (`@introduceDomain`). A name
 * that starts with neither is relative to the caller's home, `/local/domain/<domid>`.
 */

const VALID_CHAR = /^[A-Za-z0-9\-/_@]+$/;
/** `sscanf(name, "/local/domain/%5u/%n")`: the part of the name the path-length limit skips. */
const LOCAL_PREFIX = /^\/local\/domain\/\d{1,5}\//;

export function homePath(domid: number): string {
  return `/local/domain/${domid}`;
}

export interface CanonicalPath {
  /** Absolute or special name. */
  readonly name: string;
  /** The caller gave a relative name: events for it are reported relative too. */
  readonly relative: boolean;
}

/**
 * Validates `path` as given by connection `domid` and makes it canonical; undefined means EINVAL.
 * `allowSpecial`: `@` names are accepted (WATCH, UNWATCH, GET_PERMS, SET_PERMS only).
 * The limit on the part after `/local/domain/<n>/` (XENSTORE_REL_PATH_MAX) applies to every
 * caller, as in the 4.17 xenstored that Debian 12 ships (newer ones exempt dom0).
 */
export function canonicalize(path: string, domid: number, allowSpecial: boolean): CanonicalPath | undefined {
  if (path.length === 0 || !VALID_CHAR.test(path)) return undefined;
  if (path.startsWith('@') && !allowSpecial) return undefined;
  const relative = !path.startsWith('/') && !path.startsWith('@');
  const name = relative ? `${homePath(domid)}/${path}` : path;
  if (name.endsWith('/') && name !== '/') return undefined;
  if (name.includes('//')) return undefined;
  const skipped = LOCAL_PREFIX.exec(name)?.[0].length ?? 0;
  if (name.length - skipped > XENSTORE_REL_PATH_MAX) return undefined;
  return { name, relative };
}

export function isSpecial(name: string): boolean {
  return name.startsWith('@');
}

/** Parent of a canonical name (`get_parent`): `/` for top-level and special names. */
export function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash <= 0 ? '/' : name.slice(0, slash);
}

/** Last component of a canonical name other than `/`. */
export function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export function childPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/**
 * xenstored's `is_child(child, parent)`: `child` is `parent` or below it. A watch on `/`
 * matches every name, special ones included.
 */
export function isChildOrEqual(child: string, parent: string): boolean {
  if (parent === '/') return true;
  if (!child.startsWith(parent)) return false;
  const next = child.charAt(parent.length);
  return next === '' || next === '/';
}
