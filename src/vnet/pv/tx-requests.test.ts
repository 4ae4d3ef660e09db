import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NETTXF_extra_info,
  NETTXF_more_data,
  NETIF_TX_RING_ENTRY_SIZE,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  netifExtraInfoCodec,
  netifTxRequestCodec,
  netifTxResponseCodec,
  type NetifExtraInfo,
  type NetifTxRequest,
} from '../../xen/abi/index.js';
import { BackRing, FrontRing, bytesPage } from '../../xen/index.js';
import { takeTxRequests } from './tx-requests.js';

/** A TX ring in a plain page: the front writes `slots`, the back takes one packet. */
function take(slots: (Omit<NetifTxRequest, 'id' | 'gref'> | NetifExtraInfo)[], start = 0) {
  const page = bytesPage(new Uint8Array(PAGE_SIZE));
  const front = FrontRing.init(page, netifTxRequestCodec, netifTxResponseCodec, NETIF_TX_RING_ENTRY_SIZE);
  front.reqProdPvt = start;
  front.rspCons = start;
  front.pushRequests();
  const back = BackRing.attach(page, netifTxRequestCodec, netifTxResponseCodec, start, NETIF_TX_RING_ENTRY_SIZE);
  let id = 0;
  for (const s of slots) {
    if ('type' in s) front.putRequestAs(netifExtraInfoCodec, s);
    else front.putRequest({ gref: 8, id: id++, ...s });
  }
  front.pushRequests();
  const n = back.unconsumedRequests();
  assert.equal(typeof n, 'number');
  return takeTxRequests(back, n as number);
}

const gso = (size: number, type = XEN_NETIF_GSO_TYPE_TCPV4, flags = 0): NetifExtraInfo => ({
  type: XEN_NETIF_EXTRA_TYPE_GSO,
  flags,
  gso: { size, type, pad: 0, features: 0 },
});

describe('netback TX request checks (xenvif_tx_build_gops, Linux 3.18)', () => {
  it('a GSO packet with its extra and two further slots, across the 2^32 index wrap', () => {
    const t = take(
      [
        { offset: 100, flags: NETTXF_more_data | NETTXF_extra_info, size: 9000 },
        gso(1448),
        { offset: 0, flags: NETTXF_more_data, size: 4096 },
        { offset: 0, flags: 0, size: 4096 - 100 },
      ],
      0xffff_fffe,
    );
    assert.equal(t.kind, 'ok');
    if (t.kind !== 'ok') return;
    assert.equal(t.first.size, 9000 - 4096 - 3996);
    assert.equal(t.gsoSize, 1448);
    assert.equal(t.slots, 4);
    assert.equal(t.end, 2);
    assert.deepEqual(t.reqs, [
      { id: 0, extras: 1 },
      { id: 1, extras: 0 },
      { id: 2, extras: 0 },
    ]);
  });
  it('the extra promised but not there: fatal "Missing extra info"', () => {
    assert.deepEqual(take([{ offset: 0, flags: NETTXF_extra_info, size: 60 }]), { kind: 'fatal', message: 'Missing extra info' });
  });
  it('an extra of type NONE or unknown: fatal', () => {
    const none: NetifExtraInfo = { type: 0, flags: 0, raw: new Uint8Array(6) };
    assert.deepEqual(take([{ offset: 0, flags: NETTXF_extra_info, size: 60 }, none]), { kind: 'fatal', message: 'Invalid extra type: 0' });
    const odd: NetifExtraInfo = { type: 9, flags: 0, raw: new Uint8Array(6) };
    assert.deepEqual(take([{ offset: 0, flags: NETTXF_extra_info, size: 60 }, odd]), { kind: 'fatal', message: 'Invalid extra type: 9' });
  });
  it('GSO with size 0 or an unknown type: fatal (xenvif_set_skb_gso)', () => {
    assert.deepEqual(take([{ offset: 0, flags: NETTXF_extra_info, size: 60 }, gso(0)]), { kind: 'fatal', message: 'GSO size must not be zero.' });
    assert.deepEqual(take([{ offset: 0, flags: NETTXF_extra_info, size: 60 }, gso(1448, 7)]), { kind: 'fatal', message: 'Bad GSO type 7.' });
  });
  it('more_data on the last request the frontend produced: fatal "Asked for 1 slots but exceeds this limit"', () => {
    assert.deepEqual(
      take([
        { offset: 0, flags: NETTXF_more_data, size: 200 },
        { offset: 0, flags: NETTXF_more_data, size: 100 },
      ]),
      { kind: 'fatal', message: 'Asked for 1 slots but exceeds this limit' },
    );
  });
  it('a further slot crossing its page: fatal "Cross page boundary"', () => {
    assert.deepEqual(
      take([
        { offset: 0, flags: NETTXF_more_data, size: 300 },
        { offset: 4000, flags: 0, size: 200 },
      ]),
      { kind: 'fatal', message: 'Cross page boundary, txp->offset: fa0, size: 200' },
    );
  });
  it('a frame shorter than an Ethernet header: dropped ("Bad packet size")', () => {
    const t = take([{ offset: 0, flags: 0, size: 13 }]);
    assert.equal(t.kind, 'drop');
  });
});
