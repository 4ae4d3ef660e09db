import type { XsPerm } from './permissions.js';

/**
 * One XenStore node (xen-abi.md §1.4): a value (bytes; may be empty or contain NULs), the
 * names of its children in creation order, and its permission list. Nodes are immutable:
 * a change makes a new node, so a transaction can hold the version it saw.
 */
export interface XsNode {
  readonly name: string;
  readonly value: Uint8Array;
  readonly children: readonly string[];
  readonly perms: readonly XsPerm[];
  /**
   * Generation count: set from the store's global counter on every change of this node
   * (value, child list, permissions). Transactions compare it to detect conflicts.
   */
  readonly generation: number;
}

/** Generation recorded for a node that did not exist (xenstored's NO_GENERATION). */
export const NO_GENERATION = -1;

const EMPTY = new Uint8Array(0);

export function newNode(name: string, perms: readonly XsPerm[], value: Uint8Array = EMPTY): XsNode {
  return { name, value, children: [], perms, generation: NO_GENERATION };
}

export function ownerOf(node: XsNode): number {
  return node.perms[0]?.id ?? 0;
}

/**
 * Size counted against the node-size quota: the 4.17 record (`struct xs_tdb_record_hdr`:
 * u64 generation + three u32, padded to 24 bytes), 8 bytes per permission entry, the value,
 * and the NUL-terminated child names (xenstored_core.c write_node_raw).
 */
export function nodeSize(node: Pick<XsNode, 'value' | 'children' | 'perms'>): number {
  return 24 + 8 * node.perms.length + node.value.length + childListLength(node.children);
}

/** Bytes of the child list as xenstored stores it: every name followed by a NUL. */
export function childListLength(children: readonly string[]): number {
  let n = 0;
  for (const c of children) n += c.length + 1;
  return n;
}
