import { DOMID_SELF, XENSTORE_PAYLOAD_MAX, XS_PERM_OWNER, XS_PERM_READ, XS_PERM_WRITE, type XsErrorName } from '../abi/xs-wire.js';
import type { XsConnection } from './connection.js';
import { childListLength, newNode, nodeSize, ownerOf, type XsNode } from './node.js';
import { baseName, canonicalize, childPath, homePath, parentOf } from './path.js';
import { formatPerm, parsePerm, permFor, type Accessor, type XsPerm } from './permissions.js';
import { OK_VOID, fail, ok, type XsResult } from './result.js';
import { PRIV_DOMID, isDomid, isRealDomid, type XenStore } from './store.js';
import { TouchQuotaExceeded, Transaction } from './transaction.js';
import type { NodeView } from './tree.js';
import { eventPath } from './watch.js';

/** One request's context: who asks, and the view (committed tree or transaction) it works on. */
interface Ctx {
  readonly who: Accessor;
  readonly view: NodeView;
  readonly tx: Transaction | undefined;
}

/** DIRECTORY_PART's answer: a chunk of the child list at a byte offset (xen-abi.md §1.5). */
export interface DirectoryPart {
  /** Generation of the node: the client restarts at offset 0 if it changes between chunks. */
  readonly generation: number;
  /** The names in the chunk (the first may be cut if the offset fell inside a name). */
  readonly names: readonly string[];
  /** The chunk reaches the end of the list. */
  readonly complete: boolean;
}

/** Tokens travel as bytes: one character per byte, no NUL. */
function isByteString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0xff) return false;
  }
  return true;
}
/** Wire length of a path or permission string (ASCII once validated). */
const latin1Length = (s: string): number => s.length;

/**
 * The requests of xen-abi.md §1.2 with xenstored's semantics (tools/xenstored/core.c,
 * watch.c, transaction.c, domain.c). Each takes the requesting connection; XsConnection
 * is the public face of these.
 */
export class XsOperations {
  constructor(private readonly store: XenStore) {}

  // ---- nodes ----

  read(conn: XsConnection, path: string, txId: number): XsResult<Uint8Array> {
    return this.readable(conn, path, txId, false, (node) => ok(node.value));
  }

  /** WRITE: value replaces the node's; a missing node and its missing ancestors are created. */
  write(conn: XsConnection, path: string, value: Uint8Array, txId: number): XsResult<void> {
    if (latin1Length(path) + 1 + value.length > XENSTORE_PAYLOAD_MAX) return fail('E2BIG');
    return this.writeNode(conn, path, txId, value);
  }

  /** MKDIR: like WRITE of an empty value, but an existing node is left alone (and no event). */
  mkdir(conn: XsConnection, path: string, txId: number): XsResult<void> {
    return this.writeNode(conn, path, txId, undefined);
  }

  /** RM: removes the subtree; an absent node is fine if its parent exists; `/` is EINVAL. */
  rm(conn: XsConnection, path: string, txId: number): XsResult<void> {
    return this.onPath(conn, path, txId, false, (ctx, name) => {
      const n = this.nodeFor(ctx, name, XS_PERM_WRITE);
      if (!n.ok) {
        if (n.error !== 'ENOENT') return n;
        return ctx.view.get(parentOf(name)) !== undefined ? OK_VOID : fail('ENOENT');
      }
      if (name === '/') return fail('EINVAL');
      this.removeIn(ctx, name);
      return OK_VOID;
    });
  }

  directory(conn: XsConnection, path: string, txId: number): XsResult<string[]> {
    return this.readable(conn, path, txId, false, (node) =>
      // A reply longer than the payload limit is E2BIG (core.c send_reply); the client then
      // falls back to DIRECTORY_PART.
      childListLength(node.children) > XENSTORE_PAYLOAD_MAX ? fail('E2BIG') : ok([...node.children]),
    );
  }

  /** DIRECTORY_PART, as core.c send_directory_part cuts the NUL-separated child list. */
  directoryPart(conn: XsConnection, path: string, offset: number, txId: number): XsResult<DirectoryPart> {
    return this.readable(conn, path, txId, false, (node) => {
      if (!Number.isSafeInteger(offset) || offset < 0) return fail('EINVAL');
      const generation = node.generation;
      const list = node.children.map((s) => `${s}\0`).join('');
      if (offset >= list.length) return ok({ generation, names: [], complete: true });
      const maxLength = XENSTORE_PAYLOAD_MAX - (String(generation).length + 1) - 1;
      let len = 0;
      for (;;) {
        const nameLength = list.indexOf('\0', offset + len) - (offset + len);
        if (len + nameLength >= maxLength) break;
        len += nameLength + 1;
        if (offset + len === list.length) break;
      }
      const chunk = list.slice(offset, offset + len);
      return ok({ generation, names: chunk.split('\0').slice(0, -1), complete: offset + len === list.length });
    });
  }

  getPerms(conn: XsConnection, path: string, txId: number): XsResult<XsPerm[]> {
    return this.readable(conn, path, txId, true, (node) => {
      let len = 0;
      for (const p of node.perms) len += formatPerm(p).length + 1;
      return len > XENSTORE_PAYLOAD_MAX ? fail('E2BIG') : ok([...node.perms]);
    });
  }

  /**
   * SET_PERMS (core.c do_set_perms): owner or privileged only; an unprivileged caller may not
   * change the owner (EPERM) nor set more than the permsPerNode quota (ENOSPC). An entry naming
   * a domain that does not exist is kept but ignored; a non-existent owner is ENOENT.
   */
  setPerms(conn: XsConnection, path: string, perms: readonly string[], txId: number): XsResult<void> {
    let len = latin1Length(path) + 1;
    for (const p of perms) len += latin1Length(p) + 1;
    if (len > XENSTORE_PAYLOAD_MAX) return fail('E2BIG');
    return this.inTx(conn, txId, (ctx) => {
      if (perms.length === 0) return fail('EINVAL');
      if (!ctx.who.privileged && perms.length > this.store.quotas.permsPerNode) return fail('ENOSPC');
      const parsed: XsPerm[] = [];
      for (const s of perms) {
        const p = parsePerm(s);
        if (p === undefined) return fail('EINVAL');
        parsed.push(this.store.domainExists(p.id) ? p : { ...p, ignored: true });
      }
      if (parsed[0]!.ignored) return fail('ENOENT');
      const c = canonicalize(path, conn.domid, true);
      if (c === undefined) return fail('EINVAL');
      const n = this.nodeFor(ctx, c.name, XS_PERM_WRITE | XS_PERM_OWNER);
      if (!n.ok) return n;
      if (!ctx.who.privileged && parsed[0]!.id !== ownerOf(n.value)) return fail('EPERM');
      return this.changed(ctx, c.name, this.update(ctx, { ...n.value, perms: parsed }), n.value.perms);
    });
  }

  // ---- watches ----

  /** WATCH: OK, then one event with the path as given (queued after the caller's reply). */
  watch(conn: XsConnection, path: string, token: string): XsResult<void> {
    this.store.checkOpen(conn);
    if (!isByteString(token)) return fail('EINVAL');
    if (latin1Length(path) + latin1Length(token) + 2 > XENSTORE_PAYLOAD_MAX) return fail('E2BIG');
    const c = canonicalize(path, conn.domid, true);
    if (c === undefined) return fail('EINVAL');
    if (conn.watches.some((w) => w.name === c.name && w.token === token)) return fail('EEXIST');
    // watch.c do_watch: `domain_watch(conn) > quota` answers E2BIG (not ENOSPC), and counts
    // the watches already set, so quota + 1 watches fit.
    if (!conn.privileged && this.store.watchCount(conn.domid) > this.store.quotas.watches) return fail('E2BIG');
    const w = { name: c.name, token, prefixLength: c.relative ? homePath(conn.domid).length + 1 : 0 };
    conn.watches.push(w);
    conn.queueEvent({ path: eventPath(w, c.name), token });
    return OK_VOID;
  }

  unwatch(conn: XsConnection, path: string, token: string): XsResult<void> {
    this.store.checkOpen(conn);
    const c = canonicalize(path, conn.domid, true);
    if (c === undefined) return fail('EINVAL');
    const i = conn.watches.findIndex((w) => w.name === c.name && w.token === token);
    if (i < 0) return fail('ENOENT');
    conn.watches.splice(i, 1);
    return OK_VOID;
  }

  /** RESET_WATCHES: drops the caller's watches and transactions. */
  resetWatches(conn: XsConnection): XsResult<void> {
    this.store.checkOpen(conn);
    this.store.resetConnection(conn);
    return OK_VOID;
  }

  // ---- transactions ----

  transactionStart(conn: XsConnection): XsResult<number> {
    this.store.checkOpen(conn);
    // transaction.c: like watches, the check counts the open ones, so quota + 1 fit.
    if (!conn.privileged && this.store.transactionCount(conn.domid) > this.store.quotas.transactions) return fail('ENOSPC');
    const id = conn.allocateTransactionId();
    conn.transactions.set(id, new Transaction(id, this.store.tree, conn.privileged ? Infinity : this.store.quotas.transactionNodes));
    return ok(id);
  }

  /**
   * TRANSACTION_END: commit (`T`) or abort; the id is dead afterwards either way. Commit fails
   * with EAGAIN on a conflict, ENOMEM if a request inside failed irrecoverably, ENOSPC if the
   * nodes quota would be exceeded.
   */
  transactionEnd(conn: XsConnection, txId: number, commit: boolean): XsResult<void> {
    this.store.checkOpen(conn);
    const tx = conn.transactions.get(txId);
    if (tx === undefined) return fail('ENOENT');
    conn.transactions.delete(txId);
    if (!commit) return OK_VOID;
    if (tx.failed) return fail('ENOMEM');
    if (tx.created && !conn.privileged) {
      for (const [domid, count] of tx.ownersAfterCommit()) {
        if (domid !== PRIV_DOMID && count > this.store.quotas.nodes) return fail('ENOSPC');
      }
    }
    if (tx.conflicts()) return fail('EAGAIN');
    for (const ch of tx.commit()) this.store.fireWatches(ch.name, ch.exact, ch.oldPerms);
    return OK_VOID;
  }

  // ---- domains ----

  getDomainPath(conn: XsConnection, domid: number): XsResult<string> {
    this.store.checkOpen(conn);
    return isDomid(domid) ? ok(homePath(domid)) : fail('EINVAL');
  }

  introduce(conn: XsConnection, domid: number, gfn: number, port: number): XsResult<void> {
    const e = this.privCheck(conn, domid);
    if (e !== undefined) return fail(e);
    // domain.c do_introduce: "Sanity check args": the event channel must be a port > 0.
    if (!Number.isSafeInteger(port) || port <= 0 || port > 0xffffffff) return fail('EINVAL');
    if (!Number.isSafeInteger(gfn) || gfn < 0 || !isRealDomid(domid)) return fail('EINVAL');
    this.store.introduceDomain(domid, { gfn, port });
    return OK_VOID;
  }

  release(conn: XsConnection, domid: number): XsResult<void> {
    const e = this.privCheck(conn, domid) ?? this.introducedCheck(domid);
    if (e !== undefined) return fail(e);
    this.store.releaseDomain(domid);
    return OK_VOID;
  }

  resume(conn: XsConnection, domid: number): XsResult<void> {
    const e = this.privCheck(conn, domid) ?? this.introducedCheck(domid);
    if (e !== undefined) return fail(e);
    this.store.domain(domid)!.shutdown = false;
    return OK_VOID;
  }

  isDomainIntroduced(conn: XsConnection, domid: number): XsResult<boolean> {
    const e = this.privCheck(conn, domid);
    if (e !== undefined) return fail(e);
    return ok(domid === DOMID_SELF || this.store.isIntroduced(domid));
  }

  /** SET_TARGET: `domid` (a device model's stub domain) gets owner rights on `target`'s nodes. */
  setTarget(conn: XsConnection, domid: number, target: number): XsResult<void> {
    const e = this.privCheck(conn, domid) ?? (isDomid(target) ? undefined : 'EINVAL');
    if (e !== undefined) return fail(e);
    const d = this.store.domain(domid);
    if (d === undefined || !this.store.isIntroduced(target)) return fail('ENOENT');
    d.target = target;
    return OK_VOID;
  }

  close(conn: XsConnection): void {
    this.store.closeConnection(conn);
  }

  /** Removes a subtree of the committed tree on the store's own behalf (domain release). */
  removeSubtree(name: string): void {
    this.removeIn({ who: { domid: PRIV_DOMID, privileged: true, target: undefined }, view: this.store.tree, tx: undefined }, name);
  }

  // ---- helpers ----

  /**
   * Runs a request in transaction `txId` (0: none). An unknown id is ENOENT, and the
   * transaction-nodes quota, which can strike on any node a request touches, is ENOSPC.
   */
  private inTx<T>(conn: XsConnection, txId: number, body: (ctx: Ctx) => XsResult<T>): XsResult<T> {
    this.store.checkOpen(conn);
    const tx = txId === 0 ? undefined : conn.transactions.get(txId);
    if (txId !== 0 && tx === undefined) return fail('ENOENT');
    try {
      return body({ who: this.store.accessor(conn), view: tx ?? this.store.tree, tx });
    } catch (e) {
      if (e instanceof TouchQuotaExceeded) return fail(e.error);
      throw e;
    }
  }

  /** Runs a request on `path` made canonical for the caller; an invalid path is EINVAL. */
  private onPath<T>(
    conn: XsConnection,
    path: string,
    txId: number,
    allowSpecial: boolean,
    body: (ctx: Ctx, name: string) => XsResult<T>,
  ): XsResult<T> {
    return this.inTx(conn, txId, (ctx) => {
      const c = canonicalize(path, conn.domid, allowSpecial);
      return c === undefined ? fail('EINVAL') : body(ctx, c.name);
    });
  }

  /** Runs a request on a node the caller may read. */
  private readable<T>(conn: XsConnection, path: string, txId: number, allowSpecial: boolean, body: (node: XsNode) => XsResult<T>): XsResult<T> {
    return this.onPath(conn, path, txId, allowSpecial, (ctx, name) => {
      const n = this.nodeFor(ctx, name, XS_PERM_READ);
      return n.ok ? body(n.value) : n;
    });
  }

  /**
   * WRITE (`value` given) and MKDIR (`value` undefined): a missing node is created (core.c
   * create_node); an existing one gets the value, or for MKDIR is left alone without an event.
   */
  private writeNode(conn: XsConnection, path: string, txId: number, value: Uint8Array | undefined): XsResult<void> {
    return this.onPath(conn, path, txId, false, (ctx, name) => {
      const n = this.nodeFor(ctx, name, XS_PERM_WRITE);
      if (n.ok) return value === undefined ? OK_VOID : this.changed(ctx, name, this.update(ctx, { ...n.value, value }));
      if (n.error !== 'ENOENT') return n;
      return this.changed(ctx, name, this.create(ctx, name, value ?? new Uint8Array(0)));
    });
  }

  /** After a successful change at `name`, its watch events (§1.7). */
  private changed(ctx: Ctx, name: string, r: XsResult<void>, oldPerms?: readonly XsPerm[]): XsResult<void> {
    if (r.ok) this.fire(ctx, name, false, oldPerms);
    return r;
  }

  /**
   * A node the caller needs `perm` on (core.c get_node_chk_perm). Missing, it is ENOENT only
   * if the caller has that permission on the nearest existing ancestor, else EACCES: a
   * caller learns nothing of what it may not see.
   */
  private nodeFor(ctx: Ctx, name: string, perm: number): XsResult<XsNode> {
    const node = ctx.view.get(name);
    if (node !== undefined) return (permFor(node.perms, ctx.who) & perm) === perm ? ok(node) : fail('EACCES');
    let p = name;
    do {
      p = parentOf(p);
      const ancestor = ctx.view.get(p);
      if (ancestor !== undefined) return (permFor(ancestor.perms, ctx.who) & perm) !== 0 ? fail('ENOENT') : fail('EACCES');
    } while (p !== '/');
    return fail('EACCES');
  }

  /** Writes a changed node, subject to the node-size quota for unprivileged callers. */
  private update(ctx: Ctx, node: XsNode): XsResult<void> {
    if (this.tooBig(ctx, node)) return fail('ENOSPC');
    ctx.view.put(node);
    return OK_VOID;
  }

  /**
   * core.c create_node: creates `name` and its missing ancestors. Each new node inherits its
   * parent's permissions, with the owner replaced by an unprivileged creator. All quota checks
   * happen before anything is written, so a failure leaves the store as it was.
   */
  private create(ctx: Ctx, name: string, value: Uint8Array): XsResult<void> {
    const missing = [name];
    let parent = ctx.view.get(parentOf(name));
    while (parent === undefined) {
      const above = parentOf(missing[missing.length - 1]!);
      if (above === '/') throw new Error('xenstore: the root node is missing');
      missing.push(above);
      parent = ctx.view.get(parentOf(above));
    }
    const who = ctx.who;
    if (!who.privileged && ctx.view.owned(who.domid) + missing.length > this.store.quotas.nodes) return fail('ENOSPC');
    const inherited = who.privileged ? parent.perms : [{ ...parent.perms[0]!, id: who.domid }, ...parent.perms.slice(1)];
    const made: XsNode[] = [{ ...parent, children: [...parent.children, baseName(missing[missing.length - 1]!)] }];
    for (let i = missing.length - 1; i >= 0; i--) {
      const node = newNode(missing[i]!, inherited, i === 0 ? value : undefined);
      made.push(i === 0 ? node : { ...node, children: [baseName(missing[i - 1]!)] });
    }
    if (made.some((n) => this.tooBig(ctx, n))) return fail('ENOSPC');
    for (const n of made) ctx.view.put(n);
    if (ctx.tx !== undefined) ctx.tx.created = true;
    return OK_VOID;
  }

  private tooBig(ctx: Ctx, node: XsNode): boolean {
    // 4.17 write_node_raw: `dsize >= quota_max_entry_size` is refused.
    return !ctx.who.privileged && nodeSize(node) >= this.store.quotas.nodeSize;
  }

  /**
   * core.c rm_node: deletes the subtree deepest first. Each removed node fires the watches
   * set on exactly it; the top of the subtree also fires watches on its ancestors (§1.7).
   */
  private removeIn(ctx: Ctx, top: string): void {
    const parentName = parentOf(top);
    const order: XsNode[] = [];
    const walk = (name: string): void => {
      const node = ctx.view.get(name);
      if (node === undefined) return;
      for (const child of node.children) walk(childPath(name, child));
      order.push(node);
    };
    walk(top);
    for (const node of order) {
      ctx.view.remove(node.name);
      this.fire(ctx, node.name, node.name !== top, undefined, node);
    }
    const parent = ctx.view.get(parentName);
    if (parent === undefined) throw new Error(`xenstore: parent of ${top} is missing`);
    const base = baseName(top);
    ctx.view.put({ ...parent, children: parent.children.filter((c) => c !== base) });
  }

  /** A change at `name`: its events fire now, or at commit inside a transaction. */
  private fire(ctx: Ctx, name: string, exact: boolean, oldPerms?: readonly XsPerm[], node?: XsNode): void {
    if (ctx.tx !== undefined) ctx.tx.queueEvent(name, exact);
    else this.store.fireWatches(name, exact, oldPerms, node);
  }

  /** Privileged-only requests: EACCES for others (core.c XS_FLAG_PRIV); then the domid. */
  private privCheck(conn: XsConnection, domid: number): XsErrorName | undefined {
    this.store.checkOpen(conn);
    if (!conn.privileged) return 'EACCES';
    return isDomid(domid) ? undefined : 'EINVAL';
  }

  /** RELEASE/RESUME: dom0 is EINVAL, a domain never introduced ENOENT (domain.c onearg_domain). */
  private introducedCheck(domid: number): XsErrorName | undefined {
    if (domid === PRIV_DOMID) return 'EINVAL';
    return this.store.isIntroduced(domid) ? undefined : 'ENOENT';
  }
}
