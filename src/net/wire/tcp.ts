import { readU16, readU32, writeU16, writeU32 } from './addr.js';
import { WireError } from './error.js';
import { IPPROTO_TCP } from './ipv4.js';
import { fillL4Checksum, l4ChecksumValid, type RxChecksum, type TxChecksum } from './l4-checksum.js';

/** TCP header field offsets (RFC 9293 section 3.1). */
export const TCP = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  DATA_OFF: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  HEADER_LEN: 20,
  MAX_HEADER_LEN: 60,
} as const;

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2; // RFC 9293 3.2
const OPT_WSCALE = 3; // RFC 7323 2.2
const OPT_SACK_PERM = 4; // RFC 2018 2
const OPT_SACK = 5; // RFC 2018 3
const OPT_TIMESTAMP = 8; // RFC 7323 3.2

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** The window field as sent (unscaled). */
  window: number;
  urgent: number;
  mss?: number;
  wscale?: number;
  sackPermitted: boolean;
  /** TSval/TSecr (RFC 7323 3.2), when the option is present. */
  tsVal?: number;
  tsEcr?: number;
  /** SACK blocks as [left, right) pairs flattened (RFC 2018 3). */
  sack?: number[];
  /** Header length including options, bytes. */
  headerLen: number;
  payloadLen: number;
  /**
   * The first problem met in the options, if any. As Linux's tcp_parse_options, a bad option
   * does not make the segment malformed: one of the wrong length is ignored, and a length
   * below 2 or running past the header ends option parsing (the options before it stand).
   */
  optionError?: WireError;
}

/** Options emitted, in Linux's order and padding (tcp_options_write). */
export function tcpOptionsLen(r: Pick<TcpRepr, 'mss' | 'wscale' | 'sackPermitted' | 'tsVal' | 'sack'>): number {
  let n = 0;
  if (r.mss !== undefined) n += 4;
  if (r.tsVal !== undefined)
    n += 12; // SACK_PERM folds into the NOP padding of TS
  else if (r.sackPermitted) n += 4;
  if (r.wscale !== undefined) n += 4;
  if (r.sack !== undefined && r.sack.length > 0) n += 4 + 4 * r.sack.length;
  return n;
}

/**
 * Parses a TCP header; `len` is the IP payload length. Checks the data offset
 * (5 <= offset, offset*4 <= len), every option's kind/length and bounds (RFC 9293 3.1 and
 * 3.2: an option's length must cover its kind and length octets and stay inside the
 * header), and the checksum unless the device validated it.
 */
export function parseTcp(buf: Uint8Array, off: number, len: number, src: number, dst: number, rx: RxChecksum): TcpRepr | WireError {
  if (len < TCP.HEADER_LEN) return new WireError('tcp', 'truncated', `segment of ${len} bytes is shorter than the 20-byte header`);
  const hl = (buf[off + TCP.DATA_OFF]! >>> 4) * 4;
  if (hl < TCP.HEADER_LEN) return new WireError('tcp', 'badDataOffset', `data offset ${hl / 4} is below the minimum of 5`);
  if (hl > len) return new WireError('tcp', 'badDataOffset', `data offset ${hl / 4} (${hl} bytes) exceeds the ${len}-byte segment`);
  if (rx === 'verify' && !l4ChecksumValid(buf, off, len, src, dst, IPPROTO_TCP)) {
    return new WireError('tcp', 'badChecksum', `checksum 0x${readU16(buf, off + TCP.CHECKSUM).toString(16)} does not verify`);
  }
  const r: TcpRepr = {
    srcPort: readU16(buf, off + TCP.SRC_PORT),
    dstPort: readU16(buf, off + TCP.DST_PORT),
    seq: readU32(buf, off + TCP.SEQ),
    ack: readU32(buf, off + TCP.ACK),
    flags: buf[off + TCP.FLAGS]!,
    window: readU16(buf, off + TCP.WINDOW),
    urgent: readU16(buf, off + TCP.URGENT),
    sackPermitted: false,
    headerLen: hl,
    payloadLen: len - hl,
  };
  const end = off + hl;
  let i = off + TCP.HEADER_LEN;
  const note = (kind: 'badOption' | 'optionOverrun', msg: string): void => {
    r.optionError ??= new WireError('tcp', kind, msg);
  };
  while (i < end) {
    const kind = buf[i]!;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) {
      note('optionOverrun', `option ${kind} at header byte ${i - off} has no room for its length`);
      break;
    }
    const olen = buf[i + 1]!;
    if (olen < 2) {
      note('badOption', `option ${kind} has length ${olen} (< 2)`);
      break;
    }
    if (i + olen > end) {
      note('optionOverrun', `option ${kind} of length ${olen} at header byte ${i - off} runs past the ${hl}-byte header`);
      break;
    }
    switch (kind) {
      case OPT_MSS:
        if (olen === 4) r.mss = readU16(buf, i + 2);
        else note('badOption', `MSS option length ${olen} is not 4 (ignored)`);
        break;
      case OPT_WSCALE:
        if (olen === 3) r.wscale = buf[i + 2]!;
        else note('badOption', `window-scale option length ${olen} is not 3 (ignored)`);
        break;
      case OPT_SACK_PERM:
        if (olen === 2) r.sackPermitted = true;
        else note('badOption', `SACK-permitted option length ${olen} is not 2 (ignored)`);
        break;
      case OPT_TIMESTAMP:
        if (olen === 10) {
          r.tsVal = readU32(buf, i + 2);
          r.tsEcr = readU32(buf, i + 6);
        } else note('badOption', `timestamp option length ${olen} is not 10 (ignored)`);
        break;
      case OPT_SACK: {
        if (olen < 10 || (olen - 2) % 8 !== 0) {
          note('badOption', `SACK option length ${olen} is not 2 + 8n, n >= 1 (ignored)`);
          break;
        }
        const blocks: number[] = [];
        for (let j = i + 2; j < i + olen; j += 4) blocks.push(readU32(buf, j));
        r.sack = blocks;
        break;
      }
      default:
        break; // RFC 9293 3.1: unknown options are skipped by their length
    }
    i += olen;
  }
  return r;
}

/**
 * Writes header and options over a payload already in place after them (at
 * `off + headerLen`), then the checksum as `tx` says. Returns the header length.
 */
export function emitTcp(r: Omit<TcpRepr, 'headerLen'>, buf: Uint8Array, off: number, src: number, dst: number, tx: TxChecksum): number {
  const hl = TCP.HEADER_LEN + tcpOptionsLen(r);
  writeU16(buf, off + TCP.SRC_PORT, r.srcPort);
  writeU16(buf, off + TCP.DST_PORT, r.dstPort);
  writeU32(buf, off + TCP.SEQ, r.seq);
  writeU32(buf, off + TCP.ACK, r.ack);
  buf[off + TCP.DATA_OFF] = (hl / 4) << 4;
  buf[off + TCP.FLAGS] = r.flags;
  writeU16(buf, off + TCP.WINDOW, r.window);
  writeU16(buf, off + TCP.URGENT, r.urgent);
  let i = off + TCP.HEADER_LEN;
  if (r.mss !== undefined) {
    buf[i] = OPT_MSS;
    buf[i + 1] = 4;
    writeU16(buf, i + 2, r.mss);
    i += 4;
  }
  if (r.tsVal !== undefined) {
    if (r.sackPermitted) {
      buf[i] = OPT_SACK_PERM;
      buf[i + 1] = 2;
    } else {
      buf[i] = OPT_NOP;
      buf[i + 1] = OPT_NOP;
    }
    buf[i + 2] = OPT_TIMESTAMP;
    buf[i + 3] = 10;
    writeU32(buf, i + 4, r.tsVal);
    writeU32(buf, i + 8, r.tsEcr ?? 0);
    i += 12;
  } else if (r.sackPermitted) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_NOP;
    buf[i + 2] = OPT_SACK_PERM;
    buf[i + 3] = 2;
    i += 4;
  }
  if (r.wscale !== undefined) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_WSCALE;
    buf[i + 2] = 3;
    buf[i + 3] = r.wscale;
    i += 4;
  }
  if (r.sack !== undefined && r.sack.length > 0) {
    buf[i] = OPT_NOP;
    buf[i + 1] = OPT_NOP;
    buf[i + 2] = OPT_SACK;
    buf[i + 3] = 2 + 4 * r.sack.length;
    i += 4;
    for (const v of r.sack) {
      writeU32(buf, i, v);
      i += 4;
    }
  }
  fillL4Checksum(buf, off, hl + r.payloadLen, TCP.CHECKSUM, src, dst, IPPROTO_TCP, tx, false);
  return hl;
}

/** Sequence-number comparisons modulo 2^32 (RFC 9293 3.4). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function seqLeq(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
export function seqGeq(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** b - a as a signed distance. */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
