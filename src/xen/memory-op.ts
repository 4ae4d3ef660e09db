import { DOMID_SELF, EBUSY, EINVAL, EOPNOTSUPP, EPERM, ESRCH, XENMAPSPACE_grant_table, XENMAPSPACE_shared_info } from './abi/index.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import { MAX_GFN } from './memory.js';

/** XENMAPSPACE_gnttab_status: the v2 status frames (not in a v1 model). */
const XENMAPSPACE_gnttab_status = 0x80000000;

/** struct xen_add_to_physmap. */
export interface XenAddToPhysmap {
  domid: number;
  space: number;
  idx: number;
  gpfn: number;
}

/**
 * A privileged domain's mapping of another domain's RAM frames (privcmd / xenforeignmemory,
 * as qemu maps a guest's descriptor rings and buffers). It holds the pages until unmapped,
 * even if the guest is destroyed meanwhile (which keeps that domain a zombie).
 */
export class ForeignMapping {
  private live = true;

  constructor(
    readonly target: Domain,
    readonly gfns: readonly number[],
    private readonly pages: readonly Uint8Array[],
    private readonly onUnmap: () => void,
  ) {}

  /** The page mapped for `gfns[i]` (the mapper's pointer to it). */
  page(i: number): Uint8Array {
    if (!this.live) throw new Error(`foreign mapping of d${this.target.domid} used after unmap (model bug)`);
    const p = this.pages[i];
    if (p === undefined) throw new RangeError(`foreign mapping has ${this.pages.length} frames, not ${i + 1}`);
    return p;
  }

  read(i: number, offset: number, len: number): Uint8Array {
    return this.page(i).slice(offset, offset + len);
  }

  write(i: number, offset: number, data: Uint8Array): void {
    this.page(i).set(data, offset);
  }

  unmap(): void {
    if (!this.live) return;
    this.live = false;
    this.onUnmap();
  }
}

/** memory_op sub-ops the model needs, and the privileged foreign mapping. */
export class MemoryOps {
  constructor(private readonly hv: Hypervisor) {}

  /**
   * XENMEM_add_to_physmap for the shared-info page (idx 0) and grant-table frames (growing
   * the table to idx + 1): the Xen page appears at `gpfn` of the domain and leaves its
   * previous place. Self or privileged only. The model gives PV guests a physmap too, so
   * they use the same call (real PV guests get these frames as MFNs).
   */
  addToPhysmap(caller: Domain, a: XenAddToPhysmap): number {
    const dom = a.domid & 0xffff;
    const d = dom === DOMID_SELF ? caller : this.hv.domain(dom);
    if (d === undefined) return -ESRCH;
    if (d !== caller && !caller.privileged) return -EPERM;
    const gpfn = a.gpfn;
    if (!Number.isSafeInteger(gpfn) || gpfn < 0 || gpfn >= MAX_GFN) return -EINVAL;
    const idx = a.idx >>> 0;
    let page: Uint8Array;
    let previous: number | null | undefined;
    switch (a.space) {
      case XENMAPSPACE_shared_info:
        if (idx !== 0) return -EINVAL;
        page = d.sharedInfo.page;
        previous = d.sharedInfoGfn;
        break;
      case XENMAPSPACE_grant_table:
        if ((idx & XENMAPSPACE_gnttab_status) !== 0) return -EINVAL;
        if (idx >= d.grants.nrFrames && !d.grants.grow(idx + 1)) return -EINVAL;
        page = d.grants.frames[idx]!;
        previous = d.grantFrameGfn[idx];
        break;
      default:
        return -EOPNOTSUPP; // other spaces are not modelled
    }
    const there = d.memory.overlayAt(gpfn);
    if (there !== undefined && there.type !== 'xen_page') {
      // guest_physmap_add_entry over a grant entry of an HVM p2m: "Really shouldn't be unmapping
      // grant maps this way" — domain_crash(d), -EINVAL (4.0+, b37d30c8fc). Otherwise (a PV
      // guest's model physmap, Xen 3.2) the model refuses, as Xen would leave its maptrack stale.
      if (d.isHvm && this.hv.release.physmapOverGrantCrashes) {
        this.hv.crashDomain(d, `XENMEM_add_to_physmap over gfn ${gpfn}, which holds a grant mapping (guest_physmap_add_entry)`);
        return -EINVAL;
      }
      return -EBUSY;
    }
    if (previous !== null && previous !== undefined && previous !== gpfn) d.memory.clearOverlay(previous, page);
    d.memory.setOverlay(gpfn, { type: 'xen_page', page });
    if (a.space === XENMAPSPACE_shared_info) d.sharedInfoGfn = gpfn;
    else d.grantFrameGfn[idx] = gpfn;
    return 0;
  }

  /**
   * Maps RAM frames of domain `domid` for privileged `caller` (xenforeignmemory_map; for a PV
   * Dom0 an mmu_update naming the foreign domain): -EPERM unless privileged, -ESRCH for no
   * such domain, -EINVAL if a frame is not RAM of that domain. All or nothing.
   */
  foreignMap(caller: Domain, domid: number, gfns: readonly number[]): { rc: number; mapping?: ForeignMapping } {
    if (!caller.privileged) return { rc: -EPERM };
    const d = this.hv.domain(domid & 0xffff);
    if (d === undefined) return { rc: -ESRCH };
    const pages: Uint8Array[] = [];
    for (const g of gfns) {
      const p = Number.isSafeInteger(g) ? d.memory.ramPage(g) : null;
      if (p === null) return { rc: -EINVAL };
      pages.push(p);
    }
    d.pageRefs += gfns.length;
    const mapping = new ForeignMapping(d, [...gfns], pages, () => {
      for (let i = 0; i < gfns.length; i++) this.hv.dropPageRef(d);
    });
    return { rc: 0, mapping };
  }
}
