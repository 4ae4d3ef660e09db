import { readMac, readU16, writeMac, writeU16, type MacAddr } from './addr.js';
import { WireError } from './error.js';

/** Ethernet II (DIX) header: IEEE 802.3 section 3.1.1 frame layout, type field >= 0x0600. */
export const ETH = { DST: 0, SRC: 6, TYPE: 12, HEADER_LEN: 14 } as const;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;

/** A view over an Ethernet II header at `off` in `buf`. */
export class EthernetFrame {
  constructor(
    readonly buf: Uint8Array,
    readonly off = 0,
  ) {}
  get dst(): MacAddr {
    return readMac(this.buf, this.off + ETH.DST);
  }
  set dst(v: MacAddr) {
    writeMac(this.buf, this.off + ETH.DST, v);
  }
  get src(): MacAddr {
    return readMac(this.buf, this.off + ETH.SRC);
  }
  set src(v: MacAddr) {
    writeMac(this.buf, this.off + ETH.SRC, v);
  }
  get ethertype(): number {
    return readU16(this.buf, this.off + ETH.TYPE);
  }
  set ethertype(v: number) {
    writeU16(this.buf, this.off + ETH.TYPE, v);
  }
  get payloadOffset(): number {
    return this.off + ETH.HEADER_LEN;
  }
}

export interface EthernetRepr {
  dst: MacAddr;
  src: MacAddr;
  ethertype: number;
}

export function parseEthernet(buf: Uint8Array, off = 0, len = buf.length - off): EthernetRepr | WireError {
  if (len < ETH.HEADER_LEN) return new WireError('ethernet', 'truncated', `frame of ${len} bytes is shorter than the 14-byte header`);
  const f = new EthernetFrame(buf, off);
  const ethertype = f.ethertype;
  if (ethertype < 0x0600)
    return new WireError('ethernet', 'unsupported', `type/length field 0x${ethertype.toString(16)} is an 802.3 length, not an Ethernet II type`);
  return { dst: f.dst, src: f.src, ethertype };
}

export function emitEthernet(r: EthernetRepr, buf: Uint8Array, off = 0): void {
  writeMac(buf, off + ETH.DST, r.dst);
  writeMac(buf, off + ETH.SRC, r.src);
  writeU16(buf, off + ETH.TYPE, r.ethertype);
}
