import {
  EINVAL,
  ENOENT,
  ENOSPC,
  EVTCHN_FIFO_BUSY,
  EVTCHN_FIFO_CONTROL_BLOCK,
  EVTCHN_FIFO_EVENT_WORDS_PER_PAGE,
  EVTCHN_FIFO_LINK_BITS,
  EVTCHN_FIFO_LINK_MASK,
  EVTCHN_FIFO_LINKED,
  EVTCHN_FIFO_MASKED,
  EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES,
  EVTCHN_FIFO_MAX_QUEUES,
  EVTCHN_FIFO_PENDING,
  EVTCHN_FIFO_PRIORITY_DEFAULT,
  EVTCHN_FIFO_PRIORITY_MIN,
  PAGE_SIZE,
} from './abi/index.js';
import { getU32, setU32 } from './bytes.js';

/** struct evtchn_init_control (EVTCHNOP_init_control); `link_bits` is written back. */
export interface EvtchnInitControl {
  control_gfn: number;
  offset: number;
  vcpu: number;
  link_bits?: number;
}
/** struct evtchn_expand_array. */
export interface EvtchnExpandArray {
  array_gfn: number;
}
/** struct evtchn_set_priority. */
export interface EvtchnSetPriority {
  port: number;
  priority: number;
}

/** Xen's FIFO state of one port (the fields of struct evtchn the FIFO ops use). */
interface FifoPort {
  priority: number;
  /** The queue the port was last linked on (last_vcpu_id, last_priority). */
  lastVcpu: number;
  lastPriority: number;
  /** Raised while its event-array page did not exist yet (evtchn->pending). */
  pending: boolean;
}

/** Xen's private queue state: only the tail; the head lives in the guest's control block. */
interface FifoQueue {
  tail: number;
}

interface FifoVcpu {
  /** The guest page holding this vCPU's control block, and where in it (null: not mapped). */
  page: Uint8Array | null;
  offset: number;
  readonly queues: FifoQueue[];
}

const bit = (n: number): number => (1 << n) >>> 0;
const P = bit(EVTCHN_FIFO_PENDING);
const M = bit(EVTCHN_FIFO_MASKED);
const L = bit(EVTCHN_FIFO_LINKED);
const B = bit(EVTCHN_FIFO_BUSY);

/**
 * The FIFO-based event channel ABI of one domain (xen/common/event_fifo.c, Xen 4.4+): event
 * words in pages of the guest's own RAM it hands over with EVTCHNOP_expand_array, one control
 * block per vCPU (EVTCHNOP_init_control) with a READY bit and a HEAD per priority, and 16
 * priority queues per vCPU linked through the words' LINK fields. Xen keeps only each queue's
 * tail; it reads and writes the guest's words only for ports it was asked to signal and never
 * follows a link the guest wrote, so garbage in the array harms only the guest's own events.
 * Every operation here runs to its end at one instant, so the cmpxchg retries of
 * evtchn_fifo_set_link cannot fail: a tail the guest has already unlinked is seen as such.
 */
export class EvtchnFifo {
  private readonly vcpus: FifoVcpu[];
  private readonly pages: Uint8Array[] = [];
  private readonly ports = new Map<number, FifoPort>();
  /**
   * The guest frames Xen maps and writes for this ABI (control blocks, event array pages).
   * Xen writes them through its own global mapping (map_guest_page in event_fifo.c) without
   * marking them dirty for log-dirty; the guest resets them when it resumes after migration
   * (Linux's evtchn_fifo_resume).
   */
  readonly mappedGfns = new Set<number>();

  constructor(nvcpus: number) {
    this.vcpus = Array.from({ length: nvcpus }, () => ({
      page: null,
      offset: 0,
      queues: Array.from({ length: EVTCHN_FIFO_MAX_QUEUES }, () => ({ tail: 0 })),
    }));
  }

  /** Ports that have an event word (num_evtchns). */
  get numEvtchns(): number {
    return this.pages.length * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
  }

  private port(port: number, notifyVcpu: number): FifoPort {
    let e = this.ports.get(port);
    if (e === undefined) {
      e = { priority: EVTCHN_FIFO_PRIORITY_DEFAULT, lastVcpu: notifyVcpu, lastPriority: EVTCHN_FIFO_PRIORITY_DEFAULT, pending: false };
      this.ports.set(port, e);
    }
    return e;
  }

  /** evtchn_fifo_word_from_port, as the word's page and byte offset, or null past the array. */
  private word(port: number): [Uint8Array, number] | null {
    if (port >= this.numEvtchns) return null;
    return [this.pages[Math.floor(port / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE)]!, 4 * (port % EVTCHN_FIFO_EVENT_WORDS_PER_PAGE)];
  }

  /** The event word of `port` as the guest wrote it, or null without an array page. */
  readWord(port: number): number | null {
    const w = this.word(port);
    return w === null ? null : getU32(w[0], w[1]);
  }

  private writeWord(port: number, v: number): void {
    const w = this.word(port)!;
    setU32(w[0], w[1], v >>> 0);
  }

  /** map_control_block for vCPU `vcpu`: -EINVAL if it has one or the page is not its RAM. */
  mapControlBlock(vcpu: number, page: Uint8Array | null, offset: number): number {
    const fv = this.vcpus[vcpu]!;
    if (fv.page !== null) return -EINVAL;
    if (page === null) return -EINVAL;
    fv.page = page;
    fv.offset = offset;
    return 0;
  }

  /** setup_ports: each bound port keeps its 2-level pending state and gets the default priority. */
  setupPorts(ports: readonly { port: number; vcpu: number; pending: boolean }[]): void {
    for (const { port, vcpu, pending } of ports) {
      const e = this.port(port, vcpu);
      e.pending = pending;
      e.priority = EVTCHN_FIFO_PRIORITY_DEFAULT;
    }
  }

  /**
   * add_page_to_event_array: one more page of 1024 words; returns the ports of the new page that
   * were raised while it was missing (the caller raises them again), or an errno.
   */
  addPage(page: Uint8Array | null): number[] | number {
    if (this.pages.length >= EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES) return -ENOSPC;
    if (page === null) return -EINVAL;
    const first = this.numEvtchns;
    this.pages.push(page);
    const again: number[] = [];
    for (const [p, e] of this.ports) if (p >= first && p < this.numEvtchns && e.pending) again.push(p);
    return again.sort((a, b) => a - b);
  }

  /** evtchn_fifo_set_priority. */
  setPriority(port: number, notifyVcpu: number, priority: number): number {
    if (priority > EVTCHN_FIFO_PRIORITY_MIN) return -EINVAL;
    // Only future events use the new queue; one already linked stays on the old one.
    this.port(port, notifyVcpu).priority = priority;
    return 0;
  }

  /** The port's priority (for EVTCHNOP_status-like checks and tests). */
  priorityOf(port: number): number {
    return this.ports.get(port)?.priority ?? EVTCHN_FIFO_PRIORITY_DEFAULT;
  }

  /** A port closed: it starts again at the default priority. */
  forget(port: number): void {
    this.ports.delete(port);
  }

  /**
   * evtchn_fifo_set_pending for `port`, delivered to vCPU `vcpu`. Returns what happened, and
   * whether the vCPU must be marked as having events pending (the queue's READY bit went 0→1).
   */
  setPending(port: number, vcpu: number): { outcome: 'kicked' | 'linked' | 'pending' | 'masked' | 'noword' | 'nocontrol'; mark: boolean } {
    const e = this.port(port, vcpu);
    const w0 = this.readWord(port);
    if (w0 === null) {
      // "Event array page may not exist yet, save the pending state for when the page is added."
      e.pending = true;
      return { outcome: 'noword', mark: false };
    }
    const wasPending = (w0 & P) !== 0;
    let w = (w0 | P) >>> 0;
    this.writeWord(port, w);
    if ((w & M) !== 0) return { outcome: 'masked', mark: false };
    if ((w & L) !== 0) return { outcome: wasPending ? 'pending' : 'linked', mark: false };
    const fv = this.vcpus[vcpu]!;
    // "Control block not mapped. The guest must not unmask an event until the control block
    // is initialized, so we can just drop the event."
    if (fv.page === null) return { outcome: 'nocontrol', mark: false };
    const q = fv.queues[e.priority]!;
    const oldQ = this.vcpus[e.lastVcpu]!.queues[e.lastPriority]!;
    w = (w | L) >>> 0;
    this.writeWord(port, w);
    // If this event was a tail, the old queue is now empty: invalidate its tail so a later
    // event there cannot corrupt the new queue.
    if (oldQ.tail === port) oldQ.tail = 0;
    if (oldQ !== q) {
      e.lastVcpu = vcpu;
      e.lastPriority = e.priority;
    }
    // Link the tail to this port iff the tail is still LINKED; if the guest has unlinked it
    // (consumed it), the queue is empty and HEAD must be written instead.
    let linked = false;
    if (q.tail !== 0) {
      const tw = this.readWord(q.tail);
      if (tw !== null && (tw & L) !== 0) {
        this.writeWord(q.tail, ((tw & ~(B | EVTCHN_FIFO_LINK_MASK)) | port) >>> 0);
        linked = true;
      }
    }
    if (!linked) setU32(fv.page, fv.offset + EVTCHN_FIFO_CONTROL_BLOCK.head + 4 * e.priority, port);
    q.tail = port;
    if (linked) return { outcome: 'linked', mark: false };
    const readyOff = fv.offset + EVTCHN_FIFO_CONTROL_BLOCK.ready;
    const ready = getU32(fv.page, readyOff);
    const r = bit(e.priority);
    if ((ready & r) !== 0) return { outcome: 'linked', mark: false };
    setU32(fv.page, readyOff, (ready | r) >>> 0);
    return { outcome: 'kicked', mark: true };
  }

  /** evtchn_fifo_unmask: clear MASKED; a pending event is linked again. Returns whether it is pending. */
  unmask(port: number): boolean {
    const w = this.readWord(port);
    if (w === null) return false;
    this.writeWord(port, w & ~M);
    return (w & P) !== 0;
  }

  /** evtchn_fifo_clear_pending: just the P bit ("the guest will unlink and ignore non-pending events"). */
  clearPending(port: number): void {
    const w = this.readWord(port);
    if (w !== null) this.writeWord(port, w & ~P);
  }

  /** evtchn_fifo_is_pending. */
  isPending(port: number): boolean {
    const w = this.readWord(port);
    return w !== null && (w & P) !== 0;
  }
}

/** EVTCHNOP_init_control's argument checks, in Xen's order (before any state changes). */
export function checkInitControl(a: EvtchnInitControl, nvcpus: number): number {
  a.link_bits = EVTCHN_FIFO_LINK_BITS;
  const vcpu = a.vcpu >>> 0;
  if (vcpu >= nvcpus) return -ENOENT;
  const offset = a.offset >>> 0;
  // Must not cross a page boundary; must be 8-byte aligned.
  if (offset > PAGE_SIZE - EVTCHN_FIFO_CONTROL_BLOCK.size) return -EINVAL;
  if ((offset & 7) !== 0) return -EINVAL;
  return 0;
}
