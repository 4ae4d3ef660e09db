import { writeU16 } from './addr.js';
import { fold, pseudoHeaderSum, sumBytes } from './checksum.js';

/**
 * How a transport checksum is produced on transmit, as a device's offload flags decide:
 * - 'full': computed in software over pseudo-header, header and payload.
 * - 'partial': left for the device (Linux CHECKSUM_PARTIAL; netif NETTXF_csum_blank): the
 *   field holds the folded pseudo-header sum, and whoever completes it sums from the L4
 *   header to the end and stores the complement (see completeChecksum).
 */
export type TxChecksum = 'full' | 'partial';

/**
 * How a transport checksum is treated on receive: 'verify' in software, or 'trusted' when the
 * device validated it (netif NETRXF_data_validated, Linux CHECKSUM_UNNECESSARY) or the packet
 * still carries a partial checksum from a local or paravirtual sender (CHECKSUM_PARTIAL).
 */
export type RxChecksum = 'verify' | 'trusted';

/** Writes the L4 checksum of the segment at `l4Off` (length `l4Len`), field at `l4Off + fieldOff`. */
export function fillL4Checksum(
  buf: Uint8Array,
  l4Off: number,
  l4Len: number,
  fieldOff: number,
  src: number,
  dst: number,
  protocol: number,
  mode: TxChecksum,
  zeroIsFfff: boolean,
): void {
  const pseudo = pseudoHeaderSum(src, dst, protocol, l4Len);
  writeU16(buf, l4Off + fieldOff, 0);
  if (mode === 'partial') {
    writeU16(buf, l4Off + fieldOff, fold(pseudo));
    return;
  }
  let c = ~fold(sumBytes(buf, l4Off, l4Len, pseudo)) & 0xffff;
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "none").
  if (c === 0 && zeroIsFfff) c = 0xffff;
  writeU16(buf, l4Off + fieldOff, c);
}

/** True if the L4 checksum verifies over pseudo-header + segment. */
export function l4ChecksumValid(buf: Uint8Array, l4Off: number, l4Len: number, src: number, dst: number, protocol: number): boolean {
  return fold(sumBytes(buf, l4Off, l4Len, pseudoHeaderSum(src, dst, protocol, l4Len))) === 0xffff;
}

/**
 * Completes a partial checksum (Linux skb_checksum_help; what a NIC does for csum_blank):
 * the field already holds the pseudo-header sum, so the sum from `start` to `end` is the
 * whole checksum.
 */
export function completeChecksum(buf: Uint8Array, start: number, end: number, fieldAt: number, zeroIsFfff: boolean): void {
  let c = ~fold(sumBytes(buf, start, end - start)) & 0xffff;
  if (c === 0 && zeroIsFfff) c = 0xffff;
  writeU16(buf, fieldAt, c);
}
