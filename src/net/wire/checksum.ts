/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum
 * of the data taken as big-endian 16-bit words. Sums are kept unfolded in a JS number (exact
 * far beyond any packet) and folded once at the end (RFC 1071 section 2(C), "deferred carries").
 */

/** Adds `len` bytes at `off` to a running sum. An odd trailing byte is padded with zero. */
export function sumBytes(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let s = initial;
  const end = off + len;
  const even = off + (len & ~1);
  let i = off;
  for (; i + 8 <= even; i += 8) {
    s +=
      ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!) + ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i < even; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

/** Folds a running sum to 16 bits with end-around carry (RFC 1071 section 2(B)). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value for `len` bytes at `off`: ~fold(sum). */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sumBytes(buf, off, len, initial)) & 0xffff;
}

/** The IPv4 pseudo-header sum for TCP/UDP (RFC 9293 section 3.1; RFC 768). */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, l4Length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length;
}

/**
 * Incremental update of a checksum field when one 16-bit word changes from `oldWord` to
 * `newWord` (RFC 1624 equation 3: HC' = ~(~HC + ~m + m')).
 */
export function updateChecksum(check: number, oldWord: number, newWord: number): number {
  return ~fold((~check & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff;
}
