import { Packet, emitEthernet, type MacAddr, type PacketMemory } from '../../net/index.js';

/**
 * The switch fence *(ours)*: a frame a sender puts on the ordinary NIC behind everything it
 * sent its peer that way, when its channel to the peer comes up; the receiver takes nothing
 * off the channel until the fence has arrived, so channel frames never overtake frames still
 * on the ordinary path. Shared by every data plane of the channel module (hv2m, shmem).
 */

/** Ethertype of a switch fence (IEEE 802 Local Experimental Ethertype 1; *ours*). */
export const ETHERTYPE_HV2M_FENCE = 0x88b5;
/** "HV2M" */
const FENCE_MAGIC = 0x4856324d;
/** Ethernet header, magic, sender domid (u16), the receiver's port the sender bound (u32). */
export const FENCE_LEN = 14 + 4 + 2 + 4;

/** A fence from `domid` (MAC `src`) to `dst`, naming the receiver's port `port` the sender bound, in a buffer of `mem`. */
export function makeFence(mem: PacketMemory, dst: MacAddr, src: MacAddr, domid: number, port: number): Packet {
  const pkt = Packet.alloc(mem, FENCE_LEN);
  emitEthernet({ dst, src, ethertype: ETHERTYPE_HV2M_FENCE }, pkt.data, 0);
  const dv = new DataView(pkt.data.buffer, pkt.data.byteOffset, pkt.data.byteLength);
  dv.setUint32(14, FENCE_MAGIC);
  dv.setUint16(18, domid);
  dv.setUint32(20, port >>> 0);
  return pkt;
}

/** A fence's sender domid and port, if `d` is a fence frame (ethertype and magic); else null. */
export function parseFence(d: Uint8Array): { domid: number; port: number } | null {
  if (d.length < FENCE_LEN || d[12] !== ETHERTYPE_HV2M_FENCE >> 8 || d[13] !== (ETHERTYPE_HV2M_FENCE & 0xff)) return null;
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  if (dv.getUint32(14) !== FENCE_MAGIC) return null;
  return { domid: dv.getUint16(18), port: dv.getUint32(20) };
}
