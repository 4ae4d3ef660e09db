import { readU16, writeU16 } from './addr.js';
import { WireError } from './error.js';
import { IPPROTO_UDP } from './ipv4.js';
import { fillL4Checksum, l4ChecksumValid, type RxChecksum, type TxChecksum } from './l4-checksum.js';

/** UDP header (RFC 768). */
export const UDP = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6, HEADER_LEN: 8 } as const;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  /** Payload bytes (the length field minus 8). */
  payloadLen: number;
}

/**
 * Parses a UDP header; `len` is the IP payload length. The length field must lie within
 * [8, len] (RFC 768; RFC 1122 4.1.3.4 says to drop a datagram whose length is inconsistent).
 * A zero checksum means none was computed (RFC 768), accepted over IPv4.
 */
export function parseUdp(buf: Uint8Array, off: number, len: number, src: number, dst: number, rx: RxChecksum): UdpRepr | WireError {
  if (len < UDP.HEADER_LEN) return new WireError('udp', 'truncated', `datagram of ${len} bytes is shorter than the 8-byte header`);
  const length = readU16(buf, off + UDP.LENGTH);
  if (length < UDP.HEADER_LEN || length > len) return new WireError('udp', 'badLength', `length field ${length} is outside [8, ${len}]`);
  if (rx === 'verify' && readU16(buf, off + UDP.CHECKSUM) !== 0 && !l4ChecksumValid(buf, off, length, src, dst, IPPROTO_UDP)) {
    return new WireError('udp', 'badChecksum', `checksum 0x${readU16(buf, off + UDP.CHECKSUM).toString(16)} does not verify`);
  }
  return { srcPort: readU16(buf, off + UDP.SRC_PORT), dstPort: readU16(buf, off + UDP.DST_PORT), payloadLen: length - UDP.HEADER_LEN };
}

/** Writes the header over a payload already at `off + 8`, then the checksum as `tx` says. */
export function emitUdp(r: UdpRepr, buf: Uint8Array, off: number, src: number, dst: number, tx: TxChecksum): void {
  writeU16(buf, off + UDP.SRC_PORT, r.srcPort);
  writeU16(buf, off + UDP.DST_PORT, r.dstPort);
  writeU16(buf, off + UDP.LENGTH, UDP.HEADER_LEN + r.payloadLen);
  fillL4Checksum(buf, off, UDP.HEADER_LEN + r.payloadLen, UDP.CHECKSUM, src, dst, IPPROTO_UDP, tx, true);
}
