import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, S, SimEnvironment, SimpleCpu, US, type Executor, type ProcessGenerator } from '../../sim/index.js';
import { Profile } from '../../profile/index.js';
import type { DeviceFeatures, DeviceUpper, Napi } from '../iface/device.js';
import { DirectLink, type LinkEnd } from '../iface/direct-link.js';
import { CSUM_PARTIAL, HEAP_MEMORY, Packet, PacketBuffer, type PacketMemory } from '../iface/packet.js';
import { ETH, ETHERTYPE_IPV4, emitEthernet } from '../wire/ethernet.js';
import { IP, IPPROTO_UDP, emitIpv4 } from '../wire/ipv4.js';
import { l4ChecksumValid } from '../wire/l4-checksum.js';
import { emitUdp } from '../wire/udp.js';
import { isSocketError } from '../socket/errors.js';
import { Stack } from '../stack.js';
import { IPV4_BROADCAST, MAC_BROADCAST, formatMac, ipv4, mac, readMac, writeMac, type MacAddr } from '../wire/addr.js';
import { Bridge, type BridgePort } from './bridge.js';

const profile = Profile.load('default');
const FRAME = profile.ns('net.bridge.frame');
const FLOOD_COPY = profile.ns('net.bridge.floodCopy');
/** A locally administered test EtherType (IEEE 802 local experimental 1). */
const ETHERTYPE_TEST = 0x88b5;

function ok<T>(v: T): Exclude<T, { code: string; message: string }> {
  if (isSocketError(v)) assert.fail(v.toString());
  return v as Exclude<T, { code: string; message: string }>;
}

interface Rx {
  dst: MacAddr;
  src: MacAddr;
  tag: number;
  data: Uint8Array;
}

/** A host without a stack on the far end of a port's link: sends the frames a test builds (any source address), records what it receives. */
class RawHost implements DeviceUpper {
  readonly received: Rx[] = [];
  readonly memory = HEAP_MEMORY;
  constructor(
    readonly cpu: Executor,
    readonly nic: LinkEnd,
    readonly mac: MacAddr,
  ) {
    nic.attach(this);
  }
  napiSchedule(napi: Napi): void {
    for (let p = napi.poll(); p !== undefined; p = napi.poll()) this.take(p);
    napi.complete();
  }
  receive(pkt: Packet): void {
    this.take(pkt);
  }
  wake(): void {}
  private take(p: Packet): void {
    this.received.push({ dst: readMac(p.data, 0), src: readMac(p.data, 6), tag: p.data[14]!, data: p.data.slice() });
    p.release();
  }
  /** Sends a minimum-size frame to `dst` from `src` (default its own address), carrying `tag`. */
  send(dst: MacAddr, tag: number, src: MacAddr = this.mac): void {
    const p = Packet.alloc(HEAP_MEMORY, 60);
    writeMac(p.data, 0, dst);
    writeMac(p.data, 6, src);
    p.data[12] = ETHERTYPE_TEST >> 8;
    p.data[13] = ETHERTYPE_TEST & 0xff;
    p.data[14] = tag;
    assert.ok(this.nic.xmit(p), 'the host NIC takes the frame');
  }
  /** Sends a broadcast UDP datagram whose checksum is left partial (CHECKSUM_PARTIAL, as a paravirtual sender's). */
  sendPartialUdp(payload: Uint8Array): void {
    const len = ETH.HEADER_LEN + IP.HEADER_LEN + 8 + payload.length;
    const p = Packet.alloc(HEAP_MEMORY, len);
    emitEthernet({ dst: MAC_BROADCAST, src: this.mac, ethertype: ETHERTYPE_IPV4 }, p.data, 0);
    const src = ipv4('10.0.0.9');
    emitIpv4(
      {
        src,
        dst: IPV4_BROADCAST,
        protocol: IPPROTO_UDP,
        ttl: 64,
        tos: 0,
        ident: 1,
        dontFragment: false,
        moreFragments: false,
        fragOffset: 0,
        payloadLen: 8 + payload.length,
      },
      p.data,
      ETH.HEADER_LEN,
    );
    const l4 = ETH.HEADER_LEN + IP.HEADER_LEN;
    p.data.set(payload, l4 + 8);
    emitUdp({ srcPort: 9, dstPort: 9, payloadLen: payload.length }, p.data, l4, src, IPV4_BROADCAST, 'partial');
    p.l4 = l4;
    p.csum = CSUM_PARTIAL;
    p.csumStart = l4;
    p.csumOffset = 6;
    assert.ok(this.nic.xmit(p));
  }
  tags(): number[] {
    return this.received.map((r) => r.tag);
  }
}

interface LinkOpts {
  bandwidth?: number;
  txRing?: number;
  features?: Partial<DeviceFeatures>;
}

function link(env: SimEnvironment, name: string, hostMac: MacAddr, portMac: MacAddr, o: LinkOpts = {}): DirectLink {
  return new DirectLink(env, name, hostMac, portMac, {
    bandwidth: o.bandwidth ?? 1e9,
    delay: 5 * US,
    rxRing: profile.count('net.dev.rxRing'),
    irqCost: profile.ns('net.irq'),
    ...(o.txRing !== undefined ? { txRing: o.txRing } : {}),
    ...(o.features !== undefined ? { features: o.features } : {}),
  });
}

/** Dom0's packet memory in tests: counts buffers out, and scribbles over a freed one so that a use after free shows. */
class ScribblingPool implements PacketMemory {
  readonly domid = -1;
  out = 0;
  allocs = 0;
  readonly free: Uint8Array[] = [];
  alloc(len: number): PacketBuffer {
    this.allocs++;
    this.out++;
    const i = this.free.findIndex((b) => b.length >= len);
    const bytes = i >= 0 ? this.free.splice(i, 1)[0]! : new Uint8Array(Math.max(len, 2048));
    bytes.fill(0);
    return new ScribbledBuffer(bytes.subarray(0, Math.max(len, 0)), bytes, this);
  }
}

class ScribbledBuffer extends PacketBuffer {
  readonly domid = -1;
  readonly gfn = -1;
  readonly offset = 0;
  constructor(
    readonly bytes: Uint8Array,
    private readonly whole: Uint8Array,
    private readonly pool: ScribblingPool,
  ) {
    super();
  }
  protected recycle(): void {
    this.pool.out--;
    this.whole.fill(0xa5);
    this.pool.free.push(this.whole);
  }
}

/** Dom0: a stack on its own CPU with a bridge, br0 at 10.0.0.254/24. */
function dom0(env: SimEnvironment, p: Profile = profile, memory?: PacketMemory): { cpu: SimpleCpu; stack: Stack; br: Bridge } {
  const cpu = new SimpleCpu(env, 'dom0-cpu');
  const stack = new Stack({ env, cpu, profile: p, name: 'dom0', memory });
  const br = new Bridge(stack, p);
  stack.addInterface(br.dev, { address: ipv4('10.0.0.254'), prefix: 24 });
  return { cpu, stack, br };
}

/** Raw hosts A, B, C (02:00:00:00:00:0a/0b/0c) on ports pa, pb, pc (fe:00:00:00:00:0a/0b/0c). */
function threeRaw(env: SimEnvironment, br: Bridge, o: Partial<Record<'a' | 'b' | 'c', LinkOpts>> = {}) {
  const mk = (n: 'a' | 'b' | 'c') => {
    const hm = mac(`02:00:00:00:00:0${n}`);
    const l = link(env, `l${n}`, hm, mac(`fe:00:00:00:00:0${n}`), o[n]);
    const host = new RawHost(new SimpleCpu(env, `${n}-cpu`), l.a, hm);
    const port = br.addPort(l.b);
    return { host, port, link: l };
  };
  return { a: mk('a'), b: mk('b'), c: mk('c') };
}

function entryOf(br: Bridge, m: MacAddr): string | undefined {
  return br.showMacs().find((e) => e.mac === formatMac(m))?.port;
}

describe('bridge: learning and forwarding', () => {
  it('learns source addresses per port, floods unknown unicast to every other port, then forwards to the learned port only', () => {
    const env = new SimEnvironment({ seed: 1 });
    const { cpu, br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    a.host.send(b.host.mac, 1);
    env.run({ until: 1 * MS });
    assert.deepEqual([a.host.tags(), b.host.tags(), c.host.tags()], [[], [1], [1]], 'unknown destination: flooded, not back to A');
    assert.equal(entryOf(br, a.host.mac), 'la.b');
    assert.equal(entryOf(br, b.host.mac), undefined);
    b.host.send(a.host.mac, 2);
    env.run({ until: 2 * MS });
    assert.deepEqual([a.host.tags(), b.host.tags(), c.host.tags()], [[2], [1], [1]], 'known destination: to its port only');
    assert.equal(entryOf(br, b.host.mac), 'lb.b');
    assert.equal(br.stats.floodedUnknown, 1);
    assert.equal(br.stats.forwarded, 1);
    assert.equal(br.stats.floodCopies, 2);
    assert.equal(br.fdb.stats.learned, 2);
    assert.deepEqual(br.stats.dropped, {});
    // The bridge's work is the softirq time of Dom0's CPU: two frames, one of them copied once more.
    assert.equal(cpu.busy.softirq, 2 * FRAME + FLOOD_COPY);
    assert.equal(a.port.stats.rxFrames, 1);
    assert.equal(c.port.stats.txFrames, 1);
  });

  it('floods broadcast to every port but the ingress one and passes it up to the host', () => {
    const env = new SimEnvironment({ seed: 2 });
    const pool = new ScribblingPool();
    const { stack, br } = dom0(env, profile, pool);
    const { a, b, c } = threeRaw(env, br);
    a.host.send(MAC_BROADCAST, 7);
    c.host.send(mac('01:00:5e:00:00:01'), 8);
    env.run({ until: 1 * MS });
    assert.deepEqual([a.host.tags(), b.host.tags(), c.host.tags()], [[8], [7, 8], [7]]);
    assert.equal(br.stats.flooded, 2);
    assert.equal(br.stats.localIn, 2, 'both went up to br0');
    assert.equal(stack.stats.unknownProtocol, 2, "Dom0's stack saw them (and has no protocol for the test EtherType)");
    assert.equal(pool.allocs, 2, "each frame landed once in Dom0's memory: flooding clones, it does not copy");
    assert.equal(pool.out, 0, 'every clone and the original released');
  });

  it('a flooded frame with a partial checksum gets a private copy for each port that completes it in software', () => {
    const env = new SimEnvironment({ seed: 21 });
    const pool = new ScribblingPool();
    const { cpu, stack, br } = dom0(env, profile, pool);
    const { a, b, c } = threeRaw(env, br);
    const payload = new Uint8Array(1000).map((_, i) => (i * 13) & 0xff);
    a.host.sendPartialUdp(payload);
    env.run({ until: 1 * MS });
    const len = ETH.HEADER_LEN + IP.HEADER_LEN + 8 + payload.length;
    for (const h of [b.host, c.host]) {
      assert.equal(h.received.length, 1);
      const d = h.received[0]!.data;
      assert.ok(l4ChecksumValid(d, 34, 8 + payload.length, ipv4('10.0.0.9'), IPV4_BROADCAST, IPPROTO_UDP), 'completed checksum is right');
    }
    assert.equal(br.stats.unclones, 2);
    assert.equal(stack.udp.stats.noPort, 1, 'the original went up to Dom0');
    assert.equal(pool.out, 0);
    assert.equal(pool.allocs, 3, 'the received frame and two private copies');
    // Charged: the frame, two further copies (clone cost plus the bytes), Dom0's receive of
    // the original, and each port's software checksum.
    const copy = Math.round(len * profile.nsPerByte('net.copy'));
    const csum = Math.round((len - 34) * profile.nsPerByte('net.csum'));
    assert.equal(cpu.busy.softirq, FRAME + 2 * FLOOD_COPY + 2 * copy + profile.ns('net.rx.packet') + 2 * csum);
  });

  it('never sends a frame back out of its ingress port (no hairpin)', () => {
    const env = new SimEnvironment({ seed: 3 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    const x = mac('02:00:00:00:00:99');
    a.host.send(MAC_BROADCAST, 1, x); // x is behind port a now
    env.run({ until: 1 * MS });
    a.host.send(x, 2);
    a.host.send(a.host.mac, 3); // to its own sender
    env.run({ until: 2 * MS });
    assert.deepEqual([a.host.tags(), b.host.tags(), c.host.tags()], [[], [1], [1]]);
    assert.equal(br.stats.dropped.hairpin, 2);
    assert.equal(a.port.stats.dropped.hairpin, 2);
  });

  it('forgets a learned address 300 s after the last frame from it, and a frame from it refreshes the entry', () => {
    const env = new SimEnvironment({ seed: 4 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    assert.equal(br.fdb.ageing, 300 * S);
    a.host.send(MAC_BROADCAST, 1); // A learned at ~t0
    env.run({ until: 299 * S });
    b.host.send(a.host.mac, 2);
    env.run({ until: 299 * S + 1 * MS });
    assert.deepEqual(c.host.tags(), [1], 'still known at 299 s: not flooded');
    assert.deepEqual(a.host.tags(), [2]);
    env.run({ until: 301 * S });
    assert.equal(entryOf(br, a.host.mac), undefined, 'aged out');
    assert.equal(br.fdb.stats.aged, 1, "A's entry (B's, learned at 299 s, lives until 599 s)");
    b.host.send(a.host.mac, 3);
    env.run({ until: 301 * S + 1 * MS });
    assert.deepEqual(c.host.tags(), [1, 3], 'unknown again: flooded');
    assert.deepEqual(a.host.tags(), [2, 3]);
    // Refresh: A sends at 301 s and again at 500 s; at 700 s it is still known (aged at 800 s).
    a.host.send(MAC_BROADCAST, 4);
    env.run({ until: 500 * S });
    a.host.send(MAC_BROADCAST, 5);
    env.run({ until: 700 * S });
    b.host.send(a.host.mac, 6);
    env.run({ until: 700 * S + 1 * MS });
    assert.deepEqual(c.host.tags(), [1, 3, 4, 5], 'refreshed at 500 s: not flooded at 700 s');
    env.run({ until: 801 * S });
    assert.equal(entryOf(br, a.host.mac), undefined);
  });

  it('moves an address to the port it is now seen on', () => {
    const env = new SimEnvironment({ seed: 5 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    a.host.send(MAC_BROADCAST, 1);
    env.run({ until: 1 * MS });
    assert.equal(entryOf(br, a.host.mac), 'la.b');
    // A's address now appears behind port c (the host moved).
    c.host.send(MAC_BROADCAST, 2, a.host.mac);
    env.run({ until: 2 * MS });
    assert.equal(entryOf(br, a.host.mac), 'lc.b');
    assert.equal(br.fdb.stats.moved, 1);
    b.host.send(a.host.mac, 3);
    env.run({ until: 3 * MS });
    assert.deepEqual([a.host.tags(), c.host.tags()], [[2], [1, 3]]);
  });

  it("a forged source address teaches the FDB and diverts the victim's traffic until the victim sends again (Linux behaviour)", () => {
    // This is what Linux's bridge does (br_fdb_update moves an entry to whichever port last
    // sent with that source address; nothing checks who owns it): guest C, sending with B's
    // address, receives the frames meant for B until B's next frame moves the entry back.
    // HV²M's discovery must not repeat this: there a forged address must not redirect anything.
    const env = new SimEnvironment({ seed: 6 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    b.host.send(MAC_BROADCAST, 1);
    env.run({ until: 1 * MS });
    a.host.send(b.host.mac, 2);
    env.run({ until: 2 * MS });
    assert.deepEqual([b.host.tags(), c.host.tags()], [[2], [1]]);
    c.host.send(a.host.mac, 3, b.host.mac); // C forges B's address
    env.run({ until: 3 * MS });
    assert.equal(entryOf(br, b.host.mac), 'lc.b', "the FDB believes B is behind C's port");
    a.host.send(b.host.mac, 4);
    env.run({ until: 4 * MS });
    assert.deepEqual([b.host.tags(), c.host.tags()], [[2], [1, 4]], "A's frame to B went to C");
    b.host.send(a.host.mac, 5); // the victim's next frame
    env.run({ until: 5 * MS });
    assert.equal(entryOf(br, b.host.mac), 'lb.b', 'moved back');
    a.host.send(b.host.mac, 6);
    env.run({ until: 6 * MS });
    assert.deepEqual(
      [b.host.tags(), c.host.tags()],
      [
        [2, 6],
        [1, 4],
      ],
      'B gets its traffic again',
    );
    assert.equal(br.fdb.stats.moved, 2);
  });

  it("does not learn the host's own addresses or invalid sources, and frames to a local address go up, not out", () => {
    const env = new SimEnvironment({ seed: 7 });
    const { stack, br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    assert.equal(br.mac, mac('fe:00:00:00:00:0a'), 'the lowest port address');
    c.host.send(MAC_BROADCAST, 1, br.mac); // forged bridge address
    c.host.send(MAC_BROADCAST, 2, mac('01:00:00:00:00:01')); // multicast source
    c.host.send(MAC_BROADCAST, 3, 0);
    env.run({ until: 1 * MS });
    assert.equal(br.fdb.stats.ownSource, 1);
    assert.equal(br.fdb.get(br.mac)?.isLocal, true, 'the local entry stays');
    assert.deepEqual(a.host.tags(), [1], 'the frame itself is still flooded');
    assert.equal(br.stats.dropped.badSource, 2);
    a.host.send(b.port.mac, 4); // to port b's own address: for the host
    a.host.send(br.mac, 5);
    env.run({ until: 2 * MS });
    assert.deepEqual([b.host.tags(), c.host.tags()], [[1], []]);
    assert.equal(stack.stats.unknownProtocol, 3, 'the broadcast and both local frames went up to br0');
    // Link-local 01:80:C2:00:00:0X other than the STP group address: not forwarded.
    a.host.send(mac('01:80:c2:00:00:02'), 6);
    a.host.send(mac('01:80:c2:00:00:00'), 7);
    env.run({ until: 3 * MS });
    assert.deepEqual(b.host.tags(), [1, 7]);
    assert.equal(br.stats.dropped.linkLocal, 1);
  });
});

describe('bridge: ports', () => {
  it('removing a port flushes its FDB entries and releases (and counts) the frames queued to it', () => {
    const env = new SimEnvironment({ seed: 8 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br, { b: { bandwidth: 1e6, txRing: 1 } });
    b.host.send(MAC_BROADCAST, 0);
    env.run({ until: 2 * MS });
    for (let i = 1; i <= 10; i++) a.host.send(b.host.mac, i);
    env.run({ until: 2 * MS + 100 * US });
    const queued = b.port.attachment.txq.length;
    assert.ok(queued >= 5, `frames wait in port b's queue (${queued})`);
    br.removePort(b.port);
    assert.equal(br.stats.dropped.portRemoved, queued);
    assert.equal(b.port.stats.dropped.portRemoved, queued);
    assert.equal(entryOf(br, b.host.mac), undefined, "B's learned entry is gone");
    assert.equal(br.fdb.get(b.port.mac), undefined, "port b's local entry is gone");
    assert.equal(br.ports.length, 2);
    a.host.send(b.host.mac, 11);
    b.host.send(a.host.mac, 12); // arrives on a device that is no longer a port
    env.run({ until: 100 * MS });
    assert.deepEqual(c.host.tags(), [0, 11], 'unknown again: flooded to the remaining ports');
    assert.ok(!a.host.tags().includes(12));
    assert.equal(b.port.attachment.stats.rxDetached, 1);
    assert.ok(b.host.tags().length < 11, 'B got only what was on its link when the port left');
  });

  it('a full egress queue drops and counts', () => {
    const env = new SimEnvironment({ seed: 9 });
    const small = profile.with({ 'net.dev.txQueueLen': { value: 4, unit: 'count', source: 'test: a short qdisc' } });
    const { br } = dom0(env, small);
    const { a, b } = threeRaw(env, br, { b: { bandwidth: 1e6, txRing: 1 } });
    b.host.send(MAC_BROADCAST, 0);
    env.run({ until: 2 * MS });
    for (let i = 1; i <= 20; i++) a.host.send(b.host.mac, i);
    env.run({ until: 200 * MS });
    // One frame on the link's ring, four in the queue, fifteen dropped.
    assert.equal(b.port.stats.dropped.queueFull, 15);
    assert.equal(br.stats.dropped.queueFull, 15);
    assert.deepEqual(b.host.tags(), [1, 2, 3, 4, 5], 'B gets the frames that fitted, in order');
    assert.equal(b.port.attachment.txq.stats.dropped, 15);
  });

  it('a port whose carrier is down neither takes nor sends frames, and its learned entries go', () => {
    const env = new SimEnvironment({ seed: 10 });
    const { br } = dom0(env);
    const { a, b, c } = threeRaw(env, br);
    b.host.send(MAC_BROADCAST, 1);
    env.run({ until: 1 * MS });
    br.setCarrier(b.port, false);
    assert.equal(entryOf(br, b.host.mac), undefined);
    a.host.send(b.host.mac, 2);
    b.host.send(a.host.mac, 3);
    env.run({ until: 2 * MS });
    assert.deepEqual([a.host.tags(), b.host.tags(), c.host.tags()], [[1], [], [1, 2]]);
    assert.equal(b.port.stats.dropped.portDisabled, 1);
    br.setCarrier(b.port, true);
    a.host.send(b.host.mac, 4);
    env.run({ until: 3 * MS });
    assert.deepEqual(b.host.tags(), [4]);
  });

  it("Xen-style ports sharing fe:ff:ff:ff:ff:ff: the bridge takes the physical NIC's lower address; the shared local entry survives while a holder remains", () => {
    const env = new SimEnvironment({ seed: 11 });
    const { br } = dom0(env);
    const vifMac = mac('fe:ff:ff:ff:ff:ff');
    const nicMac = mac('00:16:3e:00:00:01');
    const l1 = link(env, 'vif1.0', mac('00:16:3e:00:01:00'), vifMac);
    const l2 = link(env, 'vif2.0', mac('00:16:3e:00:02:00'), vifMac);
    const p1 = br.addPort(l1.b);
    assert.equal(br.mac, vifMac);
    const p2 = br.addPort(l2.b);
    const lp = link(env, 'peth0', mac('00:16:3e:ff:00:00'), nicMac);
    br.addPort(lp.b);
    assert.equal(br.mac, nicMac, 'lowest port address');
    assert.equal(br.fdb.get(vifMac)?.port, p1, 'the first holder');
    br.removePort(p1);
    assert.equal(br.fdb.get(vifMac)?.port, p2, 'moved to the other holder');
    br.removePort(p2);
    assert.equal(br.fdb.get(vifMac), undefined);
    assert.equal(br.fdb.get(nicMac)?.isLocal, true);
    assert.throws(() => br.addPort(lp.b), /already a port/);
  });
});

describe('bridge: stacks on the ports and Dom0 on br0', () => {
  function hosts(env: SimEnvironment, memory?: PacketMemory) {
    const d = dom0(env, profile, memory);
    // Host 1's link offloads checksums and segmentation (TSO on the wire, partial checksums
    // crossing it); host 2's offloads nothing, so port 2's queue completes checksums in software.
    const offloads = { txCsum: true, rxCsum: true, sg: true, tso: true };
    const l1 = link(env, 'vif1.0', mac('00:16:3e:00:00:01'), mac('fe:ff:ff:ff:ff:01'), { features: offloads });
    const l2 = link(env, 'vif2.0', mac('00:16:3e:00:00:02'), mac('fe:ff:ff:ff:ff:02'));
    const s1 = new Stack({ env, cpu: new SimpleCpu(env, 'g1'), profile, name: 'g1' });
    const s2 = new Stack({ env, cpu: new SimpleCpu(env, 'g2'), profile, name: 'g2' });
    s1.addInterface(l1.a, { address: ipv4('10.0.0.1'), prefix: 24 });
    s2.addInterface(l2.a, { address: ipv4('10.0.0.2'), prefix: 24 });
    const p1: BridgePort = d.br.addPort(l1.b);
    const p2: BridgePort = d.br.addPort(l2.b);
    return { ...d, s1, s2, p1, p2 };
  }

  it("ping between two stacks through the bridge, ping to the bridge's own address, and from Dom0 out", () => {
    const env = new SimEnvironment({ seed: 12 });
    const { stack, br, s1, s2 } = hosts(env);
    const got: string[] = [];
    const ping = (from: Stack, to: string, tag: string) =>
      env.process(
        (function* (): ProcessGenerator<void> {
          const sock = from.icmp.openPing();
          const payload = Buffer.from(`hello ${tag}`);
          for (let seq = 1; seq <= 3; seq++) {
            ok(yield* sock.send(ipv4(to), seq, payload));
            const r = yield* sock.recv();
            assert.equal(Buffer.from(r.data).toString(), `hello ${tag}`);
            assert.equal(r.seq, seq);
            got.push(`${tag}:${seq}`);
          }
          sock.close();
        })(),
      );
    ping(s1, '10.0.0.2', 'g1->g2');
    env.run({ until: 100 * MS });
    ping(s2, '10.0.0.254', 'g2->dom0');
    env.run({ until: 200 * MS });
    ping(stack, '10.0.0.1', 'dom0->g1');
    env.run({ until: 300 * MS });
    assert.deepEqual(got, ['g1->g2:1', 'g1->g2:2', 'g1->g2:3', 'g2->dom0:1', 'g2->dom0:2', 'g2->dom0:3', 'dom0->g1:1', 'dom0->g1:2', 'dom0->g1:3']);
    assert.ok(br.stats.forwarded >= 6, 'echo requests and replies forwarded');
    assert.ok(br.stats.localIn >= 3 && br.stats.localOut >= 3, 'Dom0 received and sent through br0');
    assert.deepEqual(br.stats.dropped, {});
  });

  it('a TCP stream between two stacks through the bridge arrives byte-exact', () => {
    const env = new SimEnvironment({ seed: 13 });
    const pool = new ScribblingPool();
    const { br, s1, s2, p2 } = hosts(env, pool);
    const N = 2 * 1024 * 1024;
    const data = new Uint8Array(N);
    for (let i = 0; i < N; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
    const out: { received: Uint8Array | null } = { received: null };
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(s2.tcp.listen(5001));
        const conn = ok(yield* l.accept());
        const parts: Uint8Array[] = [];
        let n = 0;
        for (;;) {
          const d = ok(yield* conn.recv(65536));
          if (d.length === 0) break;
          parts.push(d.slice());
          n += d.length;
        }
        out.received = Buffer.concat(parts, n);
        yield* conn.close();
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const sock = s1.tcp.socket();
        ok(yield* sock.connect(ipv4('10.0.0.2'), 5001));
        for (let off = 0; off < N; off += 65536) ok(yield* sock.send(data.subarray(off, off + 65536)));
        yield* sock.close();
      })(),
    );
    env.run({ until: 5 * S });
    const received = out.received;
    assert.ok(received !== null, 'the stream completed');
    assert.equal(received.length, N);
    assert.ok(Buffer.from(received).equals(Buffer.from(data)), 'byte-exact');
    assert.ok(p2.attachment.txq.stats.swChecksums > 0, "port 2 completed host 1's partial checksums in software");
    assert.deepEqual(br.stats.dropped, {});
    assert.ok(br.stats.forwarded > N / 1500, `every segment forwarded (${br.stats.forwarded})`);
    assert.ok(pool.allocs > N / 1500, "the frames were in Dom0's memory");
    assert.equal(pool.out, 0, "every frame in Dom0's memory released");
  });
});
