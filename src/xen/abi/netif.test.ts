import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  NETIF_EXTRA_INFO,
  NETIF_RSP_DROPPED,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RX_RING_ENTRY_SIZE,
  NETIF_TX_RING_ENTRY_SIZE,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  netifExtraInfoCodec,
  netifRxRequestCodec,
  netifRxResponseCodec,
  netifTxRequestCodec,
  netifTxResponseCodec,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_GSO_TYPE_TCPV6,
  XEN_NETIF_MAX_TX_SIZE,
  type NetifExtraInfo,
  type SlotCodec,
} from './index.js';

/** Encodes `v` at offset 3 of a buffer of 0xee bytes and returns the structure's bytes. */
function bytesOf<T>(codec: SlotCodec<T>, v: T): number[] {
  const b = new Uint8Array(codec.size + 6).fill(0xee);
  codec.encode(v, b, 3);
  assert.equal(b[2], 0xee, 'nothing written before the structure');
  assert.equal(b[3 + codec.size], 0xee, 'nothing written past sizeof');
  assert.deepEqual(codec.decode(b, 3), v, 'round trip');
  return [...b.subarray(3, 3 + codec.size)];
}

describe('netif ABI (io/netif.h)', () => {
  it('netif_tx_request: gref u32 @0, offset u16 @4, flags u16 @6, id u16 @8, size u16 @10', () => {
    assert.equal(netifTxRequestCodec.size, 12);
    const b = bytesOf(netifTxRequestCodec, { gref: 0x11223344, offset: 0x5566, flags: 0x0708, id: 0x99aa, size: 0xbbcc });
    assert.deepEqual(b, [0x44, 0x33, 0x22, 0x11, 0x66, 0x55, 0x08, 0x07, 0xaa, 0x99, 0xcc, 0xbb]);
  });

  it('netif_tx_response: id u16 @0, status i16 @2 (negative statuses are two’s complement)', () => {
    assert.equal(netifTxResponseCodec.size, 4);
    assert.deepEqual(bytesOf(netifTxResponseCodec, { id: 0x1234, status: NETIF_RSP_ERROR }), [0x34, 0x12, 0xff, 0xff]);
    assert.deepEqual(bytesOf(netifTxResponseCodec, { id: 1, status: NETIF_RSP_DROPPED }), [1, 0, 0xfe, 0xff]);
    assert.deepEqual(bytesOf(netifTxResponseCodec, { id: 2, status: NETIF_RSP_NULL }), [2, 0, 1, 0]);
  });

  it('netif_rx_request: id u16 @0, pad @2, gref u32 @4; netif_rx_response: id @0, offset @2, flags @4, status i16 @6', () => {
    assert.equal(netifRxRequestCodec.size, 8);
    assert.deepEqual(bytesOf(netifRxRequestCodec, { id: 0x0102, gref: 0xa0b0c0d0 }), [0x02, 0x01, 0, 0, 0xd0, 0xc0, 0xb0, 0xa0]);
    assert.equal(netifRxResponseCodec.size, 8);
    assert.deepEqual(
      bytesOf(netifRxResponseCodec, { id: 7, offset: 0x0102, flags: 0x0304, status: 1514 }),
      [7, 0, 0x02, 0x01, 0x04, 0x03, 0xea, 0x05],
    );
    assert.deepEqual(bytesOf(netifRxResponseCodec, { id: 7, offset: 0, flags: 0, status: -1 }).slice(6), [0xff, 0xff]);
  });

  it('netif_extra_info: type @0, flags @1, then GSO {size @2, type @4, pad @5, features @6}, MCAST addr @2, HASH {type @2, algorithm @3, value @4}', () => {
    assert.equal(NETIF_EXTRA_INFO.size, 8);
    const gso: NetifExtraInfo = {
      type: XEN_NETIF_EXTRA_TYPE_GSO,
      flags: XEN_NETIF_EXTRA_FLAG_MORE,
      gso: { size: 1448, type: XEN_NETIF_GSO_TYPE_TCPV6, pad: 0, features: 0x0102 },
    };
    assert.deepEqual(bytesOf(netifExtraInfoCodec, gso), [1, 1, 0xa8, 0x05, 2, 0, 0x02, 0x01]);
    const mcast: NetifExtraInfo = { type: XEN_NETIF_EXTRA_TYPE_MCAST_ADD, flags: 0, addr: Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb) };
    assert.deepEqual(bytesOf(netifExtraInfoCodec, mcast), [2, 0, 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
    const hash: NetifExtraInfo = { type: XEN_NETIF_EXTRA_TYPE_HASH, flags: 0, hash: { type: 3, algorithm: 1, value: Uint8Array.of(9, 8, 7, 6) } };
    assert.deepEqual(bytesOf(netifExtraInfoCodec, hash), [4, 0, 3, 1, 9, 8, 7, 6]);
    // An unknown type keeps its raw union bytes, for the backend to reject.
    const raw = netifExtraInfoCodec.decode(Uint8Array.of(0, 0, 1, 2, 3, 4, 5, 6), 0);
    assert.deepEqual(raw, { type: 0, flags: 0, raw: Uint8Array.of(1, 2, 3, 4, 5, 6) });
  });

  it('constants and ring sizes as the header and Linux netback define them', () => {
    assert.equal(NETIF_TX_RING_ENTRY_SIZE, 12);
    assert.equal(NETIF_RX_RING_ENTRY_SIZE, 8);
    assert.equal(NET_TX_RING_SIZE, 256);
    assert.equal(NET_RX_RING_SIZE, 256);
    assert.equal(XEN_NETIF_MAX_TX_SIZE, 0xffff);
    assert.equal(XEN_NETBK_LEGACY_SLOTS_MAX, 18);
    assert.deepEqual(
      [NETTXF_csum_blank, NETTXF_data_validated, NETRXF_data_validated, NETRXF_csum_blank],
      [1, 2, 1, 2],
      'the TX/RX swap of the first two bits',
    );
  });
});
