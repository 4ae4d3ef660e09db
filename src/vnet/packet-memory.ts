import { Deque } from '../sim/index.js';
import { PacketBuffer, type PacketMemory } from '../net/index.js';
import { PAGE_SIZE } from '../xen/abi/index.js';
import type { GuestMemory } from '../xen/index.js';
import type { FrameAllocator } from '../xen/guest/index.js';

/** A guest's packet memory could not get frames: the domain's RAM is used up (or leaked). */
export class PacketMemoryExhausted extends Error {
  constructor(
    readonly domid: number,
    readonly pages: number,
  ) {
    super(`domain ${domid}: no ${pages} free consecutive RAM frame(s) left for a packet buffer (guest memory exhausted, or buffers are leaking)`);
    this.name = 'PacketMemoryExhausted';
  }
}

/** Largest buffer: a 64 KiB GSO frame with its headers (XEN_NETIF_MAX_TX_SIZE plus Ethernet). */
const MAX_PAGES = Math.ceil((65535 + 14) / PAGE_SIZE) + 1;

/** One buffer in a guest's own frames: `pages` consecutive frames from `gfn`. */
class GuestBuffer extends PacketBuffer {
  readonly offset = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly gfn: number,
    readonly pages: number,
    private readonly pool: GuestPacketMemory,
  ) {
    super();
  }
  /** The guest's domain now (a migrated guest resumes in another domain, its buffers with it). */
  get domid(): number {
    return this.pool.domid;
  }
  /** @internal Back in use after recycling. */
  revive(): this {
    this.reuse();
    return this;
  }
  protected recycle(): void {
    this.pool.recycled(this);
  }
}

/**
 * A guest kernel's packet buffers in its own RAM (Linux's skb data from the page allocator,
 * reduced): a buffer up to a page is one frame; a larger one (a GSO frame) is a run of
 * consecutive frames, as a higher-order allocation. Freed buffers go back to a free list of
 * their size and are reused, as the slab and page allocators recycle memory; frames are taken
 * from the guest's frame allocator only when the list is empty, so the pool grows to the
 * largest number of buffers in use at once and no further. Every byte a grant copy, DMA or
 * device model reads or writes for a packet is in these frames.
 */
export class GuestPacketMemory implements PacketMemory {
  private readonly free: Deque<GuestBuffer>[] = [];
  /** Buffers handed out and not yet freed; frames the pool holds. */
  outstanding = 0;
  framesHeld = 0;

  constructor(
    private readonly mem: GuestMemory,
    private readonly frames: FrameAllocator,
  ) {
    for (let i = 0; i <= MAX_PAGES; i++) this.free.push(new Deque());
  }

  get domid(): number {
    return this.mem.domid;
  }

  alloc(len: number): PacketBuffer {
    const pages = Math.max(1, Math.ceil(len / PAGE_SIZE));
    if (pages > MAX_PAGES) throw new RangeError(`packet buffer of ${len} bytes: larger than ${MAX_PAGES} pages`);
    this.outstanding++;
    // First freed, first reused: pages come back in the order they were let go, so buffers a
    // driver posts one after another (netfront's RX slots) tend to be consecutive frames again.
    const b = this.free[pages]!.shift();
    if (b !== undefined) {
      b.bytes.fill(0, 0, len);
      return b.revive();
    }
    const gfn = this.frames.allocRun(pages);
    if (gfn === null) {
      this.outstanding--;
      throw new PacketMemoryExhausted(this.domid, pages);
    }
    this.framesHeld += pages;
    const bytes = this.mem.ramSpan(gfn, pages);
    if (bytes === null) throw new Error(`domain ${this.domid}: frames 0x${gfn.toString(16)}+${pages} are not one span (model bug)`);
    return new GuestBuffer(bytes, gfn, pages, this);
  }

  /** @internal */
  recycled(b: GuestBuffer): void {
    this.outstanding--;
    this.free[b.pages]!.push(b);
  }
}
