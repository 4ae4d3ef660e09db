import { ownerOf, type XsNode } from './node.js';

/**
 * Where an operation reads and writes nodes: the committed tree, or a transaction's view of it.
 * `put` stamps the node with a fresh generation.
 */
export interface NodeView {
  get(name: string): XsNode | undefined;
  put(node: XsNode): XsNode;
  remove(name: string): void;
  /** Nodes owned by `domid` as this view sees them (the nodes quota). */
  owned(domid: number): number;
}

/** The committed node table, with the global generation counter and per-owner node counts. */
export class NodeTree implements NodeView {
  private readonly nodes = new Map<string, XsNode>();
  private readonly ownedBy = new Map<number, number>();
  private generation = 0;

  /** The next generation count; every change and every transaction start takes one. */
  nextGeneration(): number {
    return ++this.generation;
  }

  get(name: string): XsNode | undefined {
    return this.nodes.get(name);
  }

  put(node: XsNode): XsNode {
    return this.install({ ...node, generation: this.nextGeneration() });
  }

  /** Stores a node as it is (generation already set): transaction commit and start-up. */
  install(node: XsNode): XsNode {
    const old = this.nodes.get(node.name);
    if (old !== undefined) this.count(ownerOf(old), -1);
    this.count(ownerOf(node), +1);
    this.nodes.set(node.name, node);
    return node;
  }

  remove(name: string): void {
    const old = this.nodes.get(name);
    if (old === undefined) return;
    this.count(ownerOf(old), -1);
    this.nodes.delete(name);
  }

  owned(domid: number): number {
    return this.ownedBy.get(domid) ?? 0;
  }

  get size(): number {
    return this.nodes.size;
  }

  values(): IterableIterator<XsNode> {
    return this.nodes.values();
  }

  private count(domid: number, delta: number): void {
    const n = (this.ownedBy.get(domid) ?? 0) + delta;
    if (n === 0) this.ownedBy.delete(domid);
    else this.ownedBy.set(domid, n);
  }
}
