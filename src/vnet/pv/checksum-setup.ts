import { CSUM_PARTIAL, csumFromNetif, type Packet } from '../../net/index.js';

const ETH_HLEN = 14;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * The checksum state netif's two flags give a received frame, completed as Linux's
 * skb_checksum_setup does for CHECKSUM_PARTIAL (netback's checksum_setup, netfront's
 * checksum_setup in 3.18): the L4 header is found from the IPv4 header so that
 * `csumStart`/`csumOffset` point at the field to fill. A partial frame whose headers cannot
 * be parsed (not IPv4 TCP/UDP, truncated, a fragment) is refused: false, and the driver drops
 * it as Linux does when skb_checksum_setup fails.
 */
export function checksumSetup(pkt: Packet, csumBlank: boolean, dataValidated: boolean): boolean {
  const st = csumFromNetif(csumBlank, dataValidated);
  pkt.l3 = ETH_HLEN;
  pkt.csum = st;
  if (st !== CSUM_PARTIAL) return true;
  const d = pkt.data;
  if (d.length < ETH_HLEN + 20 || d[12] !== 0x08 || d[13] !== 0x00) return false;
  const ihl = (d[ETH_HLEN]! & 0x0f) * 4;
  const fragField = ((d[ETH_HLEN + 6]! & 0x3f) << 8) | d[ETH_HLEN + 7]!;
  if (ihl < 20 || fragField !== 0) return false;
  const proto = d[ETH_HLEN + 9];
  const l4 = ETH_HLEN + ihl;
  if (proto === IPPROTO_TCP && d.length >= l4 + 20) {
    pkt.csumStart = l4;
    pkt.csumOffset = 16;
  } else if (proto === IPPROTO_UDP && d.length >= l4 + 8) {
    pkt.csumStart = l4;
    pkt.csumOffset = 6;
  } else return false;
  pkt.l4 = l4;
  return true;
}
