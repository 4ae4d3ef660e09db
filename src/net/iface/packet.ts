import type { Ipv4Addr } from '../wire/addr.js';
import { ETH } from '../wire/ethernet.js';

/**
 * Checksum state of a packet, Linux's skb->ip_summed reduced to what crosses devices, so that
 * netif's flags map onto it one to one:
 *
 * | state            | Linux                | netif TX (netfront->netback)         | netif RX (netback->netfront)          |
 * |------------------|----------------------|--------------------------------------|---------------------------------------|
 * | CSUM_NONE        | CHECKSUM_NONE        | no flag                              | no flag                               |
 * | CSUM_PARTIAL     | CHECKSUM_PARTIAL     | NETTXF_csum_blank (+ data_validated) | NETRXF_csum_blank (+ data_validated)  |
 * | CSUM_UNNECESSARY | CHECKSUM_UNNECESSARY | NETTXF_data_validated                | NETRXF_data_validated                 |
 *
 * CSUM_PARTIAL: the L4 checksum field holds the folded pseudo-header sum; summing from
 * `csumStart` to the end and storing the complement at `csumStart + csumOffset` completes it.
 */
export const CSUM_NONE = 0;
export const CSUM_PARTIAL = 1;
export const CSUM_UNNECESSARY = 2;
export type CsumState = typeof CSUM_NONE | typeof CSUM_PARTIAL | typeof CSUM_UNNECESSARY;

/** netif's two checksum bits for a state (xen-abi.md 6.1: Linux sets both for partial). */
export function csumToNetif(s: CsumState): { csumBlank: boolean; dataValidated: boolean } {
  return { csumBlank: s === CSUM_PARTIAL, dataValidated: s !== CSUM_NONE };
}

/** The state for netif's two checksum bits (csum_blank wins: the field is not yet complete). */
export function csumFromNetif(csumBlank: boolean, dataValidated: boolean): CsumState {
  return csumBlank ? CSUM_PARTIAL : dataValidated ? CSUM_UNNECESSARY : CSUM_NONE;
}

/** GSO types, numbered as netif's XEN_NETIF_GSO_TYPE_* (NONE 0, TCPV4 1). */
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export type GsoType = typeof GSO_NONE | typeof GSO_TCPV4;

/**
 * Where a packet's bytes live: a buffer in the memory of the domain that holds the packet
 * (its own pages, or pages it mapped from another domain through a grant), or plain memory
 * for stacks with no hypervisor below them. Buffers are reference-counted: whoever keeps
 * bytes of a packet after the packet itself is gone (a socket's receive queue, the
 * reassembler) holds the buffer and puts it when done, as Linux keeps an skb queued until
 * recvmsg has copied it; the last put returns the memory to its pool.
 *
 * A guest buffer covers consecutive frames: byte `i` of `bytes` is at offset
 * `(offset + i) % 4096` of frame `gfn + floor((offset + i) / 4096)` of `domid`'s physmap.
 */
export abstract class PacketBuffer {
  private refs = 1;
  /** The buffer's bytes (its capacity). */
  abstract readonly bytes: Uint8Array;
  /** The domain whose physical address space `gfn` is in; -1 for plain memory. */
  abstract readonly domid: number;
  /** First frame and the offset of `bytes[0]` in it (-1, 0 for plain memory). */
  abstract readonly gfn: number;
  abstract readonly offset: number;
  /**
   * For a page mapped from another domain's grant (netback's mapped TX fragments): the
   * granter and its ref, so a later copy can name the grant instead of the mapping, as
   * xenvif_gop_frag_copy does for foreign pages.
   */
  grant: { domid: number; ref: number } | null = null;

  /** Another holder of the bytes. */
  hold(): this {
    if (this.refs <= 0) throw new Error('PacketBuffer.hold: the buffer was already freed (model bug)');
    this.refs++;
    return this;
  }

  /** A holder lets go; the last one frees the memory. */
  put(): void {
    if (--this.refs === 0) this.recycle();
    else if (this.refs < 0) throw new Error('PacketBuffer.put: more puts than holds (model bug)');
  }

  get held(): number {
    return this.refs;
  }

  /** For a pool that hands a freed buffer out again: it has one holder once more. */
  protected reuse(): void {
    if (this.refs !== 0) throw new Error('PacketBuffer.reuse: the buffer is still held (model bug)');
    this.refs = 1;
  }

  /** Returns the memory to its pool (called once, by the last put). */
  protected abstract recycle(): void;
}

/** Plain memory: a buffer nothing else knows about (direct links, unit tests). */
export class HeapBuffer extends PacketBuffer {
  readonly domid = -1;
  readonly gfn = -1;
  readonly offset = 0;
  constructor(readonly bytes: Uint8Array) {
    super();
  }
  protected recycle(): void {}
}

/**
 * Memory for a stack's packet buffers (Linux's skb data allocations, reduced): the guest's
 * own pages when a hypervisor is below it, so that every byte a grant copy, DMA or device
 * model touches is in the right domain's memory.
 */
export interface PacketMemory {
  /** The domain the memory belongs to (-1: plain memory). */
  readonly domid: number;
  /** A zeroed buffer of at least `len` bytes, held once by the caller. */
  alloc(len: number): PacketBuffer;
}

/** Plain memory: each buffer a fresh array. */
export const HEAP_MEMORY: PacketMemory = {
  domid: -1,
  alloc: (len) => new HeapBuffer(new Uint8Array(len)),
};

/** A contiguous range of a packet's bytes and the buffer (and offset in it) holding them. */
export interface PacketFrag {
  buf: PacketBuffer;
  /** Offset in `buf.bytes`. */
  bufOffset: number;
  len: number;
}

/** Bytes kept from a received packet after it is gone, and the buffer they are in (held). */
export interface HeldBytes {
  data: Uint8Array;
  buf: PacketBuffer | null;
}

/**
 * One frame and its metadata (Linux's sk_buff, reduced). `data` holds the frame from the
 * Ethernet header on; the IPv4 header starts at `l3` and the transport header at `l4`.
 * A GSO packet (gsoType TCPV4) carries up to 64 KiB of TCP payload to be cut into
 * `gsoSize`-byte segments by the device (TSO) or by software GSO; netif carries the same
 * pair in its GSO extra-info slot (`size`, `type`).
 *
 * Memory: `data` is a view into `buf` (from `bufOffset`) when the frame is in one buffer.
 * A frame a device received into several separate buffers (page fragments: netfront's RX
 * slots, netback's mapped TX pages) lists them in `frags`, and `data` is then the model's
 * contiguous copy of them for the stack to read: Linux reads such an skb's fragments where
 * they are, so making this view is not an operation of the modelled system and costs
 * nothing. A packet holds its buffers once; `release()` lets go.
 */
export class Packet {
  l3 = ETH.HEADER_LEN;
  l4 = 0;
  csum: CsumState = CSUM_NONE;
  /** For CSUM_PARTIAL: offset of the L4 header in `data`, and of the checksum field from it. */
  csumStart = 0;
  csumOffset = 0;
  gsoType: GsoType = GSO_NONE;
  gsoSize = 0;
  /** Next hop chosen by routing (set on output). */
  nextHop: Ipv4Addr = 0;
  /** The interface it leaves by (output) or arrived on (input), set by the stack. */
  iface: unknown = null;
  /**
   * Called once when the device no longer needs the bytes (TX completion; Linux's skb
   * destructor sock_wfree): it returns send-buffer space to the socket that sent it.
   */
  destructor: ((pkt: Packet) => void) | null = null;
  /** The buffer `data` is a view into, and where in it `data[0]` is. */
  buf: PacketBuffer | null;
  bufOffset = 0;
  /** The separate buffers of a fragmented frame, in order (see above), or null. */
  frags: PacketFrag[] | null = null;

  constructor(
    public data: Uint8Array,
    buf: PacketBuffer | null = null,
    bufOffset = 0,
  ) {
    this.buf = buf;
    this.bufOffset = bufOffset;
  }

  /** A packet of `len` bytes in a fresh buffer of `mem`. */
  static alloc(mem: PacketMemory, len: number): Packet {
    const b = mem.alloc(len);
    return new Packet(len === b.bytes.length ? b.bytes : b.bytes.subarray(0, len), b, 0);
  }

  /** A packet over the fragments' bytes (each fragment's buffer held once by the packet from now on). */
  static fromFrags(frags: PacketFrag[]): Packet {
    if (frags.length === 1) {
      const f = frags[0]!;
      return new Packet(f.buf.bytes.subarray(f.bufOffset, f.bufOffset + f.len), f.buf, f.bufOffset);
    }
    let n = 0;
    let adjacent = true;
    const first = frags[0]!.buf.bytes;
    let end = first.byteOffset + frags[0]!.bufOffset;
    for (const f of frags) {
      n += f.len;
      const b = f.buf.bytes;
      if (b.buffer !== first.buffer || b.byteOffset + f.bufOffset !== end) adjacent = false;
      end = b.byteOffset + f.bufOffset + f.len;
    }
    if (adjacent) {
      // Fragments that follow each other in one memory (consecutive pages of a guest's RAM):
      // the contiguous view is the fragments themselves.
      const p = new Packet(new Uint8Array(first.buffer, first.byteOffset + frags[0]!.bufOffset, n));
      p.frags = frags;
      return p;
    }
    const data = new Uint8Array(n);
    let at = 0;
    for (const f of frags) {
      data.set(f.buf.bytes.subarray(f.bufOffset, f.bufOffset + f.len), at);
      at += f.len;
    }
    const p = new Packet(data);
    p.frags = frags;
    return p;
  }

  get length(): number {
    return this.data.length;
  }

  /**
   * Where the frame's bytes are, as contiguous ranges of buffers (what a driver grants, a
   * DMA engine reads or a device model maps). Null for a packet in no buffer (built in plain
   * memory by a test).
   */
  fragments(): PacketFrag[] | null {
    if (this.frags !== null) return this.frags;
    if (this.buf === null) return null;
    return [{ buf: this.buf, bufOffset: this.bufOffset, len: this.data.length }];
  }

  /** Another hold on the bytes of `data[from, from + len)`, for a layer that keeps them. */
  keep(from: number, len: number): HeldBytes {
    return { data: this.data.subarray(from, from + len), buf: this.hold() };
  }

  /**
   * Another hold on everything the packet's bytes are in, as one buffer to put (null for a
   * packet in no buffer). For a fragmented frame the hold covers every fragment.
   */
  hold(): PacketBuffer | null {
    if (this.frags !== null) {
      for (const f of this.frags) f.buf.hold();
      return new FragsHold(this.frags);
    }
    return this.buf === null ? null : this.buf.hold();
  }

  /** skb_orphan: runs and clears the destructor (the sender's accounting) but keeps the bytes. */
  orphan(): void {
    const d = this.destructor;
    if (d !== null) {
      this.destructor = null;
      d(this);
    }
  }

  /**
   * The holder is done with the packet: runs the destructor (every device calls this once per
   * packet it accepted) and lets go of its buffers. Safe to call twice.
   */
  release(): void {
    this.orphan();
    const b = this.buf;
    if (b !== null) {
      this.buf = null;
      b.put();
    }
    const fr = this.frags;
    if (fr !== null) {
      this.frags = null;
      for (const f of fr) f.buf.put();
    }
  }
}

/** One hold on each of a fragmented frame's buffers, as one buffer to put. */
class FragsHold extends PacketBuffer {
  readonly domid = -1;
  readonly gfn = -1;
  readonly offset = 0;
  readonly bytes = new Uint8Array(0);
  constructor(private readonly frags: PacketFrag[]) {
    super();
  }
  protected recycle(): void {
    for (const f of this.frags) f.buf.put();
  }
}
