import { PRIO_IRQ, type ProcessGenerator, type SimEvent } from '../../sim/index.js';
import {
  __HYPERVISOR_event_channel_op,
  EINVAL,
  ENOMEM,
  EVTCHN_FIFO_CONTROL_BLOCK,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHN_FIFO_LINKED,
  EVTCHN_FIFO_MASKED,
  EVTCHN_FIFO_MAX_QUEUES,
  EVTCHN_FIFO_NR_CHANNELS,
  EVTCHN_FIFO_PENDING,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_unmask,
  PAGE_SIZE,
} from '../abi/index.js';
import type { Domain } from '../domain.js';
import type { GuestMemory } from '../memory.js';
import type { Vcpu } from '../vcpu.js';
import type { EvtchnOps, PortDispatch } from './evtchn-ops.js';
import type { FrameAllocator } from './frame-alloc.js';
import type { XenPlatform } from './platform.js';

const bit = (n: number): number => (1 << n) >>> 0;
const PENDING = bit(EVTCHN_FIFO_PENDING);
const MASKED = bit(EVTCHN_FIFO_MASKED);
const LINKED = bit(EVTCHN_FIFO_LINKED);

/**
 * A guest kernel's FIFO event-channel ABI, as Linux ≥ 3.14's drivers/xen/events/events_fifo.c:
 * one control block page per vCPU registered with EVTCHNOP_init_control, an event array in
 * pages of the guest's own RAM added with EVTCHNOP_expand_array as ports beyond it are bound
 * (every word of a new page masked first), and an upcall that takes the control block's READY
 * word and drains the ready queues highest priority first, unlinking one event at a time.
 * Only this guest's own pages are read and written here: what it finds in them (its own bug, or
 * a scribble) can cost it its own events, never crash the model.
 */
export class EvtchnFifoOps implements EvtchnOps {
  readonly abi = 'fifo' as const;
  /** The event array's pages, in port order (Linux's event_array[]). */
  private readonly arrayGfns: number[] = [];
  /** Linux's per-CPU struct evtchn_fifo_queue: the head of each queue it has started to consume. */
  private readonly localHead: number[][];
  private readonly mem: GuestMemory;
  /** Queue heads that pointed past the event array (a corrupted array): that queue was abandoned. */
  badLinks = 0;

  private constructor(
    private readonly xen: XenPlatform,
    domain: Domain,
    private readonly frames: FrameAllocator,
    /** Each vCPU's control block page (offset 0). */
    private readonly controlGfns: readonly number[],
  ) {
    this.mem = domain.memory;
    this.localHead = controlGfns.map(() => new Array<number>(EVTCHN_FIFO_MAX_QUEUES).fill(0));
  }

  /**
   * xen_evtchn_fifo_init and the CPU-up notifier for every vCPU: a zeroed page per vCPU as its
   * control block (evtchn_fifo_alloc_control_block → EVTCHNOP_init_control). The ops, or the
   * error and whether it came from the first vCPU's init_control (-ENOSYS on a Xen without the
   * ABI): then nothing is kept and the caller falls back to the 2-level ABI as xen_init_IRQ does.
   */
  static *init(
    xen: XenPlatform,
    domain: Domain,
    frames: FrameAllocator,
    v: Vcpu,
  ): Generator<SimEvent<unknown>, EvtchnFifoOps | { rc: number; first: boolean }, unknown> {
    const gfns: number[] = [];
    for (const cpu of domain.vcpus) {
      const gfn = frames.alloc();
      if (gfn === null) {
        for (const g of gfns) frames.free(g);
        return { rc: -ENOMEM, first: gfns.length === 0 };
      }
      const arg = { control_gfn: gfn, offset: 0, vcpu: cpu.id };
      const rc = yield* xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_init_control, arg });
      if (rc < 0) {
        frames.free(gfn);
        // The first vCPU's failure means no FIFO ABI (the caller falls back). A later vCPU that
        // cannot get its control block cannot come up (Linux's notifier fails CPU_UP_PREPARE)
        // while the domain is already on the FIFO ABI: the caller reports it as a boot error.
        return { rc, first: gfns.length === 0 };
      }
      gfns.push(gfn);
    }
    return new EvtchnFifoOps(xen, domain, frames, gfns);
  }

  get upcallCost(): number {
    return this.xen.costs.guestFifoUpcall;
  }

  /** Ports the event array covers (evtchn_fifo_nr_channels). */
  get nrChannels(): number {
    return this.arrayGfns.length * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
  }

  /** The event array's pages (for tests and inspection). */
  get eventArray(): readonly number[] {
    return this.arrayGfns;
  }

  /**
   * Gives the control block and event array frames back to the allocator, for a kernel resuming
   * after migration (evtchn_fifo_resume reuses them; its new set-up allocates them again).
   */
  releasePages(): void {
    for (const g of [...this.controlGfns, ...this.arrayGfns]) this.frames.free(g);
    this.arrayGfns.length = 0;
  }

  /** vCPU `vcpu`'s control block page. */
  controlBlock(vcpu: number): number {
    return this.controlGfns[vcpu]!;
  }

  private gpa(port: number): number {
    return this.arrayGfns[Math.floor(port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE)]! * PAGE_SIZE + 4 * (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);
  }

  /** The event word of `port`, or null past the array. */
  word(port: number): number | null {
    return port < this.nrChannels ? this.mem.readU32(this.gpa(port)) : null;
  }

  private update(port: number, f: (w: number) => number): void {
    if (port >= this.nrChannels) return;
    const gpa = this.gpa(port);
    this.mem.writeU32(gpa, f(this.mem.readU32(gpa)) >>> 0);
  }

  /**
   * evtchn_fifo_setup: add array pages until `port` has a word. Each new page has every word
   * MASKED before Xen gets it (init_array_page: Xen may raise an event there at once). 0 or the
   * error of the page that could not be added (Linux panics if that is the first one).
   */
  *setup(v: Vcpu, port: number): Generator<SimEvent<unknown>, number, unknown> {
    if (port >= EVTCHN_FIFO_NR_CHANNELS) return -EINVAL;
    while (port >= this.nrChannels) {
      const gfn = this.frames.alloc();
      if (gfn === null) return -ENOMEM;
      for (let i = 0; i < EVTCHN_FIFO_EVENT_WORDS_PER_PAGE; i++) this.mem.writeU32(gfn * PAGE_SIZE + 4 * i, MASKED);
      const rc = yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_expand_array, arg: { array_gfn: gfn } });
      if (rc < 0) {
        this.frames.free(gfn);
        return rc;
      }
      this.arrayGfns.push(gfn);
    }
    return 0;
  }

  mask(port: number): void {
    this.update(port, (w) => w | MASKED);
  }

  isPending(port: number): boolean {
    const w = this.word(port);
    return w !== null && (w & PENDING) !== 0;
  }

  clearPending(port: number): void {
    this.update(port, (w) => w & ~PENDING);
  }

  /**
   * evtchn_fifo_unmask: clear MASKED in the word; if the event is pending, EVTCHNOP_unmask so
   * Xen links it (a word cleared in memory alone is never queued).
   */
  *unmask(v: Vcpu, port: number): Generator<SimEvent<unknown>, void, unknown> {
    this.update(port, (w) => w & ~MASKED);
    if (this.isPending(port)) yield* this.xen.hypercall(v, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_unmask, arg: { port } });
  }

  /** xchg(&control_block->ready, 0); bits past the 16 queues (garbage the guest wrote) are ignored. */
  private takeReady(vcpu: number): number {
    const gpa = this.controlGfns[vcpu]! * PAGE_SIZE + EVTCHN_FIFO_CONTROL_BLOCK.ready;
    const r = this.mem.readU32(gpa);
    this.mem.writeU32(gpa, 0);
    return r & (bit(EVTCHN_FIFO_MAX_QUEUES) - 1);
  }

  /**
   * evtchn_fifo_handle_events: take READY, then while any queue is ready consume one event of
   * the highest-priority one (lowest number), merging in queues Xen made ready meanwhile.
   */
  *handleEvents(v: Vcpu, dispatch: PortDispatch): ProcessGenerator<void> {
    const ready = { bits: this.takeReady(v.id) };
    while (ready.bits !== 0) {
      const q = 31 - Math.clz32(ready.bits & -ready.bits);
      yield* this.consumeOne(v, q, ready, dispatch);
      ready.bits = (ready.bits | this.takeReady(v.id)) >>> 0;
    }
  }

  /**
   * consume_one_event: the queue's head (the per-CPU copy, or the control block's HEAD when the
   * copy is empty), unlinked from the queue (clear_linked takes its LINK as the next head and
   * clears LINKED), and handled if it is PENDING and not MASKED (the handler's ack clears
   * PENDING). A queue whose link ran out is no longer ready.
   */
  private *consumeOne(v: Vcpu, q: number, ready: { bits: number }, dispatch: PortDispatch): ProcessGenerator<void> {
    yield v.exec(this.xen.costs.guestFifoConsume, 'irq', PRIO_IRQ);
    const heads = this.localHead[v.id]!;
    let port = heads[q]!;
    if (port === 0) port = this.mem.readU32(this.controlGfns[v.id]! * PAGE_SIZE + EVTCHN_FIFO_CONTROL_BLOCK.head + 4 * q) & EVTCHN_FIFO_LINK_MASK;
    const w = this.word(port);
    if (w === null) {
      // A head past the array: only a corrupted control block or array gives one (Linux would
      // fault); the queue is dropped.
      this.badLinks++;
      heads[q] = 0;
      ready.bits &= ~bit(q);
      return;
    }
    this.update(port, (x) => x & ~(LINKED | EVTCHN_FIFO_LINK_MASK));
    const next = w & EVTCHN_FIFO_LINK_MASK;
    if (next === 0) ready.bits &= ~bit(q);
    const now = this.word(port)!;
    if ((now & PENDING) !== 0 && (now & MASKED) === 0) {
      this.clearPending(port);
      yield* dispatch(port, v);
    }
    heads[q] = next;
  }
}
