import {
  XENSTORE_RING_REQ_CONS_OFFSET,
  XENSTORE_RING_REQ_OFFSET,
  XENSTORE_RING_REQ_PROD_OFFSET,
  XENSTORE_RING_RSP_CONS_OFFSET,
  XENSTORE_RING_RSP_OFFSET,
  XENSTORE_RING_RSP_PROD_OFFSET,
  XENSTORE_RING_SIZE,
} from '../abi/xs-wire.js';

/**
 * One direction of the xenstore ring page (struct xenstore_domain_interface, xen-abi.md §1.1):
 * a 1024-byte byte ring with free-running 32-bit producer and consumer indices, byte x at
 * x % 1024. The indices are read from the shared page every time, because the other side
 * writes them; a pair whose distance exceeds the ring size is corrupt (xenstored's
 * check_indexes) and the accessor reports it instead of trusting it.
 */
export class XsByteRing {
  private readonly view: DataView;

  constructor(
    private readonly page: Uint8Array,
    private readonly dataOff: number,
    private readonly consOff: number,
    private readonly prodOff: number,
  ) {
    this.view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  }

  get cons(): number {
    return this.view.getUint32(this.consOff, true);
  }

  get prod(): number {
    return this.view.getUint32(this.prodOff, true);
  }

  /** Bytes written and not yet consumed, or -1 if the indices are corrupt. */
  available(): number {
    const n = (this.prod - this.cons) >>> 0;
    return n <= XENSTORE_RING_SIZE ? n : -1;
  }

  /** Bytes the producer may write now, or -1 if the indices are corrupt. */
  space(): number {
    const n = this.available();
    return n < 0 ? -1 : XENSTORE_RING_SIZE - n;
  }

  /** Producer: copies as much of `src` as fits and publishes it; returns the bytes written. */
  write(src: Uint8Array): number {
    const room = this.space();
    if (room <= 0) return 0;
    const n = Math.min(room, src.length);
    const prod = this.prod;
    for (let i = 0; i < n; i++) this.page[this.dataOff + ((prod + i) % XENSTORE_RING_SIZE)] = src[i]!;
    this.view.setUint32(this.prodOff, (prod + n) >>> 0, true);
    return n;
  }

  /** Consumer: takes up to `max` bytes and releases their space; empty if none or corrupt. */
  read(max = XENSTORE_RING_SIZE): Uint8Array {
    const avail = this.available();
    if (avail <= 0) return new Uint8Array(0);
    const n = Math.min(avail, max);
    const cons = this.cons;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.page[this.dataOff + ((cons + i) % XENSTORE_RING_SIZE)]!;
    this.view.setUint32(this.consOff, (cons + n) >>> 0, true);
    return out;
  }
}

/** Both rings of a xenstore page: `req` guest → xenstored, `rsp` xenstored → guest. */
export function xenstoreRings(page: Uint8Array): { req: XsByteRing; rsp: XsByteRing } {
  return {
    req: new XsByteRing(page, XENSTORE_RING_REQ_OFFSET, XENSTORE_RING_REQ_CONS_OFFSET, XENSTORE_RING_REQ_PROD_OFFSET),
    rsp: new XsByteRing(page, XENSTORE_RING_RSP_OFFSET, XENSTORE_RING_RSP_CONS_OFFSET, XENSTORE_RING_RSP_PROD_OFFSET),
  };
}
