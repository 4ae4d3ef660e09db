import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { S, SimEnvironment } from '../../sim/index.js';
import { HEAP_MEMORY, Packet } from '../iface/packet.js';
import { ipv4 } from '../wire/addr.js';
import { ETH } from '../wire/ethernet.js';
import { WireError } from '../wire/error.js';
import { IPPROTO_UDP, emitIpv4, parseIpv4, type Ipv4Repr } from '../wire/ipv4.js';
import { Reassembler } from './reassembly.js';

const SRC = ipv4('10.0.0.1');
const DST = ipv4('10.0.0.2');
const TIMEOUT = 30 * S;

/** A fragment of datagram `ident`: payload bytes [off, off + len) of a pattern, as received. */
function frag(ident: number, off: number, len: number, mf: boolean): { pkt: Packet; ip: Ipv4Repr } {
  const buf = new Uint8Array(ETH.HEADER_LEN + 20 + len);
  emitIpv4(
    { src: SRC, dst: DST, protocol: IPPROTO_UDP, ttl: 64, tos: 0, ident, dontFragment: false, moreFragments: mf, fragOffset: off, payloadLen: len },
    buf,
    ETH.HEADER_LEN,
  );
  for (let i = 0; i < len; i++) buf[ETH.HEADER_LEN + 20 + i] = (off + i) & 255;
  const pkt = new Packet(buf);
  pkt.l3 = ETH.HEADER_LEN;
  const ip = parseIpv4(buf, pkt.l3, buf.length - pkt.l3);
  if (ip instanceof WireError) throw new Error(ip.message);
  return { pkt, ip };
}

function add(r: Reassembler, ident: number, off: number, len: number, mf: boolean): Packet | null {
  const f = frag(ident, off, len, mf);
  return r.add(f.pkt, f.ip, HEAP_MEMORY);
}

function setup(high = 4 << 20, low = 3 << 20): { env: SimEnvironment; r: Reassembler } {
  const env = new SimEnvironment({ seed: 1 });
  return { env, r: new Reassembler(env, TIMEOUT, high, low) };
}

function checkWhole(p: Packet | null, len: number): void {
  assert.ok(p !== null, 'datagram complete');
  const ip = parseIpv4(p.data, p.l3, p.length - p.l3);
  assert.ok(!(ip instanceof WireError), 'a valid IPv4 header');
  assert.equal(ip.payloadLen, len);
  assert.equal(ip.moreFragments || ip.fragOffset !== 0, false);
  for (let i = 0; i < len; i++) assert.equal(p.data[p.l4 + i], i & 255, `byte ${i}`);
}

describe('IPv4 reassembly', () => {
  it('puts fragments arriving in any order back together', () => {
    const { r } = setup();
    assert.equal(add(r, 1, 1480, 1480, true), null);
    assert.equal(add(r, 1, 2960, 40, false), null);
    checkWhole(add(r, 1, 0, 1480, true), 3000);
    assert.deepEqual([r.inProgress, r.memory, r.stats.reassembled], [0, 0, 1]);
  });

  it('ignores an exact duplicate fragment (counted) and still completes', () => {
    const { r } = setup();
    add(r, 2, 0, 1480, true);
    assert.equal(add(r, 2, 0, 1480, true), null);
    assert.equal(r.stats.dropped, 1);
    checkWhole(add(r, 2, 1480, 20, false), 1500);
  });

  it('drops the whole datagram when fragments overlap', () => {
    const { r } = setup();
    add(r, 3, 0, 1480, true);
    assert.equal(add(r, 3, 1472, 8, true), null);
    assert.equal(r.inProgress, 0);
    assert.equal(r.memory, 0);
    assert.equal(r.stats.dropped, 2);
  });

  it('drops a non-final fragment whose length is not a multiple of 8', () => {
    const { r } = setup();
    assert.equal(add(r, 4, 0, 1001, true), null);
    assert.deepEqual([r.inProgress, r.stats.dropped], [0, 1]);
  });

  it('drops an empty fragment', () => {
    const { r } = setup();
    assert.equal(add(r, 5, 8, 0, false), null);
    assert.deepEqual([r.inProgress, r.stats.dropped], [0, 1]);
  });

  it('abandons a datagram given two different ends, or data past its end', () => {
    const { r } = setup();
    add(r, 6, 1480, 100, false);
    assert.equal(add(r, 6, 1480, 200, false), null);
    assert.equal(r.inProgress, 0);
    add(r, 7, 800, 80, false);
    assert.equal(add(r, 7, 880, 80, true), null);
    assert.equal(r.inProgress, 0);
  });

  it('drops a datagram that would be longer than 65535 bytes', () => {
    const { r } = setup();
    for (let off = 0; off < 65520; off += 1480) add(r, 8, off, Math.min(1480, 65520 - off), true);
    assert.equal(add(r, 8, 65520, 15, false), null, '65535 payload bytes and a 20-byte header');
    assert.equal(r.inProgress, 0);
    assert.equal(r.stats.reassembled, 0);
  });

  it('forgets an incomplete datagram after ipfrag_time', () => {
    const { env, r } = setup();
    add(r, 9, 0, 1480, true);
    env.run({ until: TIMEOUT - 1 });
    assert.equal(r.inProgress, 1);
    env.run({ until: TIMEOUT + 1 });
    assert.deepEqual([r.inProgress, r.memory, r.stats.timeouts], [0, 0, 1]);
    assert.equal(add(r, 9, 1480, 20, false), null, 'the rest alone makes nothing');
  });

  it('past the high threshold evicts the least recently fed datagrams down to the low one, and keeps reassembling (ip_evictor)', () => {
    const { r } = setup(16_000, 12_000);
    // Ten incomplete datagrams of 1480 bytes each (14,800 bytes), then one more fed to ident 100.
    for (let id = 100; id < 110; id++) add(r, id, 0, 1480, true);
    add(r, 100, 2960, 40, false); // 100 is now the most recently fed
    add(r, 110, 0, 1480, true); // memory 16,320 > 16,000 at the next fragment
    assert.equal(r.stats.evicted, 0);
    add(r, 111, 1480, 20, false); // evicts first
    checkWhole(add(r, 111, 0, 1480, true), 1500);
    assert.ok(r.memory <= 12_000, `memory ${r.memory} after eviction`);
    assert.equal(r.stats.evicted, 3, 'the three oldest (101, 102, 103)');
    // The survivors, 100 among them, still complete.
    checkWhole(add(r, 100, 1480, 1480, true), 3000);
    for (let i = 0; i < 100; i++) {
      add(r, 200 + i, 1480, 20, false);
      checkWhole(add(r, 200 + i, 0, 1480, true), 1500);
    }
    assert.equal(r.stats.reassembled, 102);
  });
});
