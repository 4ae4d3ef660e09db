import type { XsErrorName } from '../abi/xs-wire.js';
import { NO_GENERATION, ownerOf, type XsNode } from './node.js';
import type { XsPerm } from './permissions.js';
import type { NodeTree, NodeView } from './tree.js';

/** What a transaction knows of one node it touched (xenstored's `struct accessed_node`). */
interface Access {
  /** Generation of the committed node at first touch, NO_GENERATION if it was absent. */
  readonly generation: number;
  /** Permissions of the committed node at first touch: who may see its commit-time event. */
  readonly perms: readonly XsPerm[] | undefined;
  /** The transaction's version: what it read first, or what it wrote; undefined = absent. */
  node: XsNode | undefined;
  modified: boolean;
  /** A watch event is due at commit; `exact` as for RM of a subtree (xen-abi.md §1.7). */
  fire: boolean;
  exact: boolean;
}

/** A touch beyond the transaction-nodes quota: the request fails with ENOSPC. */
export class TouchQuotaExceeded extends Error {
  readonly error: XsErrorName = 'ENOSPC';
  constructor() {
    super('transaction touched more nodes than its quota allows');
  }
}

/** A node change to report once the transaction has committed. */
export interface CommittedChange {
  readonly name: string;
  readonly exact: boolean;
  readonly oldPerms: readonly XsPerm[] | undefined;
}

/**
 * One transaction (xen-abi.md §1.8; tools/xenstored/transaction.c). Its view of a node is fixed
 * at first touch — read, or the absence of the node — and later reads see that version or the
 * transaction's own writes. Commit fails with EAGAIN if any touched node's committed
 * generation moved (changed, appeared or vanished) meanwhile; otherwise the transaction's
 * writes are installed with fresh generations and its queued watch events fire.
 */
export class Transaction implements NodeView {
  private readonly accessed = new Map<string, Access>();
  private readonly ownedDelta = new Map<number, number>();
  /** A request inside it failed in a way xenstored cannot undo: commit answers ENOMEM. */
  failed = false;
  /** It created a node: the nodes quota is checked again at commit. */
  created = false;

  constructor(
    readonly id: number,
    private readonly tree: NodeTree,
    /** Most nodes it may touch; Infinity for the privileged domain. */
    private readonly maxTouched: number,
  ) {
    // Taking a generation at start is what xenstored does; it orders the transaction
    // among node changes.
    tree.nextGeneration();
  }

  get touched(): number {
    return this.accessed.size;
  }

  get(name: string): XsNode | undefined {
    return this.touch(name).node;
  }

  put(node: XsNode): XsNode {
    const a = this.touch(node.name);
    this.countOwner(a.node, -1);
    a.node = { ...node, generation: this.tree.nextGeneration() };
    a.modified = true;
    this.countOwner(a.node, +1);
    return a.node;
  }

  remove(name: string): void {
    const a = this.touch(name);
    this.countOwner(a.node, -1);
    a.node = undefined;
    a.modified = true;
  }

  owned(domid: number): number {
    return this.tree.owned(domid) + (this.ownedDelta.get(domid) ?? 0);
  }

  /** Queues the watch event of a change to `name`; a non-exact event replaces an exact one. */
  queueEvent(name: string, exact: boolean): void {
    const a = this.accessed.get(name);
    if (a === undefined) {
      this.failed = true;
      return;
    }
    if (!a.fire) {
      a.fire = true;
      a.exact = exact;
    } else if (!exact) a.exact = false;
  }

  /** Domains whose node count the transaction raises, with the count after commit. */
  ownersAfterCommit(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [domid, d] of this.ownedDelta) if (d > 0) out.set(domid, this.owned(domid));
    return out;
  }

  /** Whether every touched node still has the generation it had at first touch. */
  conflicts(): boolean {
    for (const [name, a] of this.accessed) {
      if ((this.tree.get(name)?.generation ?? NO_GENERATION) !== a.generation) return true;
    }
    return false;
  }

  /**
   * Installs the transaction's writes into the tree (call only when conflicts() is false) and
   * returns the watch events due, in the order the nodes were first touched.
   */
  commit(): CommittedChange[] {
    const changes: CommittedChange[] = [];
    for (const [name, a] of this.accessed) {
      if (a.modified) {
        if (a.node !== undefined) this.tree.install({ ...a.node, generation: this.tree.nextGeneration() });
        else this.tree.remove(name);
      }
      if (a.fire) changes.push({ name, exact: a.exact, oldPerms: a.perms });
    }
    this.accessed.clear();
    return changes;
  }

  /** Drops permission entries naming a released domain from the nodes this transaction holds. */
  dropPermsOf(domid: number): void {
    for (const a of this.accessed.values()) {
      if (a.node !== undefined && a.node.perms.some((p, i) => i > 0 && p.id === domid)) {
        a.node = { ...a.node, perms: a.node.perms.filter((p, i) => i === 0 || p.id !== domid) };
      }
    }
  }

  private touch(name: string): Access {
    const known = this.accessed.get(name);
    if (known !== undefined) return known;
    if (this.accessed.size >= this.maxTouched) {
      this.failed = true;
      throw new TouchQuotaExceeded();
    }
    const committed = this.tree.get(name);
    const a: Access = {
      generation: committed?.generation ?? NO_GENERATION,
      perms: committed?.perms,
      node: committed,
      modified: false,
      fire: false,
      exact: false,
    };
    this.accessed.set(name, a);
    return a;
  }

  private countOwner(node: XsNode | undefined, delta: number): void {
    if (node === undefined) return;
    const d = ownerOf(node);
    this.ownedDelta.set(d, (this.ownedDelta.get(d) ?? 0) + delta);
  }
}
