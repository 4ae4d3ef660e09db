import { PAGE_SIZE, SRING, SRING_HEADER_SIZE, ringSize, type SlotCodec } from './abi/index.js';
import { getU32, setU32 } from './bytes.js';
import type { GuestMemory } from './memory.js';
import type { ForeignMapping } from './memory-op.js';

/**
 * Xen's shared I/O rings (xen/include/public/io/ring.h) over real shared bytes: the `sring`
 * header and slots in a page, and the front and back views with their private indices, as
 * the macros compute them (shared/reference/xen-abi.md §5). Indices are free-running u32s:
 * every difference is taken modulo 2^32, so they wrap as RING_IDX does.
 *
 * The page is reached through a `RingPage`, a byte view of the shared memory, so one ring
 * works over a domain's own frame, a grant mapping of another domain's frame, or a privileged
 * foreign mapping. Every read of the shared page goes through the view, once per field the C
 * macro reads; a slot the consumer takes is copied out once and decoded from that private
 * copy (RING_COPY_REQUEST/RESPONSE; no double fetch, XSA-155).
 *
 * An index written by the other end that claims more than the ring can hold is returned as
 * a RingError value, never thrown and never looped over; the caller treats it as a fatal
 * ring error (netback: xenvif_fatal_tx_err; netfront: "Illegal number of responses").
 * Misuse by the ring's own driver (producing into a full ring) is a model bug and throws.
 */

/** The bytes of a ring's shared memory as one end sees them (a kernel mapping of the page). */
export interface RingPage {
  readonly byteLength: number;
  getU32(off: number): number;
  setU32(off: number, v: number): void;
  /** Copies `dst.length` bytes at `off` into `dst`: one fetch of shared memory. */
  readInto(off: number, dst: Uint8Array): void;
  write(off: number, src: Uint8Array): void;
}

/** A view of live page bytes: a domain's own frame (`mem.view(gfn)`), or a mapped page. */
export function bytesPage(page: Uint8Array): RingPage {
  return {
    byteLength: page.length,
    getU32: (off) => getU32(page, off),
    setU32: (off, v) => setU32(page, off, v),
    readInto: (off, dst) => dst.set(page.subarray(off, off + dst.length)),
    write: (off, src) => page.set(src, off),
  };
}

/**
 * A frame of `mem` reached through the guest's own accessors at every access, as a kernel
 * pointer into its physical address space: the frame may be the guest's RAM or a grant
 * mapping Xen placed there, and once it is unmapped every access is a GuestFault.
 */
export function guestFramePage(mem: GuestMemory, gfn: number): RingPage {
  const base = gfn * PAGE_SIZE;
  return {
    byteLength: PAGE_SIZE,
    getU32: (off) => mem.readU32(base + off),
    setU32: (off, v) => mem.writeU32(base + off, v),
    readInto: (off, dst) => mem.readInto(base + off, dst),
    write: (off, src) => mem.write(base + off, src),
  };
}

/** Page `i` of a privileged foreign mapping (xenforeignmemory_map of another domain's frame). */
export function foreignPage(mapping: ForeignMapping, i: number): RingPage {
  return bytesPage(mapping.page(i));
}

/** Several pages as one contiguous range (a multi-page ring mapped with xenbus_map_ring_valloc, as vmap does). */
export function concatPages(pages: readonly RingPage[]): RingPage {
  if (pages.length === 1) return pages[0]!;
  const size = pages.reduce((n, p) => n + p.byteLength, 0);
  const split = (off: number, len: number, fn: (p: RingPage, o: number, done: number, n: number) => void): void => {
    if (!Number.isInteger(off) || off < 0 || off + len > size) throw new RangeError(`ring access at ${off}+${len} is outside its ${size} bytes`);
    let done = 0;
    let i = 0;
    let start = 0;
    while (done < len) {
      const p = pages[i]!;
      const at = off + done;
      if (at >= start + p.byteLength) {
        start += p.byteLength;
        i++;
        continue;
      }
      const n = Math.min(start + p.byteLength - at, len - done);
      fn(p, at - start, done, n);
      done += n;
    }
  };
  const tmp = new Uint8Array(4);
  return {
    byteLength: size,
    getU32(off) {
      split(off, 4, (p, o, d, n) => {
        const part = new Uint8Array(n);
        p.readInto(o, part);
        tmp.set(part, d);
      });
      return getU32(tmp, 0);
    },
    setU32(off, v) {
      const b = new Uint8Array(4);
      setU32(b, 0, v);
      split(off, 4, (p, o, d, n) => p.write(o, b.subarray(d, d + n)));
    },
    readInto(off, dst) {
      split(off, dst.length, (p, o, d, n) => p.readInto(o, dst.subarray(d, d + n)));
    },
    write(off, src) {
      split(off, src.length, (p, o, d, n) => p.write(o, src.subarray(d, d + n)));
    },
  };
}

/** A peer's producer index that cannot be right: more entries than the ring can hold. */
export class RingError extends Error {
  constructor(
    /** Which index: the front's req_prod (seen by the back) or the back's rsp_prod (seen by the front). */
    readonly index: 'req_prod' | 'rsp_prod',
    /** The value read from the shared page. */
    readonly prod: number,
    /** The private index it was checked against (rsp_prod_pvt for requests, rsp_cons for responses). */
    readonly against: number,
    readonly size: number,
  ) {
    super(
      index === 'req_prod'
        ? `ring: req_prod ${prod} is ${(prod - against) >>> 0} requests past rsp_prod_pvt ${against}; a ring of ${size} cannot hold that many (RING_REQUEST_PROD_OVERFLOW)`
        : `ring: rsp_prod ${prod} is ${(prod - against) >>> 0} responses past rsp_cons ${against}, more than were requested (RING_RESPONSE_PROD_OVERFLOW)`,
    );
    this.name = 'RingError';
  }
}

/** The shared half (`struct <name>_sring`): the four indices in the page and its slots. */
export class SharedRing {
  /** RING_SIZE: entries, the largest power of two that fits (__RING_SIZE). */
  readonly size: number;

  constructor(
    readonly page: RingPage,
    readonly entrySize: number,
  ) {
    this.size = ringSize(page.byteLength, entrySize);
    if (this.size === 0) throw new RangeError(`a ${page.byteLength}-byte ring holds no ${entrySize}-byte entry`);
  }

  get reqProd(): number {
    return this.page.getU32(SRING.req_prod);
  }
  set reqProd(v: number) {
    this.page.setU32(SRING.req_prod, v >>> 0);
  }
  get reqEvent(): number {
    return this.page.getU32(SRING.req_event);
  }
  set reqEvent(v: number) {
    this.page.setU32(SRING.req_event, v >>> 0);
  }
  get rspProd(): number {
    return this.page.getU32(SRING.rsp_prod);
  }
  set rspProd(v: number) {
    this.page.setU32(SRING.rsp_prod, v >>> 0);
  }
  get rspEvent(): number {
    return this.page.getU32(SRING.rsp_event);
  }
  set rspEvent(v: number) {
    this.page.setU32(SRING.rsp_event, v >>> 0);
  }

  /** SHARED_RING_INIT: producers 0, events 1, `pvt` and padding zeroed (only the front does this). */
  init(): void {
    this.reqProd = 0;
    this.rspProd = 0;
    this.reqEvent = 1;
    this.rspEvent = 1;
    this.page.write(SRING.pvt, new Uint8Array(SRING_HEADER_SIZE - SRING.pvt));
  }

  /** Byte offset of index `idx`'s slot: ring[idx & (size - 1)]. */
  slotOffset(idx: number): number {
    return SRING.ring + ((idx >>> 0) & (this.size - 1)) * this.entrySize;
  }
}

/** Entry size of a ring of these codecs: the larger, as a C union of the two (pass `entrySize` when alignment adds padding). */
function entryOf(req: SlotCodec<unknown>, rsp: SlotCodec<unknown>, entrySize?: number): number {
  const e = entrySize ?? Math.max(req.size, rsp.size);
  if (req.size > e || rsp.size > e)
    throw new RangeError(`ring entry of ${e} bytes is smaller than its request (${req.size}) or response (${rsp.size})`);
  return e;
}

/** State common to both ends: the shared ring, a scratch slot, and the copy-out/encode paths. */
abstract class RingEnd<Req, Rsp> {
  readonly sring: SharedRing;
  private readonly scratch: Uint8Array;

  protected constructor(
    page: RingPage,
    readonly req: SlotCodec<Req>,
    readonly rsp: SlotCodec<Rsp>,
    entrySize?: number,
  ) {
    this.sring = new SharedRing(page, entryOf(req, rsp, entrySize));
    this.scratch = new Uint8Array(this.sring.entrySize);
  }

  /** RING_SIZE. */
  get size(): number {
    return this.sring.size;
  }

  /** Copies slot `idx` out of the shared page once and decodes the private copy. */
  protected copySlot<T>(idx: number, codec: SlotCodec<T>): T {
    this.checkCodec(codec);
    const buf = new Uint8Array(codec.size);
    this.sring.page.readInto(this.sring.slotOffset(idx), buf);
    return codec.decode(buf, 0);
  }

  /** Encodes `v` and writes it into slot `idx`. */
  protected writeSlot<T>(idx: number, codec: SlotCodec<T>, v: T): void {
    this.checkCodec(codec);
    const buf = this.scratch.subarray(0, codec.size);
    buf.fill(0);
    codec.encode(v, buf, 0);
    this.sring.page.write(this.sring.slotOffset(idx), buf);
  }

  private checkCodec(codec: SlotCodec<unknown>): void {
    if (codec.size > this.sring.entrySize)
      throw new RangeError(`a ${codec.size}-byte structure does not fit a ${this.sring.entrySize}-byte ring slot`);
  }
}

/**
 * The front end (`<name>_front_ring`): produces requests, consumes responses. `reqProdPvt`
 * and `rspCons` are private to this end; drivers may set them as Linux drivers assign
 * `req_prod_pvt`/`rsp_cons` (values are taken modulo 2^32).
 */
export class FrontRing<Req, Rsp> extends RingEnd<Req, Rsp> {
  private _reqProdPvt: number;
  private _rspCons: number;

  private constructor(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, start: number, entrySize?: number) {
    super(page, req, rsp, entrySize);
    this._reqProdPvt = start >>> 0;
    this._rspCons = start >>> 0;
  }

  /** SHARED_RING_INIT + FRONT_RING_INIT: the front initialises the shared page it allocated. */
  static init<Req, Rsp>(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, entrySize?: number): FrontRing<Req, Rsp> {
    const r = new FrontRing(page, req, rsp, 0, entrySize);
    r.sring.init();
    return r;
  }

  /** FRONT_RING_ATTACH: a front view of an already initialised ring, private indices at `start`. */
  static attach<Req, Rsp>(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, start: number, entrySize?: number): FrontRing<Req, Rsp> {
    return new FrontRing(page, req, rsp, start, entrySize);
  }

  get reqProdPvt(): number {
    return this._reqProdPvt;
  }
  set reqProdPvt(v: number) {
    this._reqProdPvt = v >>> 0;
  }
  get rspCons(): number {
    return this._rspCons;
  }
  set rspCons(v: number) {
    this._rspCons = v >>> 0;
  }

  /** RING_FREE_REQUESTS. */
  freeRequests(): number {
    return this.size - ((this._reqProdPvt - this._rspCons) >>> 0);
  }

  /** RING_FULL. */
  full(): boolean {
    return this.freeRequests() === 0;
  }

  /**
   * Writes `v` at RING_GET_REQUEST(req_prod_pvt) and advances req_prod_pvt (not yet visible
   * to the back: push). Returns the index used. Throws if the ring is full (a driver bug).
   */
  putRequest(v: Req): number {
    return this.putRequestAs(this.req, v);
  }

  /** putRequest with another structure in the slot (netif: an extra-info segment in a TX slot). */
  putRequestAs<T>(codec: SlotCodec<T>, v: T): number {
    if (this.freeRequests() <= 0)
      throw new RangeError(
        `ring full: ${this.size} requests outstanding (req_prod_pvt ${this._reqProdPvt}, rsp_cons ${this._rspCons}); the driver must check RING_FULL`,
      );
    const idx = this._reqProdPvt;
    this.writeSlot(idx, codec, v);
    this._reqProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RING_PUSH_REQUESTS: publishes req_prod_pvt as req_prod. */
  pushRequests(): void {
    this.sring.reqProd = this._reqProdPvt;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publishes, then whether the back asked to be notified (req_event in (old, new]). */
  pushRequestsAndCheckNotify(): boolean {
    const old = this.sring.reqProd;
    const nw = this._reqProdPvt;
    this.sring.reqProd = nw;
    return (nw - this.sring.reqEvent) >>> 0 < (nw - old) >>> 0;
  }

  /**
   * The back's rsp_prod, read once and checked: a RingError if it claims more responses than
   * requests this front has produced (RING_RESPONSE_PROD_OVERFLOW, and responses can never
   * outnumber requests). Consume up to (not including) the returned index.
   */
  responseProd(): number | RingError {
    const prod = this.sring.rspProd;
    const n = (prod - this._rspCons) >>> 0;
    if (n > this.size || n > (this._reqProdPvt - this._rspCons) >>> 0) return new RingError('rsp_prod', prod, this._rspCons, this.size);
    return prod;
  }

  /** RING_HAS_UNCONSUMED_RESPONSES: rsp_prod − rsp_cons, or a RingError (see responseProd). */
  unconsumedResponses(): number | RingError {
    const prod = this.responseProd();
    return typeof prod === 'number' ? (prod - this._rspCons) >>> 0 : prod;
  }

  /** RING_COPY_RESPONSE at `idx`: one copy out of the shared slot, decoded privately. */
  copyResponse(idx: number): Rsp {
    return this.copySlot(idx, this.rsp);
  }

  /** RING_COPY_RESPONSE of `idx` as another structure (netif RX: an extra-info segment). */
  copyResponseAs<T>(idx: number, codec: SlotCodec<T>): T {
    return this.copySlot(idx, codec);
  }

  /** Copies the response at rsp_cons and advances rsp_cons; only after unconsumedResponses() > 0. */
  consumeResponse(): Rsp {
    const v = this.copySlot(this._rspCons, this.rsp);
    this._rspCons = (this._rspCons + 1) >>> 0;
    return v;
  }

  /**
   * RING_FINAL_CHECK_FOR_RESPONSES: unconsumed responses; if none, sets rsp_event =
   * rsp_cons + 1 (a kick for the next one) and looks again. Sleep only on 0.
   */
  finalCheckForResponses(): number | RingError {
    const n = this.unconsumedResponses();
    if (n !== 0) return n;
    this.sring.rspEvent = (this._rspCons + 1) >>> 0;
    return this.unconsumedResponses();
  }
}

/**
 * The back end (`<name>_back_ring`): consumes requests, produces responses (a response
 * goes into the slot of the request it answers). `reqCons` and `rspProdPvt` are private
 * to this end; drivers may set them as Linux backends assign `req_cons`.
 */
export class BackRing<Req, Rsp> extends RingEnd<Req, Rsp> {
  private _rspProdPvt: number;
  private _reqCons: number;

  private constructor(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, start: number, entrySize?: number) {
    super(page, req, rsp, entrySize);
    this._rspProdPvt = start >>> 0;
    this._reqCons = start >>> 0;
  }

  /** BACK_RING_INIT: the back never initialises the shared page; private indices at 0. */
  static init<Req, Rsp>(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, entrySize?: number): BackRing<Req, Rsp> {
    return new BackRing(page, req, rsp, 0, entrySize);
  }

  /** BACK_RING_ATTACH: private indices at `start` (netback attaches at the ring's rsp_prod). */
  static attach<Req, Rsp>(page: RingPage, req: SlotCodec<Req>, rsp: SlotCodec<Rsp>, start: number, entrySize?: number): BackRing<Req, Rsp> {
    return new BackRing(page, req, rsp, start, entrySize);
  }

  get reqCons(): number {
    return this._reqCons;
  }
  set reqCons(v: number) {
    this._reqCons = v >>> 0;
  }
  get rspProdPvt(): number {
    return this._rspProdPvt;
  }
  set rspProdPvt(v: number) {
    this._rspProdPvt = v >>> 0;
  }

  /**
   * The front's req_prod, read once and checked: a RingError if it claims more requests than
   * the ring holds beyond the responses produced (RING_REQUEST_PROD_OVERFLOW), which also
   * catches a req_prod moved backwards. Consume up to (not including) the returned index.
   */
  requestProd(): number | RingError {
    const prod = this.sring.reqProd;
    if ((prod - this._rspProdPvt) >>> 0 > this.size) return new RingError('req_prod', prod, this._rspProdPvt, this.size);
    return prod;
  }

  /**
   * RING_HAS_UNCONSUMED_REQUESTS: min(req_prod − req_cons, size − (req_cons − rsp_prod_pvt)),
   * with req_prod read once and checked (requestProd).
   */
  unconsumedRequests(): number | RingError {
    const prod = this.requestProd();
    if (typeof prod !== 'number') return prod;
    const req = (prod - this._reqCons) >>> 0;
    const rsp = this.size - ((this._reqCons - this._rspProdPvt) >>> 0);
    return req < rsp ? req : rsp;
  }

  /** RING_REQUEST_CONS_OVERFLOW: whether consuming at `cons` would overrun unanswered requests. */
  requestConsOverflow(cons: number): boolean {
    return (cons - this._rspProdPvt) >>> 0 >= this.size;
  }

  /** RING_COPY_REQUEST at `idx`: one copy out of the shared slot, decoded privately. */
  copyRequest(idx: number): Req {
    return this.copySlot(idx, this.req);
  }

  /** RING_COPY_REQUEST of `idx` as another structure (netif TX: an extra-info segment). */
  copyRequestAs<T>(idx: number, codec: SlotCodec<T>): T {
    return this.copySlot(idx, codec);
  }

  /** Copies the request at req_cons and advances req_cons; only after unconsumedRequests() > 0. */
  consumeRequest(): Req {
    const v = this.copySlot(this._reqCons, this.req);
    this._reqCons = (this._reqCons + 1) >>> 0;
    return v;
  }

  /**
   * Writes `v` at RING_GET_RESPONSE(rsp_prod_pvt) and advances rsp_prod_pvt (push to
   * publish). Throws if no consumed request is left to answer (a driver bug).
   */
  putResponse(v: Rsp): number {
    return this.putResponseAs(this.rsp, v);
  }

  /** putResponse with another structure in the slot (netif RX: an extra-info segment). */
  putResponseAs<T>(codec: SlotCodec<T>, v: T): number {
    const idx = this._rspProdPvt;
    if (idx === this._reqCons) throw new RangeError(`ring: response ${idx} answers no consumed request (req_cons ${this._reqCons})`);
    this.writeSlot(idx, codec, v);
    this._rspProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RING_PUSH_RESPONSES. */
  pushResponses(): void {
    this.sring.rspProd = this._rspProdPvt;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: publishes, then whether rsp_event is in (old, new]. */
  pushResponsesAndCheckNotify(): boolean {
    const old = this.sring.rspProd;
    const nw = this._rspProdPvt;
    this.sring.rspProd = nw;
    return (nw - this.sring.rspEvent) >>> 0 < (nw - old) >>> 0;
  }

  /**
   * RING_FINAL_CHECK_FOR_REQUESTS: unconsumed requests; if none, sets req_event =
   * req_cons + 1 and looks again. Sleep only on 0.
   */
  finalCheckForRequests(): number | RingError {
    const n = this.unconsumedRequests();
    if (n !== 0) return n;
    this.sring.reqEvent = (this._reqCons + 1) >>> 0;
    return this.unconsumedRequests();
  }
}
