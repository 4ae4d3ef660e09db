/**
 * A growable ring of bytes: the send buffer of a TCP socket, holding the bytes from snd_una
 * on (unacknowledged and not yet sent), so that any of them can be (re)sent by offset.
 */
export class ByteRing {
  private buf: Uint8Array;
  private head = 0;
  private len = 0;

  constructor(capacity = 16384) {
    let c = 1;
    while (c < capacity) c <<= 1;
    this.buf = new Uint8Array(c);
  }

  get length(): number {
    return this.len;
  }

  /** Appends `src` (copied). */
  write(src: Uint8Array): void {
    const need = this.len + src.length;
    if (need > this.buf.length) this.grow(need);
    const cap = this.buf.length;
    const tail = (this.head + this.len) & (cap - 1);
    const first = Math.min(src.length, cap - tail);
    this.buf.set(src.subarray(0, first), tail);
    if (first < src.length) this.buf.set(src.subarray(first), 0);
    this.len = need;
  }

  /** Copies `n` bytes starting `offset` bytes after the head into `dst` at `at`. */
  copyOut(offset: number, n: number, dst: Uint8Array, at: number): void {
    if (offset < 0 || offset + n > this.len) throw new RangeError(`ByteRing.copyOut(${offset}, ${n}) beyond ${this.len} bytes`);
    const cap = this.buf.length;
    const start = (this.head + offset) & (cap - 1);
    const first = Math.min(n, cap - start);
    dst.set(this.buf.subarray(start, start + first), at);
    if (first < n) dst.set(this.buf.subarray(0, n - first), at + first);
  }

  /** Drops `n` bytes from the head (acknowledged). */
  consume(n: number): void {
    if (n > this.len) throw new RangeError(`ByteRing.consume(${n}) beyond ${this.len} bytes`);
    this.head = (this.head + n) & (this.buf.length - 1);
    this.len -= n;
    if (this.len === 0) this.head = 0;
  }

  private grow(need: number): void {
    let c = this.buf.length;
    while (c < need) c <<= 1;
    const next = new Uint8Array(c);
    this.copyOut(0, this.len, next, 0);
    this.buf = next;
    this.head = 0;
  }
}
