import { readU16, writeU16 } from './addr.js';
import { fold, internetChecksum, sumBytes } from './checksum.js';
import { WireError } from './error.js';

/** ICMP echo (RFC 792): type, code, checksum, identifier, sequence, data. */
export const ICMP = { TYPE: 0, CODE: 1, CHECKSUM: 2, IDENT: 4, SEQ: 6, HEADER_LEN: 8 } as const;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;

export interface IcmpRepr {
  type: number;
  code: number;
  /** Identifier and sequence (echo); the unused/next-hop-MTU word for other types. */
  ident: number;
  seq: number;
  /** Offset and length of the data after the 8-byte header, within the parsed buffer. */
  dataOff: number;
  dataLen: number;
}

/** Parses an ICMP message and verifies its checksum (RFC 792: over the whole ICMP message). */
export function parseIcmp(buf: Uint8Array, off: number, len: number): IcmpRepr | WireError {
  if (len < ICMP.HEADER_LEN) return new WireError('icmp', 'truncated', `message of ${len} bytes is shorter than the 8-byte header`);
  if (fold(sumBytes(buf, off, len)) !== 0xffff)
    return new WireError('icmp', 'badChecksum', `checksum 0x${readU16(buf, off + ICMP.CHECKSUM).toString(16)} does not verify`);
  return {
    type: buf[off]!,
    code: buf[off + 1]!,
    ident: readU16(buf, off + ICMP.IDENT),
    seq: readU16(buf, off + ICMP.SEQ),
    dataOff: off + ICMP.HEADER_LEN,
    dataLen: len - ICMP.HEADER_LEN,
  };
}

/** Writes the 8-byte header over data already at `off + 8 .. off + 8 + dataLen`, with the checksum. */
export function emitIcmp(r: Omit<IcmpRepr, 'dataOff'>, buf: Uint8Array, off: number): void {
  buf[off] = r.type;
  buf[off + 1] = r.code;
  writeU16(buf, off + ICMP.CHECKSUM, 0);
  writeU16(buf, off + ICMP.IDENT, r.ident);
  writeU16(buf, off + ICMP.SEQ, r.seq);
  writeU16(buf, off + ICMP.CHECKSUM, internetChecksum(buf, off, ICMP.HEADER_LEN + r.dataLen));
}
