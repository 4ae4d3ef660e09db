/**
 * Addresses as plain numbers, so they compare with `===` and key maps without allocation:
 * an IPv4 address is an unsigned 32-bit integer, a MAC address a 48-bit integer (exact in a
 * JS number).
 */
export type Ipv4Addr = number;
export type MacAddr = number;

export const IPV4_ANY: Ipv4Addr = 0;
export const IPV4_BROADCAST: Ipv4Addr = 0xffffffff;
export const MAC_BROADCAST: MacAddr = 0xffff_ffff_ffff;
export const MAC_ZERO: MacAddr = 0;

/** Parses dotted-quad notation; undefined if it is not one. */
export function parseIpv4Addr(text: string): Ipv4Addr | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

/** Dotted-quad literal for configuration and tests; throws on a malformed literal (a bug in the caller). */
export function ipv4(text: string): Ipv4Addr {
  const v = parseIpv4Addr(text);
  if (v === undefined) throw new RangeError(`"${text}" is not an IPv4 address`);
  return v;
}

export function formatIpv4(a: Ipv4Addr): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function parseMacAddr(text: string): MacAddr | undefined {
  const parts = text.split(':');
  if (parts.length !== 6) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^[0-9a-fA-F]{2}$/.test(p)) return undefined;
    v = v * 256 + parseInt(p, 16);
  }
  return v;
}

export function mac(text: string): MacAddr {
  const v = parseMacAddr(text);
  if (v === undefined) throw new RangeError(`"${text}" is not a MAC address`);
  return v;
}

export function formatMac(m: MacAddr): string {
  const hex = m.toString(16).padStart(12, '0');
  return hex.replace(/(..)(?!$)/g, '$1:');
}

export function readMac(buf: Uint8Array, off: number): MacAddr {
  return (buf[off]! * 0x10000 + (buf[off + 1]! << 8) + buf[off + 2]!) * 0x1000000 + ((buf[off + 3]! << 16) | (buf[off + 4]! << 8) | buf[off + 5]!);
}

export function writeMac(buf: Uint8Array, off: number, m: MacAddr): void {
  const hi = Math.floor(m / 0x1000000);
  const lo = m % 0x1000000;
  buf[off] = hi >>> 16;
  buf[off + 1] = (hi >>> 8) & 255;
  buf[off + 2] = hi & 255;
  buf[off + 3] = lo >>> 16;
  buf[off + 4] = (lo >>> 8) & 255;
  buf[off + 5] = lo & 255;
}

export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 255;
  buf[off + 1] = v & 255;
}

export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 24) & 255;
  buf[off + 1] = (v >>> 16) & 255;
  buf[off + 2] = (v >>> 8) & 255;
  buf[off + 3] = v & 255;
}

/** True if `a` is in the subnet `net`/`prefix`. */
export function inSubnet(a: Ipv4Addr, net: Ipv4Addr, prefix: number): boolean {
  return prefix === 0 || a >>> (32 - prefix) === net >>> (32 - prefix);
}
