import { DOMID_FIRST_RESERVED, XS_INTRODUCE_DOMAIN_PATH, XS_PERM_NONE, XS_PERM_READ, XS_RELEASE_DOMAIN_PATH } from '../abi/xs-wire.js';
import { XsConnection } from './connection.js';
import { newNode, ownerOf, type XsNode } from './node.js';
import { XsOperations } from './operations.js';
import { childPath, isSpecial, parentOf } from './path.js';
import { permFor, type Accessor, type XsPerm } from './permissions.js';
import { DEFAULT_QUOTAS, checkQuotas, type XsQuotas } from './quota.js';
import { NodeTree } from './tree.js';
import { eventPath, watchMatches } from './watch.js';

/** A domain xenstored knows: dom0 from the start, others once introduced. */
interface DomainState {
  readonly domid: number;
  /** @releaseDomain already fired for its shutdown; RESUME re-arms it. */
  shutdown: boolean;
  /** SET_TARGET: this domain acts as the owner of its target's nodes (a stub domain for its guest). */
  target: number | undefined;
  /** INTRODUCE's ring frame and event channel, for the guest transport. */
  gfn: number;
  port: number;
}

export interface XenStoreOptions {
  /** Override xenstored's default quotas (as its -Q options do). */
  quotas?: Partial<XsQuotas>;
  /**
   * Whether the hypervisor has a domain with this id (xenstored asks Xen with
   * xc_domain_getinfo): a toolstack writes a new domain's home, with permission entries
   * naming it, before it introduces the domain. Without it, only introduced domains exist.
   */
  domainExists?: (domid: number) => boolean;
}

export interface IntroduceOptions {
  /** Frame of the domain's xenstore ring page. */
  gfn?: number;
  /** Event channel port of the ring. */
  port?: number;
}

/** The privileged domain: dom0 (xenstored's dom0_domid = priv_domid = 0). */
export const PRIV_DOMID = 0;

export function isDomid(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/** Ids from DOMID_FIRST_RESERVED up (DOMID_SELF, DOMID_IO…) never name a real domain. */
export function isRealDomid(n: number): boolean {
  return isDomid(n) && n < DOMID_FIRST_RESERVED;
}

/**
 * The XenStore of one host, with xenstored's semantics (xen-abi.md §1; tools/xenstored).
 * Clients talk to it through connections (`connect(domid)`); the hypervisor tells it about
 * domains through `introduceDomain` / `shutdownDomain` / `releaseDomain`. It has no notion
 * of time or sockets: transports (the daemon's Unix socket, a guest's ring) sit in front.
 */
export class XenStore {
  readonly quotas: XsQuotas;
  /** The committed nodes. Read-only for everything outside this folder. */
  readonly tree = new NodeTree();
  private readonly domains = new Map<number, DomainState>();
  /** Open connections, in the order they were made (the order watch events are queued in). */
  private readonly conns = new Set<XsConnection>();
  private nextConnId = 1;
  private readonly ops: XsOperations;

  constructor(private readonly options: XenStoreOptions = {}) {
    this.quotas = checkQuotas({ ...DEFAULT_QUOTAS, ...options.quotas });
    this.ops = new XsOperations(this);
    // A fresh xenstored's tree (core.c setup_structure), every node owned by dom0 with `n0`.
    const n0: XsPerm[] = [{ id: PRIV_DOMID, access: XS_PERM_NONE, ignored: false }];
    const init = (name: string, children: string[]): void => {
      this.tree.install({ ...newNode(name, n0), children, generation: this.tree.nextGeneration() });
    };
    init('/', ['tool']);
    init('/tool', ['xenstored']);
    init('/tool/xenstored', []);
    init(XS_RELEASE_DOMAIN_PATH, []);
    init(XS_INTRODUCE_DOMAIN_PATH, []);
    this.domains.set(PRIV_DOMID, { domid: PRIV_DOMID, shutdown: false, target: undefined, gfn: 0, port: 0 });
  }

  /**
   * A new connection for `domid`, which must be dom0 (socket clients are dom0 too) or an
   * introduced domain. Its requests are checked with that domain's rights and quotas.
   */
  connect(domid: number): XsConnection {
    if (!this.domains.has(domid)) throw new Error(`xenstore: domain ${domid} has not been introduced; call introduceDomain(${domid}) first`);
    const privileged = domid === PRIV_DOMID;
    const conn = new XsConnection(this.ops, this.nextConnId++, domid, privileged, privileged ? Infinity : this.quotas.eventBytes);
    this.conns.add(conn);
    return conn;
  }

  /**
   * The hypervisor made a domain known (xenstored's INTRODUCE): watchers of
   * @introduceDomain are told. Introducing a known domain again only updates its ring
   * details and resets its connections' watches and transactions, as xenstored does.
   */
  introduceDomain(domid: number, options: IntroduceOptions = {}): void {
    if (!isRealDomid(domid)) throw new RangeError(`xenstore: introduceDomain(${domid}): not the id of a domain (0..${DOMID_FIRST_RESERVED - 1})`);
    const known = this.domains.get(domid);
    if (known !== undefined) {
      known.gfn = options.gfn ?? known.gfn;
      known.port = options.port ?? known.port;
      if (domid !== PRIV_DOMID) for (const c of this.connectionsOf(domid)) this.resetConnection(c);
      return;
    }
    this.domains.set(domid, { domid, shutdown: false, target: undefined, gfn: options.gfn ?? 0, port: options.port ?? 0 });
    this.fireSpecial(XS_INTRODUCE_DOMAIN_PATH);
  }

  /**
   * The domain shut down: @releaseDomain fires, once until the toolstack sends RESUME.
   * Returns whether it fired.
   */
  shutdownDomain(domid: number): boolean {
    const d = this.domains.get(domid);
    if (d === undefined || d.shutdown || domid === PRIV_DOMID) return false;
    d.shutdown = true;
    this.fireSpecial(XS_RELEASE_DOMAIN_PATH);
    return true;
  }

  /**
   * The domain is gone (destroyed, or RELEASE from the toolstack): its connections close, the
   * nodes it owns are deleted (watchers are told, as for RM), permission entries naming it are
   * dropped, and @releaseDomain fires. Returns false if the domain was not introduced.
   */
  releaseDomain(domid: number): boolean {
    if (domid === PRIV_DOMID) throw new Error('xenstore: dom0 cannot be released');
    if (!this.domains.has(domid)) return false;
    for (const c of this.connectionsOf(domid)) this.closeConnection(c);
    this.removeOwnedNodes(domid);
    this.domains.delete(domid);
    for (const d of this.domains.values()) if (d.target === domid) d.target = undefined;
    this.fireSpecial(XS_RELEASE_DOMAIN_PATH);
    return true;
  }

  isIntroduced(domid: number): boolean {
    return this.domains.has(domid);
  }

  /** Whether a permission entry may name `domid`: dom0, an introduced domain, or one Xen has. */
  domainExists(domid: number): boolean {
    return this.domains.has(domid) || (this.options.domainExists?.(domid) ?? false);
  }

  /** The connection's transport went away: its watches and transactions go with it. */
  closeConnection(conn: XsConnection): void {
    if (!this.conns.delete(conn)) return;
    this.resetConnection(conn);
    conn.events.clear();
    conn.markClosed();
  }

  // ---- used by XsOperations ----

  /** Using a closed connection is a bug in the model (its transport is gone), not a client error. */
  checkOpen(conn: XsConnection): void {
    if (!this.conns.has(conn)) throw new Error(`xenstore: connection ${conn.id} (domain ${conn.domid}) is closed`);
  }

  accessor(conn: XsConnection): Accessor {
    return { domid: conn.domid, privileged: conn.privileged, target: this.domains.get(conn.domid)?.target };
  }

  domain(domid: number): DomainState | undefined {
    return this.domains.get(domid);
  }

  /** Drops a connection's watches and transactions (RESET_WATCHES, re-INTRODUCE, close). */
  resetConnection(conn: XsConnection): void {
    conn.watches.length = 0;
    conn.transactions.clear();
  }

  /** Watches, or open transactions, of all connections of a domain (quotas count per domain). */
  watchCount(domid: number): number {
    let n = 0;
    for (const c of this.connectionsOf(domid)) n += c.watches.length;
    return n;
  }

  transactionCount(domid: number): number {
    let n = 0;
    for (const c of this.connectionsOf(domid)) n += c.transactions.size;
    return n;
  }

  /**
   * Queues the events of a committed change at `name` on every connection with a matching
   * watch that may see it (watch.c fire_watches). `exact`: only watches on that very node.
   * `node` is the node as it was (RM passes the node being removed); `oldPerms` the
   * permissions before a change, which also entitle a watcher to the event.
   */
  fireWatches(name: string, exact: boolean, oldPerms?: readonly XsPerm[], node?: XsNode): void {
    for (const conn of this.conns) {
      let permitted: boolean | undefined;
      for (const w of conn.watches) {
        if (!watchMatches(w, name, exact)) continue;
        permitted ??= this.watchPermitted(conn, name, node, oldPerms);
        if (!permitted) break;
        conn.queueEvent({ path: eventPath(w, name), token: w.token });
      }
    }
  }

  /**
   * watch.c watch_permitted: the watcher may read the node (with its old permissions, or as it
   * is now) or its parent. A node that no longer exists, seen by nobody before, fires nothing.
   */
  private watchPermitted(conn: XsConnection, name: string, node: XsNode | undefined, oldPerms: readonly XsPerm[] | undefined): boolean {
    const who = this.accessor(conn);
    if (oldPerms !== undefined && (permFor(oldPerms, who) & XS_PERM_READ) !== 0) return true;
    const n = node ?? this.tree.get(name);
    if (n === undefined) return false;
    if ((permFor(n.perms, who) & XS_PERM_READ) !== 0) return true;
    const parent = this.tree.get(parentOf(name));
    return parent !== undefined && (permFor(parent.perms, who) & XS_PERM_READ) !== 0;
  }

  private fireSpecial(name: string): void {
    const node = this.tree.get(name);
    if (node !== undefined) this.fireWatches(name, true, undefined, node);
  }

  private connectionsOf(domid: number): XsConnection[] {
    return [...this.conns].filter((c) => c.domid === domid);
  }

  /**
   * domain.c domain_tree_remove: every subtree whose top node the domain owns is removed as by
   * RM (with its watch events). `/` and the special nodes are never removed: if the domain
   * owned them they pass to dom0, as xenstored's --keep-orphans would do.
   */
  private removeOwnedNodes(domid: number): void {
    const visit = (name: string): void => {
      const node = this.tree.get(name);
      if (node === undefined) return;
      if (ownerOf(node) === domid && name !== '/') {
        this.ops.removeSubtree(name);
        return;
      }
      for (const child of node.children) visit(childPath(name, child));
    };
    visit('/');
    for (const node of [...this.tree.values()]) {
      let perms = node.perms;
      if ((node.name === '/' || isSpecial(node.name)) && ownerOf(node) === domid) perms = [{ ...perms[0]!, id: PRIV_DOMID }, ...perms.slice(1)];
      if (perms.some((p, i) => i > 0 && p.id === domid)) perms = perms.filter((p, i) => i === 0 || p.id !== domid);
      // Dropping an entry for a dead domain is not a change a client made: no new generation,
      // as xenstored's lazy domain_adjust_node_perms.
      if (perms !== node.perms) this.tree.install({ ...node, perms });
    }
    for (const c of this.conns) for (const t of c.transactions.values()) t.dropPermsOf(domid);
  }
}
