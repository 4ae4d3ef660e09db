import type { SimEvent, Time } from '../../sim/index.js';
import {
  __HYPERVISOR_grant_table_op,
  EINVAL,
  ENOENT,
  GNTMAP_host_map,
  GNTST_bad_page,
  GNTST_bad_virt_addr,
  GNTST_eagain,
  GNTST_okay,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  PAGE_SIZE,
} from '../abi/index.js';
import type { GnttabCopy, GnttabMapGrantRef, GnttabUnmapGrantRef } from '../gnttab-op.js';
import { concatPages, guestFramePage, type RingPage } from '../ring.js';
import type { Vcpu } from '../vcpu.js';
import { xenbusDevError, xenbusDevFatal, type XenbusDevice } from './xenbus-device.js';
import type { XenGuest } from './xen-guest.js';

/**
 * Grant helpers of a Linux guest kernel (drivers/xen/grant-table.c, drivers/xen/xenbus/
 * xenbus_client.c), on the guest's hypercall path: batched copy and map with the retry of
 * GNTST_eagain, and the mapping of a peer's ring pages.
 */

/** XENBUS_MAX_RING_GRANTS (include/xen/xenbus.h, 4 KiB pages): most grants one ring mapping takes. */
export const XENBUS_MAX_RING_GRANTS = 16;
/** gnttab_retry_eagain_gop's MAX_DELAY: it gives up (GNTST_bad_page) once its sleep reaches this many steps. */
const EAGAIN_MAX_DELAY = 256;

/**
 * gnttab_retry_eagain_gop: re-issues one op at once, then again after each GNTST_eagain
 * answer (a paged-out frame) once it has slept `delay++` steps of `step` (msleep(delay++),
 * from 1 ms); when the sleep would reach MAX_DELAY the op fails with GNTST_bad_page, as
 * Linux sets it.
 */
function* retryEagain<T extends { status?: number }>(
  xg: XenGuest,
  op: T,
  issue: (op: T) => Generator<SimEvent<unknown>, number, unknown>,
  step: Time,
): Generator<SimEvent<unknown>, void, unknown> {
  let delay = 1;
  do {
    const rc = yield* issue(op);
    if (rc !== 0) throw new Error(`d${xg.domid}: grant_table_op returned ${rc} on a retry (BUG_ON in gnttab_retry_eagain_gop)`);
    if (op.status === GNTST_eagain) yield xg.xen.env.timeout(delay++ * step);
  } while (op.status === GNTST_eagain && delay < EAGAIN_MAX_DELAY);
  if (delay >= EAGAIN_MAX_DELAY) op.status = GNTST_bad_page;
}

/**
 * gnttab_batch_copy: one GNTTABOP_copy hypercall for all `ops` (each gets its status), then
 * each op that came back GNTST_eagain is retried alone (gnttab_retry_eagain_gop) with
 * `eagainStep` (profile `guest.gnttab.eagainRetryStep`) per sleep step. Linux BUG()s on a
 * non-zero hypercall return (unreadable arguments); the model's guest kernel throws.
 */
export function* gnttabBatchCopy(xg: XenGuest, v: Vcpu, ops: GnttabCopy[], eagainStep: Time): Generator<SimEvent<unknown>, void, unknown> {
  const issue = (batch: GnttabCopy[]): Generator<SimEvent<unknown>, number, unknown> =>
    xg.xen.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_copy, ops: batch });
  const rc = yield* issue(ops);
  if (rc !== 0) throw new Error(`d${xg.domid}: GNTTABOP_copy of ${ops.length} ops returned ${rc} (BUG in gnttab_batch_copy)`);
  for (const op of ops) if (op.status === GNTST_eagain) yield* retryEagain(xg, op, (o) => issue([o]), eagainStep);
}

/** gnttab_batch_map: one GNTTABOP_map_grant_ref hypercall for all `ops`, eagain retried per op as gnttabBatchCopy. */
export function* gnttabBatchMap(xg: XenGuest, v: Vcpu, ops: GnttabMapGrantRef[], eagainStep: Time): Generator<SimEvent<unknown>, void, unknown> {
  const issue = (batch: GnttabMapGrantRef[]): Generator<SimEvent<unknown>, number, unknown> =>
    xg.xen.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: batch });
  const rc = yield* issue(ops);
  if (rc !== 0) throw new Error(`d${xg.domid}: GNTTABOP_map_grant_ref of ${ops.length} ops returned ${rc} (BUG in gnttab_batch_map)`);
  for (const op of ops) if (op.status === GNTST_eagain) yield* retryEagain(xg, op, (o) => issue([o]), eagainStep);
}

/** A peer's ring pages mapped into this guest by mapRingValloc: the bytes for ring.ts, and what unmapping needs. */
export interface MappedRing {
  /** The mapped pages as one contiguous range (vmap), for FrontRing/BackRing. */
  readonly page: RingPage;
  /** Each page alone, in grant order. */
  readonly pages: readonly RingPage[];
  /** Where each page appears in this guest's physical address space (its unpopulated frames). */
  readonly gfns: readonly number[];
  readonly handles: readonly number[];
  readonly otherendId: number;
}

/**
 * xenbus_map_ring_valloc (the auto-translated path, xenbus_map_ring_hvm: the model gives PV
 * guests a physmap too, so both map the same way): takes unpopulated frames, maps the
 * peer's `refs` there with GNTMAP_host_map in one batch, and returns the pages. If a map
 * fails, it reports xenbus_dev_fatal ("mapping in shared page <ref> from domain <id>",
 * with that op's GNTST status as the error), unmaps what did map, gives the frames back and
 * returns -ENOENT; -EINVAL for more than XENBUS_MAX_RING_GRANTS refs.
 */
export function* xenbusMapRingValloc(
  dev: XenbusDevice,
  xg: XenGuest,
  v: Vcpu,
  refs: readonly number[],
  eagainStep: Time,
): Generator<SimEvent<unknown>, { rc: number; ring?: MappedRing }, unknown> {
  if (refs.length === 0 || refs.length > XENBUS_MAX_RING_GRANTS) return { rc: -EINVAL };
  const gfns = refs.map(() => xg.frames.allocUnpopulated());
  const ops: GnttabMapGrantRef[] = refs.map((ref, i) => ({ host_addr: gfns[i]! * PAGE_SIZE, flags: GNTMAP_host_map, ref, dom: dev.otherendId }));
  yield* gnttabBatchMap(xg, v, ops, eagainStep);
  const bad = ops.findIndex((op) => op.status !== GNTST_okay);
  if (bad >= 0) {
    yield* xenbusDevFatal(dev, ops[bad]!.status!, `mapping in shared page ${refs[bad]} from domain ${dev.otherendId}`);
    const mapped = ops.filter((op) => op.status === GNTST_okay);
    let leaked = false;
    if (mapped.length > 0) {
      const unmap: GnttabUnmapGrantRef[] = mapped.map((op) => ({ host_addr: op.host_addr, dev_bus_addr: 0, handle: op.handle! }));
      const rc = yield* xg.xen.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops: unmap });
      if (rc !== 0) throw new Error(`d${xg.domid}: GNTTABOP_unmap_grant_ref returned ${rc} (BUG_ON in __xenbus_map_ring)`);
      leaked = unmap.some((u) => u.status !== GNTST_okay);
    }
    // Linux leaks the frames if an unmap failed, rather than reuse a frame that may still be mapped.
    if (!leaked) for (const g of gfns) xg.frames.releaseUnpopulated(g);
    return { rc: -ENOENT };
  }
  const pages = gfns.map((g) => guestFramePage(xg.mem, g));
  return { rc: 0, ring: { page: concatPages(pages), pages, gfns, handles: ops.map((op) => op.handle!), otherendId: dev.otherendId } };
}

/**
 * xenbus_unmap_ring_vfree (xenbus_unmap_ring_hvm): unmaps every page of `ring` in one
 * GNTTABOP_unmap_grant_ref and frees the frames; 0 (GNTST_okay) or the first failing op's
 * GNTST status, reported with xenbus_dev_error (the frames are then leaked, as Linux does).
 * GNTST_bad_virt_addr for a ring this guest has already unmapped.
 */
export function* xenbusUnmapRingVfree(dev: XenbusDevice, xg: XenGuest, v: Vcpu, ring: MappedRing): Generator<SimEvent<unknown>, number, unknown> {
  if (unmappedRings.has(ring)) {
    yield* xenbusDevError(dev, -ENOENT, `can't find mapped virtual address ${ring.gfns[0]! * PAGE_SIZE}`);
    return GNTST_bad_virt_addr;
  }
  unmappedRings.add(ring);
  const ops: GnttabUnmapGrantRef[] = ring.handles.map((handle, i) => ({ host_addr: ring.gfns[i]! * PAGE_SIZE, dev_bus_addr: 0, handle }));
  const rc = yield* xg.xen.hypercall(v, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops });
  if (rc !== 0) throw new Error(`d${xg.domid}: GNTTABOP_unmap_grant_ref returned ${rc} (BUG_ON in xenbus_unmap_ring)`);
  const bad = ops.find((op) => op.status !== GNTST_okay);
  if (bad !== undefined) {
    yield* xenbusDevError(dev, bad.status!, `unmapping page at handle ${bad.handle} error ${bad.status}`);
    return bad.status!;
  }
  for (const g of ring.gfns) xg.frames.releaseUnpopulated(g);
  return GNTST_okay;
}

/** Rings already given back (Linux finds a mapping by its address in xenbus_valloc_pages; a second unmap finds nothing). */
const unmappedRings = new WeakSet<MappedRing>();
