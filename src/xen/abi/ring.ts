/**
 * Shared I/O rings (xen/include/public/io/ring.h): the layout of the shared page and the
 * size arithmetic, plus the slot codec interface every ring protocol's structures implement
 * (shared/reference/xen-abi.md §5). Behaviour (the front and back views) is in src/xen/ring.ts.
 */

/** Byte offsets in `struct <name>_sring`: four RING_IDX (u32), the `pvt` union, 44 bytes of padding, then the entries. */
export const SRING = { req_prod: 0, req_event: 4, rsp_prod: 8, rsp_event: 12, pvt: 16, pad: 20, ring: 64 } as const;
/** Bytes before the first entry (offsetof(sring, ring)). */
export const SRING_HEADER_SIZE = 64;
/** netif's use of the `pvt` union: `pvt.netif.smartpoll_active` (u8 at offset 16). */
export const SRING_NETIF_SMARTPOLL_ACTIVE = 16;

/** __RD32: the largest power of two ≤ n (0 for n < 1), for n < 2^32. */
export function rd32(n: number): number {
  let p = 0;
  for (let x = 1; x <= n && x <= 0x80000000; x *= 2) p = x;
  return p;
}

/**
 * __CONST_RING_SIZE / __RING_SIZE: entries of `entrySize` bytes a ring of `bytes` shared bytes
 * holds — the largest power of two that fits after the 64-byte header.
 */
export function ringSize(bytes: number, entrySize: number): number {
  if (!Number.isInteger(entrySize) || entrySize <= 0) throw new RangeError(`ring entry size ${entrySize}: expected a positive integer`);
  return rd32(Math.floor((bytes - SRING_HEADER_SIZE) / entrySize));
}

/**
 * How one C structure sits in a ring slot: `size` is its sizeof, `encode` writes it at
 * `off` of `b`, `decode` reads it from `off` of `b`. The ring hands `decode` a private copy
 * of the slot (RING_COPY_REQUEST/RESPONSE), never the shared page, so a decoder may read a
 * field as often as it likes. Decoders read what is there (every bit pattern decodes);
 * validating the fields is the protocol's job, on the decoded copy.
 */
export interface SlotCodec<T> {
  readonly size: number;
  encode(v: T, b: Uint8Array, off: number): void;
  decode(b: Uint8Array, off: number): T;
}

/** sizeof(union <name>_sring_entry) for a request and a response of these sizes and alignment (default 4, a RING_IDX-sized field). */
export function ringEntrySize(reqSize: number, rspSize: number, align = 4): number {
  const m = Math.max(reqSize, rspSize);
  return Math.ceil(m / align) * align;
}
