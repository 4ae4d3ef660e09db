import { PRIO_IRQ, type SimEvent } from '../sim/index.js';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTST_bad_dev_addr,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_device_space,
  GNTST_no_space,
  GNTST_okay,
  GNTST_permission_denied,
  PAGE_SIZE,
} from './abi/index.js';
import { GNTTAB_UNMAP_BATCH_SIZE } from './grant-table.js';
import type { ActiveGrant, MaptrackEntry, PinKind } from './grant-table.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import { eptSyncDomain } from './ept-sync.js';
import { TP_COPY, TP_MAP, TP_UNMAP } from './trace-points.js';
import { MAX_GFN } from './memory.js';
import type { Vcpu } from './vcpu.js';

/** One side of a copy (struct gnttab_copy_ptr): `u` is a grant ref or, for DOMID_SELF, the caller's own gmfn. */
export interface GnttabCopyPtr {
  u: number;
  domid: number;
  offset: number;
}

/** struct gnttab_copy; `status` is written back. */
export interface GnttabCopy {
  source: GnttabCopyPtr;
  dest: GnttabCopyPtr;
  len: number;
  flags: number;
  status?: number;
}

/** struct gnttab_map_grant_ref; status, handle and dev_bus_addr are written back. */
export interface GnttabMapGrantRef {
  host_addr: number;
  flags: number;
  ref: number;
  dom: number;
  status?: number;
  handle?: number;
  dev_bus_addr?: number;
}

/** struct gnttab_unmap_grant_ref. */
export interface GnttabUnmapGrantRef {
  host_addr: number;
  dev_bus_addr: number;
  handle: number;
  status?: number;
}

/** struct gnttab_setup_table; frame_list receives the frames' guest frame numbers (-1 = not in the physmap, Xen's INVALID_GFN). */
export interface GnttabSetupTable {
  dom: number;
  nr_frames: number;
  status?: number;
  frame_list?: number[];
}

/** struct gnttab_query_size. */
export interface GnttabQuerySize {
  dom: number;
  nr_frames?: number;
  max_nr_frames?: number;
  status?: number;
}

/**
 * The model has no machine frames; a device mapping's bus address is built from the granter
 * and its gfn so that it is unique and stable: (domid · 2^26 + gfn) · 4096, exact below 2^53.
 */
export function devBusAddr(domid: number, gfn: number): number {
  return (domid * 2 ** 26 + gfn) * PAGE_SIZE;
}

/** A page a copy has claimed (gnttab_copy_buf): the bytes and how to let go of the pin. */
interface CopyBuf {
  page: Uint8Array;
  release: (() => void) | null;
}

/** A side a batch holds claimed (struct gnttab_copy_buf's ptr): which domain and ref/gmfn. */
interface HeldBuf {
  domid: number;
  gref: boolean;
  u: number;
  buf: CopyBuf;
}

/**
 * Xen's grant-table operations (xen/common/grant_table.c, Xen ≥ 4.6), each check in Xen's
 * order with Xen's GNTST_* status (shared/reference/xen-abi.md §3.3-3.5), charging their
 * costs on the calling vCPU.
 */
export class GrantTableOps {
  constructor(private readonly hv: Hypervisor) {}

  // ---- GNTTABOP_copy ------------------------------------------------------------------------

  /**
   * Batched copies. Per op: lock both domains (a frame-addressed side must be DOMID_SELF),
   * claim source then destination (pinning grants: GTF_reading, and GTF_writing on the
   * destination), check offset + len within the page, copy. Grants stay pinned while Xen
   * copies (the op's time on the vCPU).
   *
   * Release-gated (profile `xen.version`): up to 4.5 every op checks offset + len first and
   * acquires and releases both sides itself; from 4.6 (d28f42f270, gnttab_copy_buf_valid) a
   * side stays claimed while consecutive ops name the same domain and ref/gmfn, and is released
   * when the target changes, on an error, or at the batch's end. Each claim costs
   * `xen.gnttab.copyClaim`, each op `xen.gnttab.copyOp`.
   */
  *copy(v: Vcpu, ops: GnttabCopy[]): Generator<SimEvent<unknown>, number, unknown> {
    const ld = v.domain;
    const c = this.hv.costs;
    const batched = this.hv.release.batchedGnttabCopy;
    let src: HeldBuf | null = null;
    let dst: HeldBuf | null = null;
    const releaseSrc = (): void => {
      src?.buf.release?.();
      src = null;
    };
    const releaseDst = (): void => {
      dst?.buf.release?.();
      dst = null;
    };
    const releaseAll = (): void => {
      releaseSrc();
      releaseDst();
    };
    // Whatever is claimed is handed back if the caller's domain is destroyed meanwhile.
    ld.inflightPins.add(releaseAll);
    try {
      for (const op of ops) {
        const len = op.len & 0xffff;
        const srcGref = (op.flags & GNTCOPY_source_gref) !== 0;
        const dstGref = (op.flags & GNTCOPY_dest_gref) !== 0;
        let claims = 0;
        let status: number = GNTST_okay;
        if (!batched) {
          // Xen 4.5 __gnttab_copy: offset + len, then both sides' addressing, then the domains.
          const sd = this.checkCopy45(ld, op, len, srcGref, dstGref);
          if (typeof sd === 'number') status = sd;
          else {
            const s = this.claimBuf(ld, sd[0], op.source.u, srcGref, true);
            if (typeof s === 'number') status = s;
            else {
              claims++;
              src = { domid: op.source.domid & 0xffff, gref: srcGref, u: op.source.u, buf: s };
              const d = this.claimBuf(ld, sd[1], op.dest.u, dstGref, false);
              if (typeof d === 'number') status = d;
              else {
                claims++;
                dst = { domid: op.dest.domid & 0xffff, gref: dstGref, u: op.dest.u, buf: d };
              }
            }
          }
        } else {
          // gnttab_copy_one: other domains → release both and lock again.
          if (src === null || dst === null || src.domid !== (op.source.domid & 0xffff) || dst.domid !== (op.dest.domid & 0xffff)) releaseAll();
          const sd = this.lockDomain(ld, op.source.domid & 0xffff, srcGref);
          const dd = typeof sd === 'number' ? sd : this.lockDomain(ld, op.dest.domid & 0xffff, dstGref);
          if (typeof sd === 'number') status = sd;
          else if (typeof dd === 'number') status = dd;
          else {
            if (src === null || src.u !== op.source.u || src.gref !== srcGref) {
              releaseSrc();
              const s = this.claimBuf(ld, sd, op.source.u, srcGref, true);
              if (typeof s === 'number') status = s;
              else {
                claims++;
                src = { domid: op.source.domid & 0xffff, gref: srcGref, u: op.source.u, buf: s };
              }
            }
            if (status === GNTST_okay && (dst === null || dst.u !== op.dest.u || dst.gref !== dstGref)) {
              releaseDst();
              const d = this.claimBuf(ld, dd, op.dest.u, dstGref, false);
              if (typeof d === 'number') status = d;
              else {
                claims++;
                dst = { domid: op.dest.domid & 0xffff, gref: dstGref, u: op.dest.u, buf: d };
              }
            }
            // gnttab_copy_buf: checked once both sides are claimed (v1 grants cover the whole page).
            if (status === GNTST_okay && ((op.source.offset & 0xffff) + len > PAGE_SIZE || (op.dest.offset & 0xffff) + len > PAGE_SIZE))
              status = GNTST_bad_copy_arg;
          }
        }
        const claimTime = claims * c.copyClaim;
        if (status !== GNTST_okay) {
          releaseAll();
          op.status = status;
          ld.counters.grantFailures++;
          ld.counters.grantCopyNs += c.copyOp + claimTime;
          yield v.exec(c.copyOp + claimTime, 'xen', PRIO_IRQ);
        } else {
          // Pinned while Xen copies; a domain destroyed meanwhile gets its pins back (destroy).
          const from = src!.buf.page;
          const to = dst!.buf.page;
          const ns = c.copyOp + claimTime + Math.round(len * c.copyPerByte);
          ld.counters.grantCopyNs += ns;
          yield v.exec(ns, 'xen', PRIO_IRQ);
          const so = op.source.offset & 0xffff;
          const dof = op.dest.offset & 0xffff;
          to.set(from.subarray(so, so + len), dof);
          op.status = GNTST_okay;
          ld.counters.grantCopies++;
          ld.counters.grantCopyBytes += len;
          if (!batched) releaseAll();
        }
        const t = this.hv.env.trace;
        if (t.enabled(TP_COPY)) {
          t.emit(TP_COPY, {
            domid: ld.domid,
            srcDomid: this.sideDomid(ld, op.source.domid),
            dstDomid: this.sideDomid(ld, op.dest.domid),
            len,
            status: op.status,
          });
        }
      }
    } finally {
      releaseAll();
      ld.inflightPins.delete(releaseAll);
    }
    return 0;
  }

  private sideDomid(ld: Domain, domid: number): number {
    const d = domid & 0xffff;
    return d === DOMID_SELF ? ld.domid : d;
  }

  /** Xen 4.5 __gnttab_copy's checks before any claim: offset + len, addressing, both domains. */
  private checkCopy45(ld: Domain, op: GnttabCopy, len: number, srcGref: boolean, dstGref: boolean): [Domain, Domain] | number {
    if ((op.source.offset & 0xffff) + len > PAGE_SIZE || (op.dest.offset & 0xffff) + len > PAGE_SIZE) return GNTST_bad_copy_arg;
    const sdom = op.source.domid & 0xffff;
    const ddom = op.dest.domid & 0xffff;
    if ((sdom !== DOMID_SELF && !srcGref) || (ddom !== DOMID_SELF && !dstGref)) return GNTST_permission_denied;
    const sd = this.lockDomain(ld, sdom, true);
    if (typeof sd === 'number') return sd;
    const dd = this.lockDomain(ld, ddom, true);
    if (typeof dd === 'number') return dd;
    return [sd, dd];
  }

  /** gnttab_copy_lock_domain: "Only DOMID_SELF may reference via frame." */
  private lockDomain(ld: Domain, domid: number, isGref: boolean): Domain | number {
    if (domid !== DOMID_SELF && !isGref) return GNTST_permission_denied;
    const d = domid === DOMID_SELF ? ld : this.hv.lookupDomain(domid);
    return d ?? GNTST_bad_domain;
  }

  /** gnttab_copy_claim_buf: a grant of `d` (pinned for the caller) or the caller's own frame. */
  private claimBuf(ld: Domain, d: Domain, u: number, isGref: boolean, readonly: boolean): CopyBuf | number {
    // A dying domain has relinquished its pages: get_page fails ("Could not get src/dst frame").
    if (d.dying) return isGref ? GNTST_general_error : GNTST_bad_page;
    if (isGref) {
      const ref = u >>> 0;
      const r = d.grants.acquire(ref, ld.domid, readonly, 'host', false, d.memory);
      if (r.status !== GNTST_okay) return r.status;
      return { page: r.act!.page, release: () => d.grants.release(ref, readonly, 'host') };
    }
    const page = Number.isSafeInteger(u) && u >= 0 ? d.memory.ramPage(u) : null;
    if (page === null) return GNTST_bad_page;
    return { page, release: null };
  }

  // ---- GNTTABOP_map_grant_ref ---------------------------------------------------------------

  *map(v: Vcpu, ops: GnttabMapGrantRef[]): Generator<SimEvent<unknown>, number, unknown> {
    const ld = v.domain;
    for (const op of ops) {
      yield v.exec(this.hv.costs.mapOp, 'xen', PRIO_IRQ);
      this.mapOne(ld, op);
      if (op.status === GNTST_okay) ld.counters.grantMaps++;
      else ld.counters.grantFailures++;
      const t = this.hv.env.trace;
      if (t.enabled(TP_MAP)) {
        t.emit(TP_MAP, {
          domid: ld.domid,
          granter: op.dom & 0xffff,
          ref: op.ref >>> 0,
          handle: op.handle ?? -1,
          readonly: (op.flags & GNTMAP_readonly) !== 0,
          status: op.status!,
        });
      }
    }
    return 0;
  }

  /** map_grant_ref. */
  private mapOne(ld: Domain, op: GnttabMapGrantRef): void {
    const flags = op.flags >>> 0;
    op.status = GNTST_okay;
    if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) {
      op.status = GNTST_bad_gntref;
      return;
    }
    // "No device mapping in HVM domain": HVM callers may only host-map.
    if (ld.kind === 'hvm' && (flags & (GNTMAP_device_map | GNTMAP_application_map | GNTMAP_contains_pte)) !== 0) {
      op.status = GNTST_general_error;
      return;
    }
    const rd = this.hv.lookupDomain(op.dom & 0xffff);
    if (rd === undefined) {
      op.status = GNTST_bad_domain;
      return;
    }
    // Found while dying, but its frames cannot be pinned any more ("Could not pin grant frame").
    if (rd.dying) {
      op.status = GNTST_general_error;
      return;
    }
    const ref = op.ref >>> 0;
    const readonly = (flags & GNTMAP_readonly) !== 0;
    const gfn = Math.floor(op.host_addr / PAGE_SIZE);
    const entry: MaptrackEntry = { granter: rd, ref, flags, gfn, page: new Uint8Array(0) };
    const handle = ld.maptrack.alloc(entry);
    if (handle < 0) {
      // "Failed to obtain maptrack handle": GNTST_no_device_space up to Xen 4.15 (5c10b96795).
      op.status = this.hv.release.modernGnttabStatuses ? GNTST_no_space : GNTST_no_device_space;
      return;
    }
    const kinds: PinKind[] = [];
    if ((flags & GNTMAP_device_map) !== 0) kinds.push('dev');
    if ((flags & GNTMAP_host_map) !== 0) kinds.push('host');
    let act: ActiveGrant | undefined;
    for (const k of kinds) {
      const r = rd.grants.acquire(ref, ld.domid, readonly, k, true, rd.memory);
      if (r.status !== GNTST_okay) {
        for (const done of kinds.slice(0, kinds.indexOf(k))) rd.grants.release(ref, readonly, done);
        ld.maptrack.put(handle);
        op.status = r.status;
        return;
      }
      act = r.act;
    }
    entry.page = act!.page;
    if ((flags & GNTMAP_host_map) !== 0) {
      // create_grant_host_mapping: the granter's page appears at host_addr's frame of the mapper.
      const there = Number.isSafeInteger(gfn) && gfn >= 0 && gfn < MAX_GFN ? ld.memory.overlayAt(gfn) : null;
      if (there !== undefined) {
        for (const k of kinds) rd.grants.release(ref, readonly, k);
        ld.maptrack.put(handle);
        op.status = GNTST_general_error;
        // create_grant_p2m_mapping → guest_physmap_add_entry over a grant entry: domain_crash.
        if (there !== null && there.type !== 'xen_page' && ld.isHvm && this.hv.release.physmapOverGrantCrashes) {
          this.hv.crashDomain(ld, `grant map over gfn ${gfn}, which already holds a grant mapping (guest_physmap_add_entry)`);
        }
        return;
      }
      ld.memory.setOverlay(gfn, { type: readonly ? 'grant_map_ro' : 'grant_map_rw', page: act!.page });
    }
    rd.pageRefs++;
    op.handle = handle;
    op.dev_bus_addr = devBusAddr(rd.domid, act!.gfn);
  }

  // ---- GNTTABOP_unmap_grant_ref -------------------------------------------------------------

  /**
   * Unmaps in batches of 32 as Xen does: each op removes its mappings (unmap_common), the
   * batch is flushed, then the pins are dropped (unmap_common_complete) — so the granter can
   * end its grant only once no TLB can still reach the page. The invalidation is charged per
   * op: for an HVM caller each p2m removal syncs the EPT at once (replace_grant_p2m_mapping →
   * ept_sync_domain: an INVEPT here and a synchronous IPI to each other pCPU holding one of
   * its vCPUs, ept-sync.ts; gnttab_flush_tlb itself is a no-op for paging_mode_external
   * domains); for a PV caller the batch's flush_tlb_mask is charged as its per-page share,
   * which is how the profile's figure was derived.
   */
  *unmap(v: Vcpu, ops: GnttabUnmapGrantRef[]): Generator<SimEvent<unknown>, number, unknown> {
    const ld = v.domain;
    const c = this.hv.costs;
    for (let i = 0; i < ops.length; i += GNTTAB_UNMAP_BATCH_SIZE) {
      const batch = ops.slice(i, i + GNTTAB_UNMAP_BATCH_SIZE);
      const done: (() => void)[] = [];
      const completeAll = (): void => {
        for (const f of done) f();
        done.length = 0;
      };
      // Mappings already removed keep their pins until the flush; a domain destroyed meanwhile gets them released.
      ld.inflightPins.add(completeAll);
      for (const op of batch) {
        yield v.exec(c.unmapOp, 'xen', PRIO_IRQ);
        const r = this.unmapCommon(ld, op);
        if (r !== null) {
          done.push(r.complete);
          if (r.p2mRemoved && ld.isHvm) yield* eptSyncDomain(this.hv, v);
          else yield v.exec(c.tlbFlush, 'xen', PRIO_IRQ);
        }
        if (op.status === GNTST_okay) ld.counters.grantUnmaps++;
        else ld.counters.grantFailures++;
        const t = this.hv.env.trace;
        if (t.enabled(TP_UNMAP)) t.emit(TP_UNMAP, { domid: ld.domid, handle: op.handle, status: op.status! });
      }
      ld.inflightPins.delete(completeAll);
      completeAll();
    }
    return 0;
  }

  /**
   * unmap_common; returns the completion (pin release) to run after the TLB flush, and whether
   * a host mapping left the mapper's p2m (HVM) or page tables.
   */
  private unmapCommon(ld: Domain, op: GnttabUnmapGrantRef): { complete: () => void; p2mRemoved: boolean } | null {
    const handle = op.handle >>> 0;
    const e = ld.maptrack.get(handle);
    if (e === null) {
      op.status = GNTST_bad_handle;
      return null;
    }
    const rd = e.granter;
    const act = rd.grants.pinned(e.ref);
    if (act === undefined) throw new Error(`d${ld.domid} handle ${handle}: grant ${e.ref} of d${rd.domid} is not pinned (model bug)`);
    // dev_bus_addr, if given, must be the grant's bus address, whatever the mapping: up to 4.9
    // only its frame is looked at (and a value under one page is "not given"), from 4.10
    // (8fdfcb2b6b) all of it. 4.16+ (c5bf1295b0) checks device mappings only, as bad_dev_addr.
    const rel = this.hv.release;
    const expect = devBusAddr(rd.domid, act.gfn);
    const busGiven = rel.unmapChecksFullBusAddr ? op.dev_bus_addr !== 0 : Math.floor(op.dev_bus_addr / PAGE_SIZE) !== 0;
    if (rel.modernGnttabStatuses) {
      if (busGiven && (e.flags & GNTMAP_device_map) !== 0 && op.dev_bus_addr !== expect) {
        op.status = GNTST_bad_dev_addr; // "Bus address doesn't match gntref"
        return null;
      }
    } else if (busGiven) {
      const match = rel.unmapChecksFullBusAddr ? op.dev_bus_addr === expect : Math.floor(op.dev_bus_addr / PAGE_SIZE) === expect / PAGE_SIZE;
      if (!match) {
        op.status = GNTST_general_error; // "Bad frame number doesn't match gntref" / "Bus address doesn't match gntref"
        return null;
      }
    }
    const readonly = (e.flags & GNTMAP_readonly) !== 0;
    const released: PinKind[] = [];
    if (op.host_addr !== 0 && (e.flags & GNTMAP_host_map) !== 0) {
      // replace_grant_p2m_mapping: host_addr must be where this grant is mapped.
      const gfn = Math.floor(op.host_addr / PAGE_SIZE);
      const o = ld.memory.overlayAt(gfn);
      if (o === undefined || o.page !== e.page || o.type === 'xen_page') {
        op.status = GNTST_general_error;
        return null;
      }
      ld.memory.clearOverlay(gfn, e.page);
      e.flags &= ~GNTMAP_host_map;
      released.push('host');
    }
    if (busGiven && (e.flags & GNTMAP_device_map) !== 0) {
      e.flags &= ~GNTMAP_device_map;
      released.push('dev');
    }
    const last = (e.flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0;
    if (last) ld.maptrack.put(handle);
    op.status = GNTST_okay;
    const complete = (): void => {
      for (const k of released) rd.grants.release(e.ref, readonly, k);
      if (last) this.hv.dropPageRef(rd);
    };
    return { complete, p2mRemoved: released.includes('host') };
  }

  /** gnttab_release_mappings: a dying domain lets go of every grant it has mapped. */
  releaseMappings(d: Domain): void {
    for (const h of d.maptrack.inUse()) {
      const e = d.maptrack.get(h)!;
      const readonly = (e.flags & GNTMAP_readonly) !== 0;
      if ((e.flags & GNTMAP_host_map) !== 0) {
        d.memory.clearOverlay(e.gfn, e.page);
        e.granter.grants.release(e.ref, readonly, 'host');
      }
      if ((e.flags & GNTMAP_device_map) !== 0) e.granter.grants.release(e.ref, readonly, 'dev');
      d.maptrack.put(h);
      this.hv.dropPageRef(e.granter);
    }
  }

  // ---- setup_table, query_size --------------------------------------------------------------

  /** GNTTABOP_setup_table: grow the (caller's, or for priv another domain's) table. */
  setupTable(caller: Domain, op: GnttabSetupTable): void {
    const d = this.target(caller, op.dom & 0xffff, op);
    if (d === undefined) return;
    const nr = op.nr_frames >>> 0;
    if (nr > d.grants.maxFrames || !d.grants.grow(nr)) {
      op.status = GNTST_general_error;
      return;
    }
    op.frame_list = Array.from({ length: nr }, (_, i) => d.grantFrameGfn[i] ?? -1);
    op.status = GNTST_okay;
  }

  /** GNTTABOP_query_size. */
  querySize(caller: Domain, op: GnttabQuerySize): void {
    const d = this.target(caller, op.dom & 0xffff, op);
    if (d === undefined) return;
    op.nr_frames = d.grants.nrFrames;
    op.max_nr_frames = d.grants.maxFrames;
    op.status = GNTST_okay;
  }

  /** rcu_lock_domain_by_any_id + XSM_TARGET: self, or any domain for the privileged. */
  private target(caller: Domain, dom: number, op: { status?: number }): Domain | undefined {
    const d = dom === DOMID_SELF ? caller : this.hv.domain(dom);
    if (d === undefined) {
      op.status = GNTST_bad_domain;
      return undefined;
    }
    if (d !== caller && !caller.privileged) {
      op.status = GNTST_permission_denied;
      return undefined;
    }
    return d;
  }
}
