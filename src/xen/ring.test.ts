import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  __HYPERVISOR_grant_table_op,
  GNTMAP_host_map,
  GNTST_okay,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  NETIF_RSP_OKAY,
  NETTXF_extra_info,
  netifExtraInfoCodec,
  netifTxRequestCodec,
  netifTxResponseCodec,
  rd32,
  ringSize,
  SRING,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  type NetifExtraInfo,
  type NetifTxRequest,
  type NetifTxResponse,
  type SlotCodec,
} from './abi/index.js';
import type { GnttabMapGrantRef, GnttabUnmapGrantRef } from './gnttab-op.js';
import { GuestFault } from './memory.js';
import { BackRing, bytesPage, concatPages, foreignPage, FrontRing, guestFramePage, RingError, type RingPage } from './ring.js';
import { makeHost } from './test-fixture.js';

const P = 4096;
const TX_ENTRY = 12;

/** A 4-byte request/response pair for the ring mechanics tests: a u32 value. */
const u32Codec: SlotCodec<number> = {
  size: 4,
  encode: (v, b, o) => new DataView(b.buffer, b.byteOffset).setUint32(o, v, true),
  decode: (b, o) => new DataView(b.buffer, b.byteOffset).getUint32(o, true),
};

function pair(
  start?: number,
  page: RingPage = bytesPage(new Uint8Array(P)),
): { front: FrontRing<number, number>; back: BackRing<number, number>; page: RingPage } {
  const front = FrontRing.init(page, u32Codec, u32Codec);
  if (start === undefined) return { front, back: BackRing.init(page, u32Codec, u32Codec), page };
  // Both ends attached at `start`, as after a reconnect at that index.
  front.sring.reqProd = start;
  front.sring.rspProd = start;
  return { front: FrontRing.attach(page, u32Codec, u32Codec, start), back: BackRing.attach(page, u32Codec, u32Codec, start), page };
}

describe('shared rings (io/ring.h)', () => {
  it('sizes the ring as __RING_SIZE does: the largest power of two of entries after the 64-byte header', () => {
    assert.equal(NET_TX_RING_SIZE, 256);
    assert.equal(NET_RX_RING_SIZE, 256);
    assert.equal(ringSize(P, 16), 128, 'netif control ring');
    assert.equal(ringSize(P, 112), 32, 'blkif');
    assert.equal(ringSize(P, 4), 512, '(4096 - 64) / 4 = 1008 → 512');
    assert.equal(ringSize(2 * P, 12), 512, 'two pages: 677 → 512');
    assert.deepEqual([0, 1, 2, 3, 255, 256, 1008].map(rd32), [0, 1, 2, 2, 128, 256, 512]);
  });

  it('SHARED_RING_INIT lays out the header; slots start at byte 64', () => {
    const bytes = new Uint8Array(P).fill(0xee);
    const front = FrontRing.init(bytesPage(bytes), netifTxRequestCodec, netifTxResponseCodec);
    const dv = new DataView(bytes.buffer);
    assert.deepEqual(
      [0, 4, 8, 12].map((o) => dv.getUint32(o, true)),
      [0, 1, 0, 1],
      'req_prod, req_event, rsp_prod, rsp_event',
    );
    assert.ok(
      bytes.subarray(16, 64).every((b) => b === 0),
      'pvt and padding zeroed',
    );
    assert.equal(bytes[64], 0xee, 'slots untouched');
    front.putRequest({ gref: 0x11223344, offset: 0, flags: 0, id: 7, size: 60 });
    front.putRequest({ gref: 0x55, offset: 0, flags: 0, id: 8, size: 60 });
    assert.equal(dv.getUint32(64, true), 0x11223344, 'request 0 in slot 0 at byte 64');
    assert.equal(dv.getUint32(64 + TX_ENTRY, true), 0x55, 'request 1 in slot 1, 12 bytes on');
    assert.equal(dv.getUint32(SRING.req_prod, true), 0, 'not visible before the push');
    front.pushRequests();
    assert.equal(dv.getUint32(SRING.req_prod, true), 2);
  });

  it('free-running indices wrap at 2^32 for requests and responses alike', () => {
    const start = 2 ** 32 - 3;
    const { front, back, page } = pair(start);
    const bytes = new Uint8Array(P);
    for (let i = 0; i < 6; i++) assert.equal(front.putRequest(1000 + i), (start + i) >>> 0);
    assert.equal(front.reqProdPvt, 3, 'req_prod_pvt wrapped past 2^32');
    assert.equal(front.freeRequests(), 512 - 6);
    front.pushRequests();
    page.readInto(0, bytes);
    const dv = new DataView(bytes.buffer);
    // Index 2^32 - 3 lives in slot (2^32 - 3) & 511 = 509; index 2^32 in slot 0.
    assert.equal(dv.getUint32(64 + 509 * 4, true), 1000);
    assert.equal(dv.getUint32(64 + 0 * 4, true), 1003);
    assert.equal(back.unconsumedRequests(), 6, 'req_prod 3 − req_cons 2^32 − 3 = 6 modulo 2^32');
    const got: number[] = [];
    for (let i = 0; i < 6; i++) got.push(back.consumeRequest());
    assert.deepEqual(got, [1000, 1001, 1002, 1003, 1004, 1005]);
    assert.equal(back.reqCons, 3);
    for (const r of got) back.putResponse(r + 1);
    assert.equal(back.rspProdPvt, 3, 'rsp_prod_pvt wrapped');
    back.pushResponses();
    assert.equal(front.unconsumedResponses(), 6);
    const rsp: number[] = [];
    for (let i = 0; i < 6; i++) rsp.push(front.consumeResponse());
    assert.deepEqual(rsp, [1001, 1002, 1003, 1004, 1005, 1006]);
    assert.equal(front.rspCons, 3);
    assert.equal(front.freeRequests(), 512);
    assert.equal(back.finalCheckForRequests(), 0);
    assert.equal(front.finalCheckForResponses(), 0);
  });

  it('RING_FULL after a ring’s worth of outstanding requests, also across the wrap; a response frees one slot', () => {
    for (const start of [0, 2 ** 32 - 100]) {
      const { front, back } = pair(start);
      for (let i = 0; i < 512; i++) {
        assert.equal(front.full(), false);
        front.putRequest(i);
      }
      assert.equal(front.full(), true);
      assert.equal(front.freeRequests(), 0);
      assert.throws(() => front.putRequest(999), /ring full/);
      front.pushRequests();
      assert.equal(back.unconsumedRequests(), 512);
      assert.equal(back.consumeRequest(), 0);
      assert.equal(front.full(), true, 'consuming a request does not free its slot; the response does');
      back.putResponse(0);
      back.pushResponses();
      assert.equal(front.unconsumedResponses(), 1);
      front.consumeResponse();
      assert.equal(front.freeRequests(), 1);
      // The back cannot answer requests it has not consumed.
      back.rspProdPvt = back.reqCons;
      assert.throws(() => back.putResponse(1), /answers no consumed request/);
    }
  });

  it('notifies only when the peer’s event index lies in (old, new], as the push macros compute', () => {
    const { front, back } = pair();
    // Fresh ring: req_event = 1, so the first request kicks the back.
    front.putRequest(1);
    assert.equal(front.pushRequestsAndCheckNotify(), true, 'req_event 1 ∈ (0, 1]');
    front.putRequest(2);
    assert.equal(front.pushRequestsAndCheckNotify(), false, 'req_event 1 ∉ (1, 2]: the back has not re-armed');
    // The back drains and re-arms with the final check: req_event = req_cons + 1 = 3.
    back.consumeRequest();
    back.consumeRequest();
    assert.equal(back.finalCheckForRequests(), 0);
    assert.equal(back.sring.reqEvent, 3);
    front.putRequest(3);
    assert.equal(front.pushRequestsAndCheckNotify(), true, 'req_event 3 ∈ (2, 3]');
    // A batching back asks for a kick only after 4 more: req_event = 7.
    back.consumeRequest();
    back.sring.reqEvent = 7;
    front.putRequest(4);
    front.putRequest(5);
    assert.equal(front.pushRequestsAndCheckNotify(), false, '7 ∉ (3, 5]');
    front.putRequest(6);
    front.putRequest(7);
    front.putRequest(8);
    assert.equal(front.pushRequestsAndCheckNotify(), true, '7 ∈ (5, 8]');
    // Responses: rsp_event starts at 1.
    back.putResponse(10);
    assert.equal(back.pushResponsesAndCheckNotify(), true, 'rsp_event 1 ∈ (0, 1]');
    back.putResponse(20);
    assert.equal(back.pushResponsesAndCheckNotify(), false, 'rsp_event 1 ∉ (1, 2]');
    // The final check finds work without re-arming; re-arms only once empty.
    assert.equal(front.finalCheckForResponses(), 2);
    assert.equal(front.sring.rspEvent, 1, 'not re-armed while work remains');
    front.consumeResponse();
    front.consumeResponse();
    assert.equal(front.finalCheckForResponses(), 0);
    assert.equal(front.sring.rspEvent, 3, 'rsp_event = rsp_cons + 1');
    back.putResponse(30);
    assert.equal(back.pushResponsesAndCheckNotify(), true);
  });

  it('notification hold-off across the 2^32 wrap: event indices compare modulo 2^32', () => {
    const start = 2 ** 32 - 2;
    const { front, back } = pair(start);
    back.sring.reqEvent = 1; // wants a kick when request 2^32 + 1 (index 1) appears
    front.putRequest(0); // index 2^32 - 2
    front.putRequest(0); // 2^32 - 1
    assert.equal(front.pushRequestsAndCheckNotify(), false, 'event 1 ∉ (2^32 − 2, 2^32]');
    front.putRequest(0); // index 0
    front.putRequest(0); // index 1
    assert.equal(front.pushRequestsAndCheckNotify(), true, 'event 1 ∈ (0, 2] across the wrap');
    assert.equal(back.unconsumedRequests(), 4);
    // The final check of a drained back at req_cons = 2^32 − 1 re-arms req_event = 0 (wrapped).
    back.reqCons = 2 ** 32 - 1;
    back.rspProdPvt = 2 ** 32 - 1;
    front.sring.reqProd = 2 ** 32 - 1;
    assert.equal(back.finalCheckForRequests(), 0);
    assert.equal(back.sring.reqEvent, 0);
  });

  it('a producer index pushed past the ring is a RingError, not a loop: requests and responses', () => {
    const { front, back } = pair();
    for (let i = 0; i < 4; i++) front.putRequest(i);
    front.pushRequests();
    // A hostile front claims 513 requests in a 512-entry ring.
    back.sring.reqProd = 513;
    const e = back.unconsumedRequests();
    assert.ok(e instanceof RingError);
    assert.equal(e.index, 'req_prod');
    assert.equal(e.prod, 513);
    assert.match(e.message, /RING_REQUEST_PROD_OVERFLOW/);
    assert.ok(back.finalCheckForRequests() instanceof RingError);
    assert.ok(back.requestProd() instanceof RingError);
    assert.equal(back.reqCons, 0, 'nothing consumed');
    // Exactly a ring's worth is legal; moving req_prod backwards is not.
    back.sring.reqProd = 512;
    assert.equal(back.unconsumedRequests(), 512);
    back.sring.reqProd = (0 - 1) >>> 0;
    assert.ok(back.unconsumedRequests() instanceof RingError, 'req_prod behind rsp_prod_pvt');
    // A consumer loop over requestProd() ends on the error.
    let loops = 0;
    const rp = back.requestProd();
    if (typeof rp === 'number') for (let c = back.reqCons; c !== rp; c = (c + 1) >>> 0) loops++;
    assert.equal(loops, 0);
    // Responses: a back claiming more responses than the front requested.
    back.sring.reqProd = 4;
    for (let i = 0; i < 4; i++) back.putResponse(back.consumeRequest());
    back.pushResponses();
    assert.equal(front.unconsumedResponses(), 4);
    front.sring.rspProd = 5;
    const r = front.unconsumedResponses();
    assert.ok(r instanceof RingError && r.index === 'rsp_prod');
    front.sring.rspProd = 600;
    assert.ok(front.finalCheckForResponses() instanceof RingError);
    assert.equal(front.rspCons, 0);
  });

  it('copies a slot out once and decodes the copy: no double fetch (XSA-155)', () => {
    const bytes = new Uint8Array(P);
    const fetches: number[] = [];
    // A view that counts fetches of slot bytes and, like a hostile peer racing the consumer,
    // rewrites the slot right after each fetch.
    const hostile: RingPage = {
      byteLength: P,
      getU32: (o) => new DataView(bytes.buffer).getUint32(o, true),
      setU32: (o, v) => new DataView(bytes.buffer).setUint32(o, v, true),
      readInto: (o, dst) => {
        dst.set(bytes.subarray(o, o + dst.length));
        if (o >= 64) {
          fetches.push(o);
          bytes.fill(0xff, o, o + dst.length);
        }
      },
      write: (o, src) => bytes.set(src, o),
    };
    const front = FrontRing.init(hostile, netifTxRequestCodec, netifTxResponseCodec);
    const back = BackRing.init(hostile, netifTxRequestCodec, netifTxResponseCodec);
    const sent: NetifTxRequest = { gref: 9, offset: 100, flags: 0, id: 3, size: 1400 };
    front.putRequest(sent);
    front.pushRequests();
    const got = back.consumeRequest();
    assert.deepEqual(got, sent, 'every field from the one fetch, none from the rewritten slot');
    assert.deepEqual(fetches, [64], 'one fetch of slot 0');
    // The copy is private: rewriting the shared slot later changes nothing consumed.
    bytes.fill(0x42, 64, 64 + 12);
    assert.deepEqual(got, sent);
    assert.deepEqual(
      back.copyRequest(0),
      { gref: 0x42424242, offset: 0x4242, flags: 0x4242, id: 0x4242, size: 0x4242 },
      'a new copy sees the new bytes',
    );
  });

  it('decodes a slot as another structure (netif: a GSO extra-info segment in a TX slot)', () => {
    const front = FrontRing.init(bytesPage(new Uint8Array(P)), netifTxRequestCodec, netifTxResponseCodec);
    const back = BackRing.init(front.sring.page, netifTxRequestCodec, netifTxResponseCodec);
    const gso: NetifExtraInfo = {
      type: XEN_NETIF_EXTRA_TYPE_GSO,
      flags: 0,
      gso: { size: 1448, type: XEN_NETIF_GSO_TYPE_TCPV4, pad: 0, features: 0 },
    };
    front.putRequest({ gref: 10, offset: 0, flags: NETTXF_extra_info, id: 1, size: 9000 });
    front.putRequestAs(netifExtraInfoCodec, gso);
    front.pushRequests();
    const first = back.consumeRequest();
    assert.equal(first.flags & NETTXF_extra_info, NETTXF_extra_info);
    assert.deepEqual(back.copyRequestAs(back.reqCons, netifExtraInfoCodec), gso);
    assert.throws(() => back.copyRequestAs(0, { size: 16, encode: () => {}, decode: () => 0 }), /does not fit a 12-byte ring slot/);
  });

  it('concatenated pages act as one ring range (multi-page rings)', () => {
    const a = new Uint8Array(P);
    const b = new Uint8Array(P);
    const front = FrontRing.init(concatPages([bytesPage(a), bytesPage(b)]), netifTxRequestCodec, netifTxResponseCodec);
    assert.equal(front.size, 512);
    // Slot 335 ends exactly at the end of the first page (64 + 336 · 12 = 4096); slot 336 starts the second.
    front.reqProdPvt = 335;
    front.rspCons = 335;
    front.putRequest({ gref: 0xaabbccdd, offset: 1, flags: 2, id: 3, size: 4 });
    front.putRequest({ gref: 0x01020304, offset: 5, flags: 6, id: 7, size: 8 });
    assert.equal(new DataView(a.buffer).getUint32(64 + 335 * 12, true), 0xaabbccdd);
    assert.equal(new DataView(b.buffer).getUint32(0, true), 0x01020304);
    const back = BackRing.attach(front.sring.page, netifTxRequestCodec, netifTxResponseCodec, 335);
    front.pushRequests();
    assert.equal(back.unconsumedRequests(), 2);
    assert.equal(back.consumeRequest().gref, 0xaabbccdd);
    assert.equal(back.consumeRequest().id, 7);
    // Accesses that straddle the boundary are split between the pages.
    const view = front.sring.page;
    a.fill(0x11, 4090);
    b.fill(0x22, 0, 6);
    const out = new Uint8Array(12);
    view.readInto(4090, out);
    assert.deepEqual([...out], [...new Array<number>(6).fill(0x11), ...new Array<number>(6).fill(0x22)]);
    view.setU32(4094, 0xa1b2c3d4);
    assert.deepEqual([a[4094], a[4095], b[0], b[1]], [0xd4, 0xc3, 0xb2, 0xa1]);
    assert.equal(view.getU32(4094), 0xa1b2c3d4);
    assert.throws(() => view.getU32(8190), /outside its 8192 bytes/);
  });

  it('front in a guest and back in Dom0 over a real grant mapping of the guest’s frame', () => {
    const h = makeHost();
    const g = h.guest('front');
    const v0 = h.dom0.domain.vcpus[0]!;
    // The front allocates, initialises and grants its ring page (xenbus_grant_ring).
    const gfn = g.frames.alloc()!;
    const front = FrontRing.init(guestFramePage(g.mem, gfn), netifTxRequestCodec, netifTxResponseCodec);
    const ref = g.gnttab.grantAccess(0, gfn, false);
    assert.ok(ref >= 8);
    // Dom0 maps it at one of its unpopulated frames (GNTTABOP_map_grant_ref, host_map).
    const hostGfn = h.dom0.frames.allocUnpopulated();
    const op: GnttabMapGrantRef = { host_addr: hostGfn * P, flags: GNTMAP_host_map, ref, dom: g.domid };
    assert.equal(h.run(h.hv.hypercall(v0, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_map_grant_ref, ops: [op] })), 0);
    assert.equal(op.status, GNTST_okay);
    const back = BackRing.init(guestFramePage(h.dom0.mem, hostGfn), netifTxRequestCodec, netifTxResponseCodec);
    assert.equal(back.size, NET_TX_RING_SIZE);
    // 300 requests through the 256-entry ring in rounds: every one crosses the domains.
    const seen: number[] = [];
    const answered: NetifTxResponse[] = [];
    let notifies = 0;
    for (let id = 0; id < 300; ) {
      while (!front.full() && id < 300) front.putRequest({ gref: 100 + id, offset: 0, flags: 0, id: id++, size: 64 });
      if (front.pushRequestsAndCheckNotify()) notifies++;
      let n = back.unconsumedRequests();
      assert.equal(typeof n, 'number');
      while ((n as number) > 0) {
        const req = back.consumeRequest();
        seen.push(req.id);
        back.putResponse({ id: req.id, status: NETIF_RSP_OKAY });
        n = back.unconsumedRequests();
      }
      back.pushResponsesAndCheckNotify();
      assert.equal(back.finalCheckForRequests(), 0);
      let m = front.unconsumedResponses();
      while ((m as number) > 0) {
        answered.push(front.consumeResponse());
        m = front.unconsumedResponses();
      }
      assert.equal(front.finalCheckForResponses(), 0);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 300 }, (_, i) => i),
    );
    assert.deepEqual(
      answered.map((r) => r.id),
      seen,
    );
    assert.equal(notifies, 2, 'one kick per round: the back re-armed req_event each time it drained');
    // The bytes are the guest's: its own view of the page shows Dom0's responses.
    assert.equal(new DataView(g.mem.view(gfn).buffer, g.mem.view(gfn).byteOffset).getUint32(SRING.rsp_prod, true), 300);
    // After unmapping, Dom0's view of the ring faults: the page is gone from its physmap.
    const un: GnttabUnmapGrantRef = { host_addr: hostGfn * P, dev_bus_addr: 0, handle: op.handle! };
    h.run(h.hv.hypercall(v0, { nr: __HYPERVISOR_grant_table_op, cmd: GNTTABOP_unmap_grant_ref, ops: [un] }));
    assert.equal(un.status, GNTST_okay);
    assert.throws(() => back.unconsumedRequests(), GuestFault);
    assert.ok(g.gnttab.endAccess(ref), 'the front can end its grant once unmapped');
  });

  it('a back over a privileged foreign mapping sees the same ring', () => {
    const h = makeHost();
    const g = h.guest('front');
    const gfn = g.frames.alloc()!;
    const front = FrontRing.init(guestFramePage(g.mem, gfn), netifTxRequestCodec, netifTxResponseCodec);
    const fm = h.run(h.hv.foreignMap(h.dom0.domain.vcpus[0]!, g.domid, [gfn]));
    assert.equal(fm.rc, 0);
    const back = BackRing.init(foreignPage(fm.mapping!, 0), netifTxRequestCodec, netifTxResponseCodec);
    front.putRequest({ gref: 1, offset: 2, flags: 0, id: 5, size: 6 });
    assert.equal(front.pushRequestsAndCheckNotify(), true);
    assert.deepEqual(back.consumeRequest(), { gref: 1, offset: 2, flags: 0, id: 5, size: 6 });
    back.putResponse({ id: 5, status: NETIF_RSP_OKAY });
    assert.equal(back.pushResponsesAndCheckNotify(), true);
    assert.deepEqual(front.consumeResponse(), { id: 5, status: NETIF_RSP_OKAY });
    fm.mapping!.unmap();
  });
});
