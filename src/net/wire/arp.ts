import { readMac, readU16, readU32, writeMac, writeU16, writeU32, type Ipv4Addr, type MacAddr } from './addr.js';
import { WireError } from './error.js';
import { ETHERTYPE_IPV4 } from './ethernet.js';

/** ARP for IPv4 over Ethernet (RFC 826): fixed 28-byte packet. */
export const ARP = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8, SPA: 14, THA: 18, TPA: 24, LEN: 28 } as const;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface ArpRepr {
  op: typeof ARP_REQUEST | typeof ARP_REPLY;
  senderMac: MacAddr;
  senderIp: Ipv4Addr;
  targetMac: MacAddr;
  targetIp: Ipv4Addr;
}

export function parseArp(buf: Uint8Array, off: number, len: number): ArpRepr | WireError {
  if (len < ARP.LEN) return new WireError('arp', 'truncated', `ARP packet of ${len} bytes is shorter than 28`);
  if (
    readU16(buf, off + ARP.HTYPE) !== 1 ||
    readU16(buf, off + ARP.PTYPE) !== ETHERTYPE_IPV4 ||
    buf[off + ARP.HLEN] !== 6 ||
    buf[off + ARP.PLEN] !== 4
  ) {
    return new WireError('arp', 'unsupported', 'not ARP for IPv4 over Ethernet (htype 1, ptype 0x0800, hlen 6, plen 4)');
  }
  const op = readU16(buf, off + ARP.OPER);
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return new WireError('arp', 'unsupported', `ARP operation ${op} is neither request (1) nor reply (2)`);
  return {
    op,
    senderMac: readMac(buf, off + ARP.SHA),
    senderIp: readU32(buf, off + ARP.SPA),
    targetMac: readMac(buf, off + ARP.THA),
    targetIp: readU32(buf, off + ARP.TPA),
  };
}

export function emitArp(r: ArpRepr, buf: Uint8Array, off: number): void {
  writeU16(buf, off + ARP.HTYPE, 1);
  writeU16(buf, off + ARP.PTYPE, ETHERTYPE_IPV4);
  buf[off + ARP.HLEN] = 6;
  buf[off + ARP.PLEN] = 4;
  writeU16(buf, off + ARP.OPER, r.op);
  writeMac(buf, off + ARP.SHA, r.senderMac);
  writeU32(buf, off + ARP.SPA, r.senderIp);
  writeMac(buf, off + ARP.THA, r.targetMac);
  writeU32(buf, off + ARP.TPA, r.targetIp);
}
