import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, SimpleCpu, US } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import { Stack } from '../stack.js';
import { ipv4, mac } from '../wire/addr.js';
import { WireError } from '../wire/error.js';
import { IPPROTO_TCP, parseIpv4 } from '../wire/ipv4.js';
import { ACK, PSH } from '../wire/tcp.js';
import type { DeviceFeatures, DeviceUpper, Napi } from './device.js';
import { DirectLink, type DirectLinkOptions } from './direct-link.js';
import { gsoSegment } from './gso.js';
import { CSUM_UNNECESSARY, GSO_NONE, GSO_TCPV4, HEAP_MEMORY, type Packet } from './packet.js';

const profile = Profile.load('default');
const MSS = 1448;
const TCP_HDR = 32; // with the timestamp option

/** A stack-side stand-in that records NAPI schedules and polls only when told to. */
class TestUpper implements DeviceUpper {
  napi: Napi | null = null;
  schedules = 0;
  readonly memory = HEAP_MEMORY;
  constructor(readonly cpu: SimpleCpu) {}
  napiSchedule(napi: Napi): void {
    this.napi = napi;
    this.schedules++;
  }
  receive(): void {
    assert.fail('a NAPI device does not use netif_rx');
  }
  wake(): void {}
  /** One NAPI poll run: everything in the ring, then napi_complete. */
  drain(): Packet[] {
    const out: Packet[] = [];
    for (let p = this.napi!.poll(); p !== undefined; p = this.napi!.poll()) out.push(p);
    this.napi!.complete();
    return out;
  }
}

function link(
  env: SimEnvironment,
  opts: Partial<DirectLinkOptions> & { features?: Partial<DeviceFeatures> } = {},
): { l: DirectLink; a: TestUpper; b: TestUpper } {
  const l = new DirectLink(env, 'wire', mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), {
    bandwidth: 10e9,
    delay: 5 * US,
    rxRing: 256,
    irqCost: 1 * US,
    ...opts,
  });
  const a = new TestUpper(new SimpleCpu(env, 'a'));
  const b = new TestUpper(new SimpleCpu(env, 'b'));
  l.a.attach(a);
  l.b.attach(b);
  return { l, a, b };
}

/** A TCP/IPv4 frame (or GSO packet) of `payload` bytes from sequence `seq`: byte i of the stream is i & 255. */
function tcpPacket(stack: Stack, seq: number, payload: number, opts: { flags?: number; ack?: number; gso?: boolean } = {}): Packet {
  const pkt = stack.buildIp(ipv4('10.0.0.1'), ipv4('10.0.0.2'), IPPROTO_TCP, TCP_HDR + payload, true);
  const d = pkt.data;
  d[12] = 0x08;
  d[13] = 0x00;
  const t = pkt.l4;
  d[t + 1] = 80;
  d[t + 3] = 81;
  new DataView(d.buffer).setUint32(t + 4, seq);
  new DataView(d.buffer).setUint32(t + 8, opts.ack ?? 1000);
  d[t + 12] = (TCP_HDR / 4) << 4;
  d[t + 13] = opts.flags ?? ACK;
  d[t + 15] = 0xff;
  d[t + 20] = 1; // NOP NOP timestamp
  d[t + 21] = 1;
  d[t + 22] = 8;
  d[t + 23] = 10;
  for (let i = 0; i < payload; i++) d[t + TCP_HDR + i] = (seq + i) & 255;
  if (opts.gso === true) {
    pkt.gsoType = GSO_TCPV4;
    pkt.gsoSize = MSS;
    return pkt;
  }
  // A single frame with its checksums complete.
  pkt.gsoType = GSO_TCPV4;
  pkt.gsoSize = payload;
  const [only] = gsoSegment(pkt, false, HEAP_MEMORY);
  return only!;
}

function payloadOf(p: Packet): { seq: number; bytes: Uint8Array } {
  const ip = parseIpv4(p.data, p.l3, p.length - p.l3);
  assert.ok(!(ip instanceof WireError));
  const t = p.l3 + ip.headerLen;
  const hl = (p.data[t + 12]! >>> 4) * 4;
  return { seq: new DataView(p.data.buffer, p.data.byteOffset).getUint32(t + 4), bytes: p.data.subarray(t + hl, t + ip.payloadLen) };
}

describe('direct link: a NAPI NIC', () => {
  it('one interrupt for a burst; masked while the poll runs; a frame after napi_complete interrupts again', () => {
    const env = new SimEnvironment({ seed: 1 });
    const stack = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 's' });
    const { l, b } = link(env);
    for (let i = 0; i < 10; i++) l.a.xmit(tcpPacket(stack, i * 100, 100));
    env.run({ until: 100 * US });
    assert.equal(l.b.stats.irqs, 1, 'the interrupt stays masked until the poll completes');
    assert.equal(b.schedules, 1);
    assert.equal(l.b.rxPending, 10);
    assert.equal(b.drain().length, 10);
    l.a.xmit(tcpPacket(stack, 1000, 100));
    env.run({ until: 200 * US });
    assert.equal(l.b.stats.irqs, 2);
    assert.equal(b.schedules, 2);
  });

  it('a full RX ring drops what arrives (rx_missed_errors), the rest is delivered in order', () => {
    const env = new SimEnvironment({ seed: 1 });
    const stack = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 's' });
    const { l, b } = link(env, { rxRing: 8, txRing: 64 });
    for (let i = 0; i < 20; i++) assert.ok(l.a.xmit(tcpPacket(stack, i * 100, 100)));
    env.run({ until: 1000 * US });
    assert.equal(l.b.stats.rxDropped, 12);
    assert.deepEqual(
      b.drain().map((p) => payloadOf(p).seq),
      [0, 100, 200, 300, 400, 500, 600, 700],
    );
  });

  it('TSO: a 64 KiB GSO packet leaves as MSS frames within the MTU, in order, each timed on the wire', () => {
    const env = new SimEnvironment({ seed: 1 });
    const stack = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 's' });
    const { l, b } = link(env, { features: { txCsum: true, sg: true, tso: true }, frameOverhead: 24 });
    const payload = 64000;
    l.a.xmit(tcpPacket(stack, 0, payload, { gso: true }));
    env.run({ until: 1000 * US });
    const frames = b.drain();
    assert.equal(frames.length, Math.ceil(payload / MSS));
    assert.equal(l.a.stats.frames, frames.length);
    let seq = 0;
    for (const f of frames) {
      assert.ok(f.length <= 1514, `frame of ${f.length} bytes`);
      assert.equal(f.gsoType, GSO_NONE);
      const { seq: s, bytes } = payloadOf(f);
      assert.equal(s, seq);
      for (let i = 0; i < bytes.length; i++) assert.equal(bytes[i], (seq + i) & 255);
      seq += bytes.length;
    }
    assert.equal(seq, payload);
    // Serialization of every frame with its headers and overhead, not of one 64 KiB blob.
    const wireBytes = frames.reduce((n, f) => n + f.length + 24, 0);
    assert.equal(
      l.a.stats.bytes,
      frames.reduce((n, f) => n + f.length, 0),
    );
    assert.ok(wireBytes > payload + frames.length * (14 + 20 + TCP_HDR));
  });

  it('LRO: in-order frames of a flow waiting in the ring merge into one packet (tcp_gro_receive rules); PSH ends it, another ACK is not merged', () => {
    const env = new SimEnvironment({ seed: 1 });
    const stack = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 's' });
    const { l, b } = link(env, { features: { rxCsum: true, lro: true } });
    let seq = 0;
    const send = (n: number, opts: { flags?: number; ack?: number } = {}): void => {
      l.a.xmit(tcpPacket(stack, seq, n, opts));
      seq += n;
    };
    for (let i = 0; i < 5; i++) send(MSS);
    send(MSS, { flags: ACK | PSH }); // the last of the first merge
    send(MSS);
    send(MSS);
    send(MSS, { ack: 2000 }); // new ACK: a new packet
    send(500, { ack: 2000 }); // shorter: merged as the last
    send(MSS, { ack: 2000 }); // after a short one: new packet
    env.run({ until: 1000 * US });
    const got = b.drain();
    assert.deepEqual(
      got.map((p) => payloadOf(p).bytes.length),
      [6 * MSS, 2 * MSS, MSS + 500, MSS],
    );
    assert.equal(l.b.stats.lroMerged, 11 - 4);
    let at = 0;
    for (const p of got) {
      const ip = parseIpv4(p.data, p.l3, p.length - p.l3);
      assert.ok(!(ip instanceof WireError), 'valid IP header and checksum');
      const { seq: s, bytes } = payloadOf(p);
      assert.equal(s, at);
      for (let i = 0; i < bytes.length; i++) assert.equal(bytes[i], (s + i) & 255);
      at += bytes.length;
      assert.equal(p.csum, CSUM_UNNECESSARY);
      if (bytes.length > MSS) {
        assert.equal(p.gsoType, GSO_TCPV4);
        assert.equal(p.gsoSize, MSS);
      }
    }
    assert.equal(at, seq);
    assert.equal(got[0]!.data[got[0]!.l3 + 20 + 13]! & PSH, PSH, "the merged packet carries the last frame's PSH");
  });

  it('RX checksum offload vouches for complete, valid checksums only; a corrupted frame is left for the stack to verify', () => {
    const env = new SimEnvironment({ seed: 1 });
    const stack = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 's' });
    const { l, b } = link(env, { features: { rxCsum: true } });
    l.a.xmit(tcpPacket(stack, 0, 100));
    const bad = tcpPacket(stack, 100, 100);
    bad.data[bad.length - 1] = bad.data[bad.length - 1]! ^ 0xff;
    l.a.xmit(bad);
    env.run({ until: 100 * US });
    const [good, corrupt] = b.drain();
    assert.equal(good!.csum, CSUM_UNNECESSARY);
    assert.notEqual(corrupt!.csum, CSUM_UNNECESSARY);
  });
});
