import {
  XENSTORE_PAYLOAD_MAX,
  XSD_SOCKMSG_LEN_OFFSET,
  XSD_SOCKMSG_REQ_ID_OFFSET,
  XSD_SOCKMSG_SIZE,
  XSD_SOCKMSG_TX_ID_OFFSET,
  XSD_SOCKMSG_TYPE_OFFSET,
} from '../abi/xs-wire.js';

/**
 * XenStore framing (xen-abi.md §1.1): a 16-byte little-endian header `type, req_id, tx_id,
 * len` and `len` payload bytes, in both directions, over a byte stream (socket or ring).
 * Parsing never throws: bad bytes come back as typed errors.
 */
export interface XsMessage {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Uint8Array;
}

/** The stream cannot go on: xenstored drops a connection whose header announces > 4096 bytes. */
export interface OversizeError {
  readonly kind: 'oversize';
  readonly len: number;
  readonly type: number;
}

export interface HeaderFields {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly len: number;
}

/** Reads a header from the first 16 bytes of `b`; undefined if `b` is shorter. */
export function parseHeader(b: Uint8Array): HeaderFields | undefined {
  if (b.length < XSD_SOCKMSG_SIZE) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, XSD_SOCKMSG_SIZE);
  return {
    type: v.getUint32(XSD_SOCKMSG_TYPE_OFFSET, true),
    reqId: v.getUint32(XSD_SOCKMSG_REQ_ID_OFFSET, true),
    txId: v.getUint32(XSD_SOCKMSG_TX_ID_OFFSET, true),
    len: v.getUint32(XSD_SOCKMSG_LEN_OFFSET, true),
  };
}

/** Header and payload as one buffer. Fields are taken modulo 2^32; `len` is the payload's length. */
export function encodeMessage(m: XsMessage): Uint8Array {
  const out = new Uint8Array(XSD_SOCKMSG_SIZE + m.payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(XSD_SOCKMSG_TYPE_OFFSET, m.type >>> 0, true);
  v.setUint32(XSD_SOCKMSG_REQ_ID_OFFSET, m.reqId >>> 0, true);
  v.setUint32(XSD_SOCKMSG_TX_ID_OFFSET, m.txId >>> 0, true);
  v.setUint32(XSD_SOCKMSG_LEN_OFFSET, m.payload.length, true);
  out.set(m.payload, XSD_SOCKMSG_SIZE);
  return out;
}

/**
 * Cuts a byte stream into messages, however it was split into chunks: a message may arrive a
 * byte at a time, or several in one chunk. After an oversize header the stream is dead and
 * every later push returns that error again.
 */
export class XsReassembler {
  private buf = new Uint8Array(0);
  private dead: OversizeError | undefined;

  push(chunk: Uint8Array): { messages: XsMessage[]; error?: OversizeError } {
    if (this.dead !== undefined) return { messages: [], error: this.dead };
    const data = this.buf.length === 0 ? chunk : concat(this.buf, chunk);
    const messages: XsMessage[] = [];
    let at = 0;
    for (;;) {
      const h = parseHeader(data.subarray(at));
      if (h === undefined) break;
      if (h.len > XENSTORE_PAYLOAD_MAX) {
        this.dead = { kind: 'oversize', len: h.len, type: h.type };
        this.buf = new Uint8Array(0);
        return { messages, error: this.dead };
      }
      if (data.length - at < XSD_SOCKMSG_SIZE + h.len) break;
      const start = at + XSD_SOCKMSG_SIZE;
      messages.push({ type: h.type, reqId: h.reqId, txId: h.txId, payload: data.slice(start, start + h.len) });
      at = start + h.len;
    }
    this.buf = data.slice(at);
    return { messages };
  }

  /** Bytes held of a message not yet complete (a connection closing with some is truncated). */
  get pending(): number {
    return this.buf.length;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---- payload strings ----
// Payloads are NUL-terminated byte strings. Paths are ASCII; tokens and values are arbitrary
// bytes, so strings are decoded one character per byte (latin1) and encoded back the same way.

export function bytesToLatin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

export function latin1ToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/**
 * The NUL-terminated strings at the start of a payload (core.c get_strings): bytes after the
 * last NUL are not a string and are not counted.
 */
export function payloadStrings(p: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) {
      out.push(bytesToLatin1(p.subarray(start, i)));
      start = i + 1;
    }
  }
  return out;
}

/** The single argument of a one-argument request (core.c onearg): exactly one NUL, at the end. */
export function oneArg(p: Uint8Array): string | undefined {
  if (p.length === 0 || p.indexOf(0) !== p.length - 1) return undefined;
  return bytesToLatin1(p.subarray(0, p.length - 1));
}

/** Each string followed by a NUL. */
export function nulTerminated(strings: readonly string[]): Uint8Array {
  return latin1ToBytes(strings.map((s) => `${s}\0`).join(''));
}
