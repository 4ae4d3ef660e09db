import type { SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_memory_op,
  DOMID_SELF,
  ENOSPC,
  GNTTAB_NR_RESERVED_ENTRIES,
  GRANT_ENTRIES_PER_FRAME_V1,
  GRANT_ENTRY_V1,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
  XENMAPSPACE_grant_table,
  XENMEM_add_to_physmap,
} from '../abi/index.js';
import { getU16, setU16, setU32 } from '../bytes.js';
import type { GuestMemory } from '../memory.js';
import type { Vcpu } from '../vcpu.js';
import type { FrameAllocator } from './frame-alloc.js';
import type { XenPlatform } from './platform.js';

/**
 * A guest kernel's side of its grant table, as Linux's drivers/xen/grant-table.c (v1): the
 * table frames mapped into its physical address space (XENMEM_add_to_physmap,
 * XENMAPSPACE_grant_table) and entries written there directly; refs 0-7 are left to the
 * toolstack. Granting and ending access cost no hypercall (XenLoop §3.3's observation).
 */
export class GrantClient {
  private readonly frameGfns: number[] = [];
  private readonly freeRefs: number[] = [];

  constructor(
    private readonly xen: XenPlatform,
    private readonly mem: GuestMemory,
    private readonly frames: FrameAllocator,
  ) {}

  /** Refs the table holds now (frames × 512). */
  get capacity(): number {
    return this.frameGfns.length * GRANT_ENTRIES_PER_FRAME_V1;
  }

  /** Free refs left before the table must grow. */
  get available(): number {
    return this.freeRefs.length;
  }

  /**
   * gnttab_expand: maps `n` more table frames (growing Xen's table); returns 0 or the first
   * failure (-EINVAL beyond max_grant_frames).
   */
  *expand(v: Vcpu, n: number): Generator<SimEvent<unknown>, number, unknown> {
    for (let i = 0; i < n; i++) {
      const idx = this.frameGfns.length;
      const gfn = this.frames.allocUnpopulated();
      const rc = yield* this.xen.hypercall(v, {
        nr: __HYPERVISOR_memory_op,
        cmd: XENMEM_add_to_physmap,
        arg: { domid: DOMID_SELF, space: XENMAPSPACE_grant_table, idx, gpfn: gfn },
      });
      if (rc !== 0) {
        this.frames.releaseUnpopulated(gfn);
        return rc;
      }
      this.frameGfns.push(gfn);
      const first = idx * GRANT_ENTRIES_PER_FRAME_V1;
      // Lowest refs first (the free list is a stack).
      for (let r = first + GRANT_ENTRIES_PER_FRAME_V1 - 1; r >= Math.max(first, GNTTAB_NR_RESERVED_ENTRIES); r--) this.freeRefs.push(r);
    }
    return 0;
  }

  /**
   * get_free_entries' growth: at least `n` free refs, expanding the table by as many frames as
   * that takes (gnttab_expand); 0, or the failure (beyond max_grant_frames).
   */
  *ensureFree(v: Vcpu, n: number): Generator<SimEvent<unknown>, number, unknown> {
    // One expansion at a time, as gnttab_list_lock serializes them: two at once would map the same table index twice.
    while (this.expanding !== null) yield this.expanding;
    if (this.freeRefs.length >= n) return 0;
    const done = this.xen.env.event<void>();
    this.expanding = done;
    try {
      return yield* this.expand(v, Math.ceil((n - this.freeRefs.length) / GRANT_ENTRIES_PER_FRAME_V1));
    } finally {
      this.expanding = null;
      done.succeed();
    }
  }

  private expanding: SimEvent<void> | null = null;

  /** gnttab_claim_grant_reference: a free ref, or -ENOSPC. */
  claimRef(): number {
    return this.freeRefs.pop() ?? -ENOSPC;
  }

  /** gnttab_free_grant_reference: the ref goes back to the free list (its entry must have been ended). */
  freeRef(ref: number): void {
    this.freeRefs.push(ref);
  }

  /**
   * gnttab_grant_foreign_access_ref: lets `domid` use frame `gfn`, read-only or writable.
   * Writes domid and frame, then the flags last, so Xen never sees a half-built entry.
   */
  grantAccessRef(ref: number, domid: number, gfn: number, readonly: boolean): void {
    const [page, off] = this.entry(ref);
    setU16(page, off + GRANT_ENTRY_V1.domid, domid);
    setU32(page, off + GRANT_ENTRY_V1.frame, gfn);
    setU16(page, off + GRANT_ENTRY_V1.flags, GTF_permit_access | (readonly ? GTF_readonly : 0));
  }

  /** gnttab_grant_foreign_access: claim a ref and grant it; -ENOSPC when the table is full. */
  grantAccess(domid: number, gfn: number, readonly: boolean): number {
    const ref = this.claimRef();
    if (ref < 0) return ref;
    this.grantAccessRef(ref, domid, gfn, readonly);
    return ref;
  }

  /**
   * gnttab_end_foreign_access_ref: revokes the grant by clearing its flags, unless Xen has it
   * in use (GTF_reading/GTF_writing set: mapped, or a copy in progress) — then false, and the
   * caller must retry later (no forced revoke).
   */
  endAccessRef(ref: number): boolean {
    const [page, off] = this.entry(ref);
    const flags = getU16(page, off + GRANT_ENTRY_V1.flags);
    if ((flags & (GTF_reading | GTF_writing)) !== 0) return false;
    setU16(page, off + GRANT_ENTRY_V1.flags, 0);
    return true;
  }

  /** End access and free the ref; false (and nothing changed) while the grant is in use. */
  endAccess(ref: number): boolean {
    if (!this.endAccessRef(ref)) return false;
    this.freeRef(ref);
    return true;
  }

  /** gnttab_query_foreign_access: whether the grant is in use (its GTF_reading/GTF_writing bits). */
  queryAccess(ref: number): number {
    const [page, off] = this.entry(ref);
    return getU16(page, off + GRANT_ENTRY_V1.flags) & (GTF_reading | GTF_writing);
  }

  /** The grant entry's raw flags, as the guest reads them. */
  flags(ref: number): number {
    const [page, off] = this.entry(ref);
    return getU16(page, off + GRANT_ENTRY_V1.flags);
  }

  private entry(ref: number): [Uint8Array, number] {
    const gfn = this.frameGfns[Math.floor(ref / GRANT_ENTRIES_PER_FRAME_V1)];
    if (gfn === undefined || ref < 0 || !Number.isInteger(ref))
      throw new RangeError(`grant ref ${ref} is not in this guest's table (${this.capacity} refs)`);
    return [this.mem.view(gfn), (ref % GRANT_ENTRIES_PER_FRAME_V1) * GRANT_ENTRY_V1_SIZE];
  }
}
