import { PAGE_SIZE } from '../../xen/abi/index.js';
import type { Domain, ForeignMapping, Hypervisor } from '../../xen/index.js';

/** MCACHE_BUCKET_SHIFT on 64-bit hosts: qemu maps guest RAM in 1 MiB buckets. */
export const MCACHE_BUCKET_SHIFT = 20;
const BUCKET_PAGES = (1 << MCACHE_BUCKET_SHIFT) / PAGE_SIZE;

interface Bucket {
  /** The mapping of the bucket's RAM pages, or null where a page is not guest RAM. */
  pages: (Uint8Array | null)[];
  mappings: ForeignMapping[];
}

/**
 * qemu's map cache for a Xen guest (hw/xen/xen-mapcache.c): guest-physical addresses are
 * reached through foreign mappings of whole 1 MiB buckets, made on the first touch of a
 * bucket (xen_remap_bucket with xenforeignmemory_map) and kept — a 64-bit qemu's cache is
 * large enough to hold all of a guest's RAM, so after warm-up nothing is mapped again.
 * Pages of a bucket that are not guest RAM fail to map (the per-page err array) and read as
 * zeros, writes to them dropped, as DMA to unassigned memory in QEMU.
 *
 * The mapping is made at once (the access needs the bytes now); its cost is counted in
 * `pendingMisses`, which qemu-dm charges on its vCPU right after the access.
 */
export class MapCache {
  private readonly buckets = new Map<number, Bucket>();
  misses = 0;
  pendingMisses = 0;
  /** Pages that failed to map (not guest RAM). */
  invalidPages = 0;

  constructor(
    private readonly hv: Hypervisor,
    private readonly dm: Domain,
    readonly target: Domain,
  ) {}

  private bucket(idx: number): Bucket {
    let b = this.buckets.get(idx);
    if (b !== undefined) return b;
    this.misses++;
    this.pendingMisses++;
    this.dm.counters.hypercall('mmu_update.foreign_map');
    const first = idx * BUCKET_PAGES;
    const gfns = Array.from({ length: BUCKET_PAGES }, (_, i) => first + i);
    b = { pages: [], mappings: [] };
    const all = this.hv.memory.foreignMap(this.dm, this.target.domid, gfns);
    if (all.rc === 0 && all.mapping !== undefined) {
      const m = all.mapping;
      b.mappings.push(m);
      b.pages = gfns.map((_, i) => m.page(i));
    } else {
      // Some page is not RAM: xenforeignmemory_map's err[] marks it, the rest map.
      for (const g of gfns) {
        const one = this.hv.memory.foreignMap(this.dm, this.target.domid, [g]);
        if (one.rc === 0 && one.mapping !== undefined) {
          b.mappings.push(one.mapping);
          b.pages.push(one.mapping.page(0));
        } else {
          this.invalidPages++;
          b.pages.push(null);
        }
      }
    }
    this.buckets.set(idx, b);
    return b;
  }

  private page(gfn: number): Uint8Array | null {
    if (!Number.isSafeInteger(gfn) || gfn < 0) return null;
    return this.bucket(Math.floor(gfn / BUCKET_PAGES)).pages[gfn % BUCKET_PAGES] ?? null;
  }

  read(gpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = gpa + done;
      const off = a % PAGE_SIZE;
      const n = Math.min(len - done, PAGE_SIZE - off);
      const p = this.page(Math.floor(a / PAGE_SIZE));
      if (p !== null) out.set(p.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  write(gpa: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const a = gpa + done;
      const off = a % PAGE_SIZE;
      const n = Math.min(data.length - done, PAGE_SIZE - off);
      const p = this.page(Math.floor(a / PAGE_SIZE));
      if (p !== null) p.set(data.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Foreign mappings of the guest's frames the cache holds now, and the frames they map. */
  get liveMappings(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.mappings.length;
    return n;
  }

  get mappedFrames(): number {
    let n = 0;
    for (const b of this.buckets.values()) for (const m of b.mappings) n += m.gfns.length;
    return n;
  }

  /** xen_invalidate_map_cache_entry for everything: qemu exits or the guest is gone. */
  invalidate(): void {
    for (const b of this.buckets.values()) for (const m of b.mappings) m.unmap();
    this.buckets.clear();
  }
}
