import { PAGE_SIZE } from './abi/index.js';
import { getU16, getU32, getU64, setU16, setU32, setU64 } from './bytes.js';

/**
 * An HVM guest's physical address space, as hvmloader/libxl lay it out: RAM from 0 up to the
 * MMIO hole below 4 GiB (0xF0000000, the default 256 MiB PCI hole), the rest of RAM above
 * 4 GiB. Frames outside RAM hold nothing unless Xen maps something there (a grant mapping,
 * the shared-info page, grant-table frames): that is where guests place such mappings, as
 * Linux does with its "unpopulated" frames. PV guests get the same layout in the model.
 */
export const MMIO_HOLE_START_GFN = 0xf0000;
export const HIGH_RAM_START_GFN = 0x100000;
/** Guest frames end with 52-bit guest-physical addresses: nothing can be mapped beyond. */
export const MAX_GFN = 2 ** 40;
/** Frames per storage chunk of GuestMemory (a model detail: 1 MiB allocations). */
export const CHUNK_PAGES = 256;

/** What a guest frame holds besides its own RAM (the p2m types the model needs). */
export type OverlayType = 'grant_map_rw' | 'grant_map_ro' | 'xen_page';

export interface Overlay {
  type: OverlayType;
  page: Uint8Array;
}

/**
 * A guest touched memory it does not have (a frame with nothing mapped, or a write through a
 * read-only grant mapping, where Xen injects #GP). The guest's kernel is model code, so this
 * is a bug in that code and is thrown; Xen's own paths never throw it.
 */
export class GuestFault extends Error {
  constructor(
    readonly domid: number,
    readonly gpa: number,
    readonly write: boolean,
    reason: string,
  ) {
    super(`d${domid}: ${write ? 'write to' : 'read from'} guest-physical 0x${gpa.toString(16)}: ${reason}`);
    this.name = 'GuestFault';
  }
}

/**
 * One domain's memory: 4 KiB pages by guest frame number (the p2m), RAM allocated on first
 * touch and bounded by the domain's memory size, plus the frames Xen has mapped into its
 * physical address space. The accessors (`read…`/`write…`, `view`) are the guest's own view
 * of its memory, for its kernel and drivers; Xen's code uses `ramPage` (get_page_from_gfn),
 * which yields only the domain's own RAM — never a page it has mapped from someone else, so a
 * domain cannot pass on what it was granted.
 */
export class GuestMemory {
  /** RAM size in pages. */
  readonly ramPages: number;
  /** First frame above all RAM and the MMIO hole: where the guest can place mappings. */
  readonly firstFreeGfn: number;
  private readonly lowEnd: number;
  private readonly highEnd: number;
  private readonly ram = new Map<number, Uint8Array>();
  /**
   * The bytes behind RAM: chunks of CHUNK_PAGES consecutive frames, each one allocation made
   * when the first of its frames is touched, so that consecutive frames are consecutive bytes
   * and a buffer over several of them (a 64 KiB packet) can be read as one view (`ramSpan`).
   */
  private readonly chunks = new Map<number, ArrayBuffer>();
  /** RAM frames whose page Xen removed when it mapped something there (they stay empty). */
  private readonly removed = new Set<number>();
  private readonly overlays = new Map<number, Overlay>();
  /** Pages the toolstack populated outside RAM for the guest (special pages: the xenstore ring). */
  private readonly special = new Set<number>();

  /** The domain whose memory this is (changes once, when a migrated guest resumes in a new domain: `resumeAs`). */
  get domid(): number {
    return this.owner;
  }

  constructor(
    private owner: number,
    memoryMiB: number,
  ) {
    this.ramPages = memoryMiB * 256;
    this.lowEnd = Math.min(this.ramPages, MMIO_HOLE_START_GFN);
    this.highEnd = HIGH_RAM_START_GFN + (this.ramPages - this.lowEnd);
    this.firstFreeGfn = Math.max(this.highEnd, HIGH_RAM_START_GFN);
  }

  /** Whether `gfn` is a RAM frame of this domain's layout (its special pages included). */
  isRamGfn(gfn: number): boolean {
    return Number.isSafeInteger(gfn) && gfn >= 0 && (gfn < this.lowEnd || (gfn >= HIGH_RAM_START_GFN && gfn < this.highEnd) || this.special.has(gfn));
  }

  /**
   * The toolstack populates one page for the guest outside its RAM, in the MMIO hole below
   * 4 GiB, as libxc does for an HVM guest's special pages (xenstore and console rings, ioreq
   * pages: just below 0xff000, reserved in the guest's memory map). The page is the domain's
   * own, so it can be foreign-mapped by Dom0 and granted like RAM, but the guest's frame
   * allocator never hands it out. Returns false if `gfn` is not free in the hole.
   */
  populateSpecial(gfn: number): boolean {
    if (!Number.isSafeInteger(gfn) || gfn < MMIO_HOLE_START_GFN || gfn >= HIGH_RAM_START_GFN) return false;
    if (this.isRamGfn(gfn) || this.overlays.has(gfn)) return false;
    this.special.add(gfn);
    return true;
  }

  /** The i-th RAM frame (0 ≤ i < ramPages): low RAM first, then RAM above 4 GiB. */
  ramGfnAt(i: number): number {
    return i < this.lowEnd ? i : HIGH_RAM_START_GFN + (i - this.lowEnd);
  }

  /** RAM pages allocated so far (never more than `ramPages`). */
  get populated(): number {
    return this.ram.size;
  }

  /** The RAM page at `gfn` if it has been touched, else null (never allocates: a never-touched page reads as zeros). */
  peekRam(gfn: number): Uint8Array | null {
    return this.ram.get(gfn) ?? null;
  }

  /**
   * Live migration's resume (src/host/migration.ts): this RAM — the guest's, whose contents the
   * migration stream has copied page by page into `fresh`, the memory Xen gave the new domain,
   * and which the caller has checked equal — becomes the memory of domain `domid` on the target,
   * so that the guest kernel's own references into its RAM (packet buffers in socket queues)
   * stay valid. What the old host's Xen had mapped into the guest's physical address space
   * (shared-info, grant-table frames, grant mappings) is not part of the guest's RAM and is not
   * migrated: it is gone, and the resuming kernel maps the new host's again. The special pages
   * the new host's toolstack populated (the xenstore ring) are the new domain's: they replace
   * the old ones.
   */
  resumeAs(domid: number, fresh: GuestMemory): void {
    if (fresh.ramPages !== this.ramPages)
      throw new Error(`d${domid}: resuming ${this.ramPages} pages of RAM in a domain of ${fresh.ramPages} (model bug)`);
    this.owner = domid;
    this.overlays.clear();
    for (const gfn of this.special) this.ram.delete(gfn);
    this.special.clear();
    for (const gfn of fresh.special) {
      this.special.add(gfn);
      const p = fresh.ram.get(gfn);
      if (p !== undefined) this.ram.set(gfn, p);
    }
  }

  /** Special pages (outside RAM) the toolstack populated. */
  get specialGfns(): readonly number[] {
    return [...this.special];
  }

  // ---- Xen's view -------------------------------------------------------------------------

  /**
   * The domain's own RAM page at `gfn`, allocated (zeroed) on first touch, or null if the
   * frame is not RAM it owns: outside RAM, removed, or holding a mapping (get_paged_frame
   * fails with GNTST_bad_page).
   */
  ramPage(gfn: number): Uint8Array | null {
    const p = this.ram.get(gfn);
    if (p !== undefined) return p;
    if (!this.isRamGfn(gfn) || this.removed.has(gfn) || this.overlays.has(gfn)) return null;
    const c = Math.floor(gfn / CHUNK_PAGES);
    let chunk = this.chunks.get(c);
    if (chunk === undefined) {
      chunk = new ArrayBuffer(CHUNK_PAGES * PAGE_SIZE);
      this.chunks.set(c, chunk);
    }
    const page = new Uint8Array(chunk, (gfn - c * CHUNK_PAGES) * PAGE_SIZE, PAGE_SIZE);
    this.ram.set(gfn, page);
    return page;
  }

  /**
   * The domain's own RAM frames `gfn … gfn + pages − 1` as one view of consecutive bytes, or
   * null if any of them is not RAM it owns or they do not lie in one chunk of the model's
   * storage (a frame allocator hands out runs that do: `FrameAllocator.allocRun`).
   */
  ramSpan(gfn: number, pages: number): Uint8Array | null {
    const c = Math.floor(gfn / CHUNK_PAGES);
    if (pages < 1 || Math.floor((gfn + pages - 1) / CHUNK_PAGES) !== c) return null;
    for (let i = 0; i < pages; i++) if (this.ramPage(gfn + i) === null) return null;
    return new Uint8Array(this.chunks.get(c)!, (gfn - c * CHUNK_PAGES) * PAGE_SIZE, pages * PAGE_SIZE);
  }

  overlayAt(gfn: number): Overlay | undefined {
    return this.overlays.get(gfn);
  }

  /**
   * Xen maps `page` at `gfn` (guest_physmap_add_entry): whatever was there is replaced; a RAM
   * page there is removed from the domain and its contents are lost.
   */
  setOverlay(gfn: number, overlay: Overlay): void {
    if (this.ram.delete(gfn) || this.isRamGfn(gfn)) this.removed.add(gfn);
    this.overlays.set(gfn, overlay);
  }

  /** Removes the mapping at `gfn` if it is `page`; the frame stays empty. */
  clearOverlay(gfn: number, page: Uint8Array): boolean {
    const o = this.overlays.get(gfn);
    if (o === undefined || o.page !== page) return false;
    this.overlays.delete(gfn);
    return true;
  }

  // ---- the guest's view -------------------------------------------------------------------

  /** Whether the guest can access `gpa` (for writing, if `write`). */
  accessible(gpa: number, write: boolean): boolean {
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const o = this.overlays.get(gfn);
    if (o !== undefined) return !write || o.type !== 'grant_map_ro';
    return this.isRamGfn(gfn) && !this.removed.has(gfn);
  }

  /**
   * The live bytes of a frame the guest can write, as a kernel mapping gives it a pointer
   * (for structures it shares: the shared-info page, grant-table frames, rings).
   */
  view(gfn: number): Uint8Array {
    return this.page(gfn * PAGE_SIZE, true);
  }

  read(gpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(gpa, out);
    return out;
  }

  readInto(gpa: number, dst: Uint8Array): void {
    this.span(gpa, dst.length, false, (page, off, done, n) => dst.set(page.subarray(off, off + n), done));
  }

  write(gpa: number, data: Uint8Array): void {
    this.span(gpa, data.length, true, (page, off, done, n) => page.set(data.subarray(done, done + n), off));
  }

  fill(gpa: number, len: number, value: number): void {
    this.span(gpa, len, true, (page, off, _done, n) => page.fill(value, off, off + n));
  }

  /** Visits `len` bytes from `gpa` page by page: `fn(page, offset in page, bytes done, bytes here)`. */
  private span(gpa: number, len: number, write: boolean, fn: (page: Uint8Array, off: number, done: number, n: number) => void): void {
    let done = 0;
    while (done < len) {
      const a = gpa + done;
      const off = a % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, len - done);
      fn(this.page(a, write), off, done, n);
      done += n;
    }
  }

  readU8(gpa: number): number {
    return this.page(gpa, false)[gpa % PAGE_SIZE]!;
  }

  writeU8(gpa: number, v: number): void {
    this.page(gpa, true)[gpa % PAGE_SIZE] = v & 0xff;
  }

  readU16(gpa: number): number {
    return this.small(gpa, 2, false, getU16);
  }

  writeU16(gpa: number, v: number): void {
    this.smallWrite(gpa, 2, (b, o) => setU16(b, o, v));
  }

  readU32(gpa: number): number {
    return this.small(gpa, 4, false, getU32);
  }

  writeU32(gpa: number, v: number): void {
    this.smallWrite(gpa, 4, (b, o) => setU32(b, o, v));
  }

  readU64(gpa: number): bigint {
    return this.small(gpa, 8, false, getU64);
  }

  writeU64(gpa: number, v: bigint): void {
    this.smallWrite(gpa, 8, (b, o) => setU64(b, o, v));
  }

  private small<T>(gpa: number, size: number, write: boolean, get: (b: Uint8Array, off: number) => T): T {
    const off = gpa % PAGE_SIZE;
    if (off + size <= PAGE_SIZE) return get(this.page(gpa, write), off);
    const tmp = this.read(gpa, size);
    return get(tmp, 0);
  }

  private smallWrite(gpa: number, size: number, set: (b: Uint8Array, off: number) => void): void {
    const off = gpa % PAGE_SIZE;
    if (off + size <= PAGE_SIZE) {
      set(this.page(gpa, true), off);
      return;
    }
    const tmp = new Uint8Array(size);
    set(tmp, 0);
    this.write(gpa, tmp);
  }

  /** The page holding `gpa` as the guest sees it, or a GuestFault. */
  private page(gpa: number, write: boolean): Uint8Array {
    if (!Number.isSafeInteger(gpa) || gpa < 0) throw new GuestFault(this.domid, gpa, write, 'not a guest-physical address');
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const o = this.overlays.get(gfn);
    if (o !== undefined) {
      if (write && o.type === 'grant_map_ro') throw new GuestFault(this.domid, gpa, write, 'read-only grant mapping (Xen injects #GP)');
      return o.page;
    }
    const p = this.ramPage(gfn);
    if (p === null) throw new GuestFault(this.domid, gpa, write, 'nothing is mapped at this frame');
    return p;
  }
}
