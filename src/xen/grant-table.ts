import {
  GNTST_bad_gntref,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_okay,
  GRANT_ENTRIES_PER_FRAME_V1,
  GRANT_ENTRY_V1,
  GRANT_ENTRY_V1_SIZE,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_type_mask,
  GTF_writing,
  PAGE_SIZE,
} from './abi/index.js';
import { getU16, getU32, setU16 } from './bytes.js';
import type { Domain } from './domain.js';
import type { GuestMemory } from './memory.js';

/** Xen's defaults: gnttab_max_frames, max_maptrack_frames, and the initial table size. */
export const DEFAULT_MAX_GRANT_FRAMES = 64;
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;
/** GNTTAB_UNMAP_BATCH_SIZE: unmaps are done, and the TLB flushed, in batches of this many. */
export const GNTTAB_UNMAP_BATCH_SIZE = 32;
export const INITIAL_NR_GRANT_FRAMES = 1;
/** struct grant_mapping is 16 bytes: 256 maptrack entries per frame. */
export const MAPTRACK_PER_FRAME = PAGE_SIZE / 16;

/** How a grant is pinned (Xen's GNTPIN_* counters): host mapping or device mapping (copies pin as host). */
export type PinKind = 'host' | 'dev';

/**
 * struct active_grant_entry: Xen's private record of a grant in use. While pinned, Xen uses
 * the domid and frame it recorded at the first pin, not the shared entry (which the granter
 * could rewrite).
 */
export interface ActiveGrant {
  /** Pin counts (GNTPIN_hstr/hstw/devr/devw). */
  hstr: number;
  hstw: number;
  devr: number;
  devw: number;
  /** The domain that holds the pins. */
  domid: number;
  gfn: number;
  page: Uint8Array;
}

function pinTotal(a: ActiveGrant): number {
  return a.hstr + a.hstw + a.devr + a.devw;
}

/** Each GNTPIN_* counter is 8 bits in Xen; it refuses a pin that risks overflowing one. */
const PIN_LIMIT = 0x80;

/**
 * A domain's grant table, v1: 8-byte entries {flags u16, domid u16, frame u32} in Xen-owned
 * frames that the domain maps into its physical address space and writes directly
 * (shared/reference/xen-abi.md §3.1). Grows by whole frames up to `maxFrames`.
 */
export class GrantTable {
  readonly frames: Uint8Array[] = [];
  private readonly active = new Map<number, ActiveGrant>();

  constructor(
    readonly domid: number,
    readonly maxFrames: number,
  ) {
    this.grow(INITIAL_NR_GRANT_FRAMES);
  }

  get nrFrames(): number {
    return this.frames.length;
  }

  get nrEntries(): number {
    return this.frames.length * GRANT_ENTRIES_PER_FRAME_V1;
  }

  /** gnttab_grow_table: grows to `nrFrames` frames; false beyond the maximum. */
  grow(nrFrames: number): boolean {
    if (nrFrames > this.maxFrames) return false;
    while (this.frames.length < nrFrames) this.frames.push(new Uint8Array(PAGE_SIZE));
    return true;
  }

  flags(ref: number): number {
    const [f, o] = this.loc(ref);
    return getU16(f, o + GRANT_ENTRY_V1.flags);
  }

  entryDomid(ref: number): number {
    const [f, o] = this.loc(ref);
    return getU16(f, o + GRANT_ENTRY_V1.domid);
  }

  entryFrame(ref: number): number {
    const [f, o] = this.loc(ref);
    return getU32(f, o + GRANT_ENTRY_V1.frame);
  }

  /** The active entry of a pinned grant. */
  pinned(ref: number): ActiveGrant | undefined {
    return this.active.get(ref);
  }

  /** Number of grants with pins (for leak checks). */
  get pinnedCount(): number {
    return this.active.size;
  }

  /**
   * Pins grant `ref` for domain `ldomid` (map_grant_ref's and acquire_grant_for_copy's shared
   * part, Xen ≥ 4.6): bound check, the pinned-by-another-domain check, _set_status_v1 (type
   * permit_access, entry domid = caller, no writable use of a readonly grant; sets
   * GTF_reading and, if writable, GTF_writing in the shared entry) on first or first writable
   * pin, then the page behind the frame. Returns a GNTST_* status.
   */
  acquire(
    ref: number,
    ldomid: number,
    readonly: boolean,
    kind: PinKind,
    mapflag: boolean,
    memory: GuestMemory,
  ): { status: number; act?: ActiveGrant } {
    if (ref >= this.nrEntries) return { status: GNTST_bad_gntref };
    let act = this.active.get(ref);
    if (
      act !== undefined &&
      (act.domid !== ldomid || act.hstr >= PIN_LIMIT || act.hstw >= PIN_LIMIT || act.devr >= PIN_LIMIT || act.devw >= PIN_LIMIT)
    ) {
      return { status: GNTST_general_error };
    }
    if (act === undefined || (!readonly && act.hstw + act.devw === 0)) {
      const st = this.setStatus(ref, ldomid, readonly, mapflag, act !== undefined);
      if (st !== GNTST_okay) return { status: st };
      if (act === undefined) {
        const gfn = this.entryFrame(ref);
        const page = memory.ramPage(gfn);
        if (page === null) {
          // unlock_out_clear: undo what _set_status set, nothing is pinned.
          this.clearFlags(ref, GTF_reading | (readonly ? 0 : GTF_writing));
          return { status: GNTST_bad_page };
        }
        act = { hstr: 0, hstw: 0, devr: 0, devw: 0, domid: ldomid, gfn, page };
        this.active.set(ref, act);
      }
    }
    if (kind === 'host') {
      if (readonly) act.hstr++;
      else act.hstw++;
    } else if (readonly) act.devr++;
    else act.devw++;
    return { status: GNTST_okay, act };
  }

  /** Drops one pin (release_grant_for_copy / unmap_common_complete): clears GTF_writing with the last writable pin, GTF_reading with the last pin. */
  release(ref: number, readonly: boolean, kind: PinKind): void {
    const act = this.active.get(ref);
    if (act === undefined) throw new Error(`d${this.domid}: releasing unpinned grant ${ref} (model bug)`);
    if (kind === 'host') {
      if (readonly) act.hstr--;
      else act.hstw--;
    } else if (readonly) act.devr--;
    else act.devw--;
    let clear = 0;
    if (!readonly && act.hstw + act.devw === 0) clear |= GTF_writing;
    if (pinTotal(act) === 0) {
      clear |= GTF_reading;
      this.active.delete(ref);
    }
    if (clear !== 0) this.clearFlags(ref, clear);
  }

  /** _set_status_v1. The type and domid are checked only when nothing is pinned yet. */
  private setStatus(ref: number, ldomid: number, readonly: boolean, mapflag: boolean, pinned: boolean): number {
    const flags = this.flags(ref);
    const mask = mapflag ? GTF_type_mask | GTF_sub_page : GTF_type_mask;
    if (!pinned && ((flags & mask) !== GTF_permit_access || this.entryDomid(ref) !== ldomid)) return GNTST_general_error;
    let nflags = flags | GTF_reading;
    if (!readonly) {
      if ((flags & GTF_readonly) !== 0) return GNTST_general_error; // write-pin of a r/o grant
      nflags |= GTF_writing;
    }
    const [f, o] = this.loc(ref);
    setU16(f, o + GRANT_ENTRY_V1.flags, nflags);
    return GNTST_okay;
  }

  private clearFlags(ref: number, bits: number): void {
    const [f, o] = this.loc(ref);
    setU16(f, o + GRANT_ENTRY_V1.flags, getU16(f, o + GRANT_ENTRY_V1.flags) & ~bits);
  }

  private loc(ref: number): [Uint8Array, number] {
    const f = this.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME_V1)];
    if (f === undefined) throw new Error(`d${this.domid}: grant ref ${ref} beyond the table (model bug: callers bound-check)`);
    return [f, (ref % GRANT_ENTRIES_PER_FRAME_V1) * GRANT_ENTRY_V1_SIZE];
  }
}

/** struct grant_mapping: one handle of a mapper's maptrack. */
export interface MaptrackEntry {
  /** The granter, held even once it is dying (its pages stay until unmapped). */
  granter: Domain;
  ref: number;
  /** GNTMAP_* flags still in effect (host_map/device_map cleared as they are unmapped). */
  flags: number;
  /** Guest frame of the host mapping in the mapper's physical address space. */
  gfn: number;
  page: Uint8Array;
}

/**
 * A domain's maptrack: the handles of grants it has mapped. Handles are reused most
 * recently freed first, as Xen's per-vCPU free lists do; `limit` = max_maptrack_frames × 256.
 */
export class Maptrack {
  private readonly entries: (MaptrackEntry | null)[] = [];
  private readonly free: number[] = [];

  constructor(readonly limit: number) {}

  /** A free handle, or -1 when none is left. */
  alloc(e: MaptrackEntry): number {
    let h = this.free.pop();
    if (h === undefined) {
      if (this.entries.length >= this.limit) return -1;
      h = this.entries.length;
      this.entries.push(null);
    }
    this.entries[h] = e;
    return h;
  }

  get(handle: number): MaptrackEntry | null {
    return this.entries[handle] ?? null;
  }

  put(handle: number): void {
    if (this.entries[handle] === null || this.entries[handle] === undefined) throw new Error(`maptrack handle ${handle} freed twice (model bug)`);
    this.entries[handle] = null;
    this.free.push(handle);
  }

  /** Handles in use, lowest first. */
  inUse(): number[] {
    const out: number[] = [];
    this.entries.forEach((e, h) => {
      if (e !== null) out.push(h);
    });
    return out;
  }
}
