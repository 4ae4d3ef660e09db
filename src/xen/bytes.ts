/**
 * Little-endian field access and bit operations on page bytes, as x86 sees memory. Shared by
 * Xen's side and the guests' side of every structure that lives in a shared page (grant
 * entries, shared info, ioreq slots), so both read the same bytes the same way. A bit `n` of a
 * bitmap of little-endian words is bit `n % 8` of byte `n / 8`, whatever the word size.
 */

export function getU16(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export function setU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

export function getU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function setU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

export function getU64(b: Uint8Array, off: number): bigint {
  return BigInt(getU32(b, off)) | (BigInt(getU32(b, off + 4)) << 32n);
}

export function setU64(b: Uint8Array, off: number, v: bigint): void {
  const x = BigInt.asUintN(64, v);
  setU32(b, off, Number(x & 0xffffffffn));
  setU32(b, off + 4, Number(x >> 32n));
}

export function testBit(b: Uint8Array, base: number, bit: number): boolean {
  return (b[base + (bit >>> 3)]! & (1 << (bit & 7))) !== 0;
}

/** Sets the bit; returns whether it was set before (test_and_set_bit). */
export function testAndSetBit(b: Uint8Array, base: number, bit: number): boolean {
  const i = base + (bit >>> 3);
  const m = 1 << (bit & 7);
  const old = (b[i]! & m) !== 0;
  b[i] = b[i]! | m;
  return old;
}

/** Clears the bit; returns whether it was set before (test_and_clear_bit). */
export function testAndClearBit(b: Uint8Array, base: number, bit: number): boolean {
  const i = base + (bit >>> 3);
  const m = 1 << (bit & 7);
  const old = (b[i]! & m) !== 0;
  b[i] = b[i]! & ~m;
  return old;
}
