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
 * One frame and its metadata (Linux's sk_buff, reduced). `data` holds the frame from the
 * Ethernet header on; the IPv4 header starts at `l3` and the transport header at `l4`.
 * A GSO packet (gsoType TCPV4) carries up to 64 KiB of TCP payload to be cut into
 * `gsoSize`-byte segments by the device (TSO) or by software GSO; netif carries the same
 * pair in its GSO extra-info slot (`size`, `type`).
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

  constructor(public data: Uint8Array) {}

  get length(): number {
    return this.data.length;
  }

  /** Runs and clears the destructor; every device calls it once per packet it accepted. */
  release(): void {
    const d = this.destructor;
    if (d !== null) {
      this.destructor = null;
      d(this);
    }
  }
}
