import { readU16, readU32, writeU16, writeU32, type Ipv4Addr } from './addr.js';
import { fold, internetChecksum, sumBytes } from './checksum.js';
import { WireError } from './error.js';

/** IPv4 header field offsets (RFC 791 section 3.1). */
export const IP = {
  VER_IHL: 0,
  TOS: 1,
  LENGTH: 2,
  IDENT: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
  HEADER_LEN: 20,
} as const;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;
/** Linux's default TTL (net.ipv4.ip_default_ttl, IPDEFTTL). */
export const DEFAULT_TTL = 64;

/** A view over an IPv4 header at `off`. */
export class Ipv4Packet {
  constructor(
    readonly buf: Uint8Array,
    readonly off = 0,
  ) {}
  get version(): number {
    return this.buf[this.off + IP.VER_IHL]! >>> 4;
  }
  get headerLen(): number {
    return (this.buf[this.off + IP.VER_IHL]! & 15) * 4;
  }
  get totalLen(): number {
    return readU16(this.buf, this.off + IP.LENGTH);
  }
  set totalLen(v: number) {
    writeU16(this.buf, this.off + IP.LENGTH, v);
  }
  get ident(): number {
    return readU16(this.buf, this.off + IP.IDENT);
  }
  set ident(v: number) {
    writeU16(this.buf, this.off + IP.IDENT, v);
  }
  get flagsFrag(): number {
    return readU16(this.buf, this.off + IP.FLAGS_FRAG);
  }
  set flagsFrag(v: number) {
    writeU16(this.buf, this.off + IP.FLAGS_FRAG, v);
  }
  get ttl(): number {
    return this.buf[this.off + IP.TTL]!;
  }
  get protocol(): number {
    return this.buf[this.off + IP.PROTOCOL]!;
  }
  get checksum(): number {
    return readU16(this.buf, this.off + IP.CHECKSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + IP.CHECKSUM, v);
  }
  get src(): Ipv4Addr {
    return readU32(this.buf, this.off + IP.SRC);
  }
  get dst(): Ipv4Addr {
    return readU32(this.buf, this.off + IP.DST);
  }
  /** Recomputes the header checksum (RFC 791: over the header only, field taken as zero). */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.headerLen);
  }
  checksumValid(): boolean {
    return fold(sumBytes(this.buf, this.off, this.headerLen)) === 0xffff;
  }
}

export interface Ipv4Repr {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  ttl: number;
  tos: number;
  ident: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset: number;
  /** Header length in bytes (20 unless options are present). */
  headerLen: number;
  /** Bytes after the header, from the total-length field. */
  payloadLen: number;
}

/**
 * Parses and validates an IPv4 header (RFC 791 section 3.1; RFC 1122 section 3.2.1.1-3.2.1.2):
 * version 4, IHL >= 5, total length within [IHL*4, available bytes], header checksum. The
 * header checksum is always verified: no device offloads it on receive in Linux (ip_rcv
 * checks ip_fast_csum whatever the NIC says). Bytes past the total length (Ethernet padding)
 * are ignored.
 */
export function parseIpv4(buf: Uint8Array, off: number, len: number): Ipv4Repr | WireError {
  if (len < IP.HEADER_LEN) return new WireError('ipv4', 'truncated', `packet of ${len} bytes is shorter than the 20-byte header`);
  const p = new Ipv4Packet(buf, off);
  if (p.version !== 4) return new WireError('ipv4', 'badVersion', `version ${p.version} is not 4`);
  const hl = p.headerLen;
  if (hl < IP.HEADER_LEN) return new WireError('ipv4', 'badHeaderLength', `IHL ${hl / 4} is below the minimum of 5`);
  if (hl > len) return new WireError('ipv4', 'truncated', `header length ${hl} exceeds the ${len} bytes received`);
  const total = p.totalLen;
  if (total < hl) return new WireError('ipv4', 'badTotalLength', `total length ${total} is smaller than the header length ${hl}`);
  if (total > len) return new WireError('ipv4', 'badTotalLength', `total length ${total} exceeds the ${len} bytes received`);
  if (!p.checksumValid())
    return new WireError('ipv4', 'badChecksum', `header checksum 0x${p.checksum.toString(16).padStart(4, '0')} does not verify`);
  const ff = p.flagsFrag;
  const fragOffset = (ff & OFFSET_MASK) * 8;
  const moreFragments = (ff & FLAG_MF) !== 0;
  if ((ff & 0x8000) !== 0) return new WireError('ipv4', 'badFragment', 'reserved flag bit is set (RFC 791: must be zero)');
  if (fragOffset + (total - hl) > 65535) return new WireError('ipv4', 'badFragment', `fragment ends at ${fragOffset + total - hl}, beyond 65535`);
  return {
    src: p.src,
    dst: p.dst,
    protocol: p.protocol,
    ttl: p.ttl,
    tos: buf[off + IP.TOS]!,
    ident: p.ident,
    dontFragment: (ff & FLAG_DF) !== 0,
    moreFragments,
    fragOffset,
    headerLen: hl,
    payloadLen: total - hl,
  };
}

/** Writes a 20-byte header (no options) with its checksum. */
export function emitIpv4(r: Omit<Ipv4Repr, 'headerLen'>, buf: Uint8Array, off: number): void {
  buf[off + IP.VER_IHL] = 0x45;
  buf[off + IP.TOS] = r.tos;
  writeU16(buf, off + IP.LENGTH, IP.HEADER_LEN + r.payloadLen);
  writeU16(buf, off + IP.IDENT, r.ident);
  writeU16(buf, off + IP.FLAGS_FRAG, (r.dontFragment ? FLAG_DF : 0) | (r.moreFragments ? FLAG_MF : 0) | (r.fragOffset >>> 3));
  buf[off + IP.TTL] = r.ttl;
  buf[off + IP.PROTOCOL] = r.protocol;
  writeU16(buf, off + IP.CHECKSUM, 0);
  writeU32(buf, off + IP.SRC, r.src);
  writeU32(buf, off + IP.DST, r.dst);
  writeU16(buf, off + IP.CHECKSUM, internetChecksum(buf, off, IP.HEADER_LEN));
}
