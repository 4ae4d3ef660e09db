import { PAGE_SIZE } from '../abi/index.js';
import { CHUNK_PAGES, type GuestMemory } from '../memory.js';

/**
 * A guest kernel's frame allocator for its drivers: whole RAM frames of its own (rings,
 * buffers, pages it will grant), and "unpopulated" frames above RAM where Xen maps things
 * for it (grant mappings, the shared-info page, grant-table frames), as Linux's
 * xen_alloc_unpopulated_pages. RAM frames come from the top of RAM downwards and are handed
 * out zeroed; there are never more than the domain's memory.
 */
export class FrameAllocator {
  private nextRam: number;
  private readonly freeRam: number[] = [];
  private nextUnpopulated: number;
  private readonly freeUnpopulated: number[] = [];
  private readonly inUse = new Set<number>();

  constructor(private readonly mem: GuestMemory) {
    this.nextRam = mem.ramPages - 1;
    this.nextUnpopulated = mem.firstFreeGfn;
  }

  /** Whether `gfn` is allocated and not yet freed (leak checks). */
  allocated(gfn: number): boolean {
    return this.inUse.has(gfn);
  }

  /** A zeroed RAM frame of this guest, or null when its memory is exhausted. */
  alloc(): number | null {
    let gfn = this.freeRam.pop();
    while (gfn === undefined && this.nextRam >= 0) {
      const g = this.mem.ramGfnAt(this.nextRam--);
      if (!this.inUse.has(g)) gfn = g;
    }
    if (gfn === undefined) return null;
    this.inUse.add(gfn);
    this.mem.fill(gfn * PAGE_SIZE, PAGE_SIZE, 0);
    return gfn;
  }

  /** `n` RAM frames (not necessarily contiguous), or null (and none taken) if there are not enough. */
  allocMany(n: number): number[] | null {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const g = this.alloc();
      if (g === null) {
        for (const x of out) this.free(x);
        return null;
      }
      out.push(g);
    }
    return out;
  }

  /**
   * `n` consecutive RAM frames (zeroed) whose bytes the model stores contiguously
   * (GuestMemory.ramSpan), for a buffer larger than a page, as Linux's page allocator gives
   * a higher-order allocation; null (and none taken) if there is no such run left. Frames
   * skipped to find one stay available for single allocations.
   */
  allocRun(n: number): number | null {
    if (!Number.isSafeInteger(n) || n < 1 || n > CHUNK_PAGES) throw new RangeError(`allocRun: ${n} frames (1…${CHUNK_PAGES})`);
    if (n === 1) return this.alloc();
    while (this.nextRam - n + 1 >= 0) {
      const top = this.mem.ramGfnAt(this.nextRam);
      const lo = this.mem.ramGfnAt(this.nextRam - n + 1);
      let ok = lo === top - n + 1 && Math.floor(lo / CHUNK_PAGES) === Math.floor(top / CHUNK_PAGES);
      for (let g = lo; ok && g <= top; g++) ok = !this.inUse.has(g);
      if (ok) {
        this.nextRam -= n;
        for (let g = lo; g <= top; g++) this.inUse.add(g);
        this.mem.fill(lo * PAGE_SIZE, n * PAGE_SIZE, 0);
        return lo;
      }
      // Leave the top frame to single allocations and look lower.
      if (!this.inUse.has(top)) this.freeRam.push(top);
      this.nextRam--;
    }
    return null;
  }

  free(gfn: number): void {
    if (!this.inUse.delete(gfn)) throw new Error(`frame 0x${gfn.toString(16)} freed but not allocated (model bug)`);
    this.freeRam.push(gfn);
  }

  /** A frame with nothing behind it, where Xen can map a page for this guest. */
  allocUnpopulated(): number {
    return this.freeUnpopulated.pop() ?? this.nextUnpopulated++;
  }

  releaseUnpopulated(gfn: number): void {
    this.freeUnpopulated.push(gfn);
  }
}
