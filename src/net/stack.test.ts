import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, S, SimEnvironment, SimpleCpu, US, type ProcessGenerator } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import type { Packet } from './iface/packet.js';
import { GSO_TCPV4, CSUM_PARTIAL, HEAP_MEMORY } from './iface/packet.js';
import { gsoSegment } from './iface/gso.js';
import { directPair } from './pair.js';
import { Stack } from './stack.js';
import { isSocketError } from './socket/errors.js';
import type { TcpSocket } from './socket/tcp-socket.js';
import { MAC_BROADCAST, ipv4 } from './wire/addr.js';
import { ARP_REQUEST } from './wire/arp.js';
import { ETH } from './wire/ethernet.js';
import { NO_OFFLOADS, type NetDevice } from './iface/device.js';
import { l4ChecksumValid } from './wire/l4-checksum.js';
import { IPPROTO_TCP, parseIpv4 } from './wire/ipv4.js';
import { WireError } from './wire/error.js';

const profile = Profile.load('default');

function ok<T>(v: T): Exclude<T, { code: string; message: string }> {
  if (isSocketError(v)) assert.fail(v.toString());
  return v as Exclude<T, { code: string; message: string }>;
}

describe('TCP connection lifecycle', () => {
  it('handshake, data both ways, close into TIME_WAIT for 60 s then CLOSED', () => {
    const env = new SimEnvironment({ seed: 1 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    let srv: TcpSocket | null = null;
    let cli: TcpSocket | null = null;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80));
        srv = ok(yield* l.accept());
        const d = ok(yield* srv.recv(100));
        assert.equal(Buffer.from(d).toString(), 'hello');
        ok(yield* srv.send(Buffer.from('world')));
        const eof = ok(yield* srv.recv(100));
        assert.equal(eof.length, 0);
        yield* srv.close();
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        cli = p.client.tcp.socket();
        ok(yield* cli.connect(p.serverAddr, 80));
        assert.equal(cli.state, 'ESTABLISHED');
        ok(yield* cli.send(Buffer.from('hello')));
        assert.equal(Buffer.from(ok(yield* cli.recv(100))).toString(), 'world');
        yield* cli.close();
      })(),
    );
    env.run({ until: 1 * S });
    assert.equal(cli!.state, 'TIME_WAIT', 'the active closer waits');
    assert.equal(srv!.state, 'CLOSED');
    env.run({ until: 62 * S });
    assert.equal(cli!.state, 'CLOSED');
  });

  it('simultaneous close passes through CLOSING to TIME_WAIT on both sides', () => {
    const env = new SimEnvironment({ seed: 2 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 100 * US });
    let srv: TcpSocket | null = null;
    let cli: TcpSocket | null = null;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80));
        srv = ok(yield* l.accept());
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        cli = p.client.tcp.socket();
        ok(yield* cli.connect(p.serverAddr, 80));
      })(),
    );
    env.run({ until: 10 * MS });
    env.process(srv!.close());
    env.process(cli!.close());
    env.run({ until: 10 * MS + 150 * US });
    assert.deepEqual([cli!.state, srv!.state], ['CLOSING', 'CLOSING']);
    env.run({ until: 100 * MS });
    assert.deepEqual([cli!.state, srv!.state], ['TIME_WAIT', 'TIME_WAIT']);
  });

  it('connecting to a closed port is refused by a RST', () => {
    const env = new SimEnvironment({ seed: 3 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    let result: unknown;
    env.process(
      (function* (): ProcessGenerator<void> {
        result = yield* p.client.tcp.socket().connect(p.serverAddr, 9);
      })(),
    );
    env.run({ until: 1 * S });
    assert.ok(isSocketError(result) && result.code === 'ECONNREFUSED');
    assert.equal(p.server.tcp.stats.rstsOut, 1);
  });

  it('RTO backs off exponentially from >= 200 ms (Linux TCP_RTO_MIN) and the connection times out', () => {
    const env = new SimEnvironment({ seed: 4 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    const sent: number[] = [];
    let rsts = 0;
    let blackhole = false;
    p.client.hooks.postRouting.add((pkt) => {
      if (!blackhole) return 'accept';
      if ((pkt.data[pkt.l4 + 13]! & 0x04) !== 0) rsts++;
      else sent.push(env.now);
      return 'drop';
    });
    let err: unknown;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80));
        yield* l.accept();
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const c = p.client.tcp.socket();
        ok(yield* c.connect(p.serverAddr, 80));
        blackhole = true;
        ok(yield* c.send(new Uint8Array(1000)));
        err = yield* c.recv(10);
      })(),
    );
    env.run({ until: 2000 * S });
    const gaps = sent.slice(1).map((t, i) => t - sent[i]!);
    assert.ok(gaps[0]! >= 200 * MS && gaps[0]! < 250 * MS, `first RTO ${gaps[0]! / MS} ms`);
    for (let i = 1; i < 8; i++) assert.ok(Math.abs(gaps[i]! / gaps[i - 1]! - 2) < 0.01, `gap ${i} is ${gaps[i]! / MS} ms after ${gaps[i - 1]! / MS}`);
    assert.ok(
      gaps.every((g) => g <= 120 * S),
      'capped at TCP_RTO_MAX',
    );
    assert.ok(gaps.some((g) => g === 120 * S));
    assert.equal(sent.length, 16, 'the original and tcp_retries2 = 15 retransmissions');
    assert.equal(rsts, 0, 'tcp_write_err gives up without a RST');
    assert.ok(isSocketError(err) && err.code === 'ETIMEDOUT');
  });

  it('a zero window is probed (persist timer) and the transfer resumes when the reader drains', () => {
    const env = new SimEnvironment({ seed: 5 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    let c: TcpSocket | null = null;
    let total = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80, { rcvbuf: 8192 }));
        const s = ok(yield* l.accept());
        yield env.timeout(2 * S); // not reading: the window closes
        for (;;) {
          const d = ok(yield* s.recv(65536));
          if (d.length === 0) break;
          total += d.length;
        }
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        c = p.client.tcp.socket();
        ok(yield* c.connect(p.serverAddr, 80));
        ok(yield* c.send(new Uint8Array(100_000)));
        yield* c.close();
      })(),
    );
    env.run({ until: 10 * S });
    assert.ok(c!.stats.zeroWindowProbes >= 2, `${c!.stats.zeroWindowProbes} probes`);
    assert.equal(total, 100_000);
  });
});

describe('TIME_WAIT and reusing a four-tuple', () => {
  /** One short connection from client port `cport` to server port 80; `serverFirst` makes the server close first. */
  const once = (
    env: SimEnvironment,
    p: ReturnType<typeof directPair>,
    cport: number,
    opts: { timestamps?: boolean; serverFirst?: boolean } = {},
  ): { err: string | null; at: number } => {
    const out = { err: null as string | null, at: -1 };
    const tcp = opts.timestamps === false ? { timestamps: false } : {};
    env.process(
      (function* (): ProcessGenerator<void> {
        const c = p.client.tcp.socket(tcp);
        const b = c.bind(cport);
        if (b !== undefined) {
          out.err = b.code;
          return;
        }
        const t0 = env.now;
        const e = yield* c.connect(p.serverAddr, 80);
        if (isSocketError(e)) {
          out.err = e.code;
          return;
        }
        out.at = env.now - t0;
        if (opts.serverFirst === true) assert.equal(ok(yield* c.recv(10)).length, 0);
        yield* c.close();
      })(),
    );
    return out;
  };
  const serve = (env: SimEnvironment, p: ReturnType<typeof directPair>, serverFirst: boolean, timestamps = true): void => {
    const l = ok(p.server.tcp.listen(80, timestamps ? {} : { timestamps: false }));
    env.process(
      (function* (): ProcessGenerator<void> {
        for (;;) {
          const s = ok(yield* l.accept());
          env.process(
            (function* (): ProcessGenerator<void> {
              if (!serverFirst) assert.equal(ok(yield* s.recv(10)).length, 0);
              yield* s.close();
            })(),
          );
        }
      })(),
    );
  };

  it('a bound connect takes over its four-tuple in TIME_WAIT when timestamps were used (tcp_twsk_unique), and fails without', () => {
    for (const timestamps of [true, false]) {
      const env = new SimEnvironment({ seed: 3 });
      const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
      serve(env, p, false, timestamps);
      const first = once(env, p, 5000, { timestamps });
      env.run({ until: 100 * MS });
      assert.equal(first.err, null);
      assert.equal(p.client.tcp.connections, 1, 'the client, which closed first, holds TIME_WAIT');
      const again = once(env, p, 5000, { timestamps });
      env.run({ until: 200 * MS });
      if (timestamps) {
        assert.equal(again.err, null);
        assert.equal(p.client.tcp.stats.timeWaitReused, 1);
      } else {
        assert.equal(again.err, 'EADDRNOTAVAIL');
        assert.equal(p.client.tcp.stats.timeWaitReused, 0);
      }
    }
  });

  it('the ephemeral-port search skips TIME_WAIT four-tuples unless tcp_tw_reuse allows it after a second', () => {
    const env = new SimEnvironment({ seed: 4 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    serve(env, p, false);
    const port = (): number => {
      const c = p.client.tcp.socket();
      let lport = -1;
      env.process(
        (function* (): ProcessGenerator<void> {
          ok(yield* c.connect(p.serverAddr, 80));
          lport = c.localPort;
          yield* c.close();
        })(),
      );
      env.run({ until: env.now + 100 * MS });
      return lport;
    };
    const a = port();
    // Wrap the search round to the same port: only 32768..61000 exist.
    (p.client.tcp as unknown as { nextEphemeral: number }).nextEphemeral = a;
    const b = port();
    assert.notEqual(b, a, 'TIME_WAIT holds the four-tuple');
    p.client.tcp.twReuse = true;
    (p.client.tcp as unknown as { nextEphemeral: number }).nextEphemeral = a;
    assert.notEqual(port(), a, 'not within a second of its last timestamp');
    env.run({ until: env.now + 1100 * MS });
    (p.client.tcp as unknown as { nextEphemeral: number }).nextEphemeral = a;
    assert.equal(port(), a);
    assert.equal(p.client.tcp.stats.timeWaitReused, 1);
  });

  it('a new SYN reopens a four-tuple in TIME_WAIT on the server (it closed first) at once, not after a SYN timeout', () => {
    const env = new SimEnvironment({ seed: 5 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    serve(env, p, true);
    const first = once(env, p, 6000, { serverFirst: true });
    env.run({ until: 100 * MS });
    assert.equal(first.err, null);
    assert.equal(p.server.tcp.connections, 1, 'the server holds TIME_WAIT');
    const again = once(env, p, 6000, { serverFirst: true });
    env.run({ until: 200 * MS });
    assert.equal(again.err, null);
    assert.ok(again.at < 1 * MS, `connected in ${again.at / US} us`);
    assert.equal(p.server.tcp.stats.timeWaitSynReopened, 1);
  });
});

describe('devices, routing, neighbours, hooks', () => {
  it('loopback: a guest talks to itself through lo, and costs are still charged', () => {
    const env = new SimEnvironment({ seed: 6 });
    const cpu = new SimpleCpu(env);
    const s = new Stack({ env, cpu, profile, name: 'solo' });
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(s.tcp.listen(80));
        const a = ok(yield* l.accept());
        for (;;) {
          const d = ok(yield* a.recv(1 << 20));
          if (d.length === 0) break;
          got += d.length;
        }
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const c = s.tcp.socket();
        ok(yield* c.connect(ipv4('127.0.0.1'), 80));
        assert.ok(c.maxSegment > 60000, "MSS from lo's 64 KiB MTU");
        ok(yield* c.send(new Uint8Array(1_000_000)));
        yield* c.close();
      })(),
    );
    env.run({ until: 1 * S });
    assert.equal(got, 1_000_000);
    assert.ok(cpu.busy.softirq > 0 && cpu.busy.kernel > 0);
  });

  it('ARP resolves once, queues packets meanwhile; an absent neighbour fails after 3 probes and drops them (counted)', () => {
    const env = new SimEnvironment({ seed: 7 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    env.process(
      (function* (): ProcessGenerator<void> {
        const u = p.client.udp.socket();
        for (let i = 0; i < 3; i++) ok(yield* u.sendTo(p.serverAddr, 7, new Uint8Array(10)));
        ok(yield* u.sendTo(ipv4('10.0.0.99'), 7, new Uint8Array(10)));
      })(),
    );
    env.run({ until: 10 * S });
    const n = p.clientIf.neighbours.stats;
    assert.equal(n.resolved, 1);
    assert.equal(n.failed, 1);
    assert.equal(n.requests, 1 + 3);
    assert.equal(n.dropped, 1);
    assert.equal(p.server.udp.stats.noPort, 3, 'the three queued datagrams arrived');
  });

  it('a post-routing hook can steal packets and send them through another device', () => {
    const env = new SimEnvironment({ seed: 8 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    let stolen = 0;
    p.client.hooks.postRouting.add((pkt, nextHop, dev) => {
      assert.equal(nextHop, p.serverAddr);
      assert.equal(dev, p.clientIf.dev);
      stolen++;
      p.clientIf.output(pkt, nextHop); // re-inject: "another device" is the same one here
      return 'stolen';
    });
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const u = p.server.udp.socket();
        ok(u.bind(7));
        got = ok(yield* u.recvFrom()).data.length;
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        ok(yield* p.client.udp.socket().sendTo(p.serverAddr, 7, new Uint8Array(100)));
      })(),
    );
    env.run({ until: 1 * S });
    assert.equal(got, 100);
    assert.equal(stolen, 1);
    assert.equal(p.client.stats.hookStolen, 1);
  });

  it('the post-routing hook sees a datagram larger than the MTU whole; it is fragmented after the hook, on the way to the device', () => {
    const env = new SimEnvironment({ seed: 12 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    const seen: { ipLen: number; flagsFrag: number }[] = [];
    p.client.hooks.postRouting.add((pkt) => {
      const ip = parseIpv4(pkt.data, pkt.l3, pkt.length - pkt.l3);
      assert.ok(!(ip instanceof WireError));
      seen.push({ ipLen: ip.headerLen + ip.payloadLen, flagsFrag: (pkt.data[pkt.l3 + 6]! << 8) | pkt.data[pkt.l3 + 7]! });
      return 'accept';
    });
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const u = p.server.udp.socket();
        ok(u.bind(7));
        got = ok(yield* u.recvFrom()).data.length;
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        ok(yield* p.client.udp.socket().sendTo(p.serverAddr, 7, new Uint8Array(8000)));
      })(),
    );
    env.run({ until: 1 * S });
    assert.deepEqual(seen, [{ ipLen: 8028, flagsFrag: 0 }], 'one whole datagram, DF clear (too big for the MTU)');
    assert.equal(p.client.stats.fragmentsOut, 6);
    assert.equal(p.link.a.stats.frames, 1 + 6, 'an ARP request and six fragments');
    assert.equal(got, 8000);
  });

  it('a reassembled datagram has its UDP checksum verified even when the NIC validates checksums (it cannot for fragments)', () => {
    const env = new SimEnvironment({ seed: 13 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US, features: { rxCsum: true } });
    let fragments = 0;
    p.server.hooks.preRouting.add((pkt) => {
      // Corrupt the second fragment's payload in flight; its IP header stays valid.
      if (((pkt.data[pkt.l3 + 6]! & 0x1f) | pkt.data[pkt.l3 + 7]!) !== 0 && fragments++ === 0)
        pkt.data[pkt.l4 + 100] = pkt.data[pkt.l4 + 100]! ^ 0xff;
      return 'accept';
    });
    const got: number[] = [];
    env.process(
      (function* (): ProcessGenerator<void> {
        const u = p.server.udp.socket();
        ok(u.bind(7));
        for (;;) got.push(ok(yield* u.recvFrom()).data.length);
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const u = p.client.udp.socket();
        ok(yield* u.sendTo(p.serverAddr, 7, new Uint8Array(8000))); // corrupted
        ok(yield* u.sendTo(p.serverAddr, 7, new Uint8Array(100))); // one frame, validated by the NIC
      })(),
    );
    env.run({ until: 1 * S });
    assert.equal(p.server.reassembler.stats.reassembled, 1);
    assert.deepEqual(got, [100]);
    assert.equal(p.server.stats.malformed['udp:badChecksum'], 1);
  });

  it('DF: set on UDP datagrams and echo requests that fit the MTU (IP_PMTUDISC_WANT), clear on echo replies (IP_PMTUDISC_DONT)', () => {
    const env = new SimEnvironment({ seed: 13 });
    const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US });
    const df = (pkt: Packet): boolean => (pkt.data[pkt.l3 + 6]! & 0x40) !== 0;
    const client: boolean[] = [];
    const server: boolean[] = [];
    p.client.hooks.postRouting.add((pkt) => (client.push(df(pkt)), 'accept'));
    p.server.hooks.postRouting.add((pkt) => (server.push(df(pkt)), 'accept'));
    env.process(
      (function* (): ProcessGenerator<void> {
        ok(yield* p.client.udp.socket().sendTo(p.serverAddr, 7, new Uint8Array(1472)));
        const s = p.client.icmp.openPing();
        ok(yield* s.send(p.serverAddr, 1, new Uint8Array(56)));
        yield* s.recv();
      })(),
    );
    env.run({ until: 1 * S });
    assert.deepEqual(client, [true, true], 'a 1472-byte UDP datagram and an echo request');
    assert.deepEqual(server, [false], 'the echo reply');
  });

  it('a busy device stops the queue and wakes it; nothing is dropped silently', () => {
    const env = new SimEnvironment({ seed: 9 });
    const p = directPair(env, profile, { bandwidth: 1e8, delay: 10 * US, txRing: 4 });
    let got = 0;
    env.process(
      (function* (): ProcessGenerator<void> {
        const l = ok(p.server.tcp.listen(80));
        const s = ok(yield* l.accept());
        for (;;) {
          const d = ok(yield* s.recv(1 << 20));
          if (d.length === 0) break;
          got += d.length;
        }
      })(),
    );
    env.process(
      (function* (): ProcessGenerator<void> {
        const c = p.client.tcp.socket();
        ok(yield* c.connect(p.serverAddr, 80));
        ok(yield* c.send(new Uint8Array(2_000_000)));
        yield* c.close();
      })(),
    );
    env.run({ until: 5 * S });
    assert.equal(got, 2_000_000);
    assert.ok(p.clientIf.txq.stats.stops > 0, 'the device refused frames while busy');
    assert.equal(p.clientIf.txq.stats.dropped, 0);
    assert.equal(p.client.tcp.stats.retransSegs, 0);
  });

  it('scatter-gather without a checksum feature is dropped, and TSO with it (netdev_fix_features): the checksum is charged once', () => {
    const run = (features: { sg?: boolean; tso?: boolean }): { cpu: number; gso: number; sg: boolean; tso: boolean } => {
      const env = new SimEnvironment({ seed: 11 });
      const p = directPair(env, profile, { bandwidth: 1e9, delay: 10 * US, features });
      env.process(
        (function* (): ProcessGenerator<void> {
          const l = ok(p.server.tcp.listen(80));
          const s = ok(yield* l.accept());
          while (ok(yield* s.recv(1 << 20)).length > 0);
        })(),
      );
      env.process(
        (function* (): ProcessGenerator<void> {
          const c = p.client.tcp.socket();
          ok(yield* c.connect(p.serverAddr, 80));
          ok(yield* c.send(new Uint8Array(1_000_000)));
          yield* c.close();
        })(),
      );
      env.run({ until: 1 * S });
      return { cpu: p.clientCpu.busyTotal, gso: p.clientIf.txq.stats.gsoSegments, sg: p.clientIf.features.sg, tso: p.clientIf.features.tso };
    };
    const none = run({});
    const sgTso = run({ sg: true, tso: true });
    assert.deepEqual([sgTso.sg, sgTso.tso, sgTso.gso], [false, false, 0]);
    assert.equal(sgTso.cpu, none.cpu, 'charged as a device without offloads');
  });

  it('software GSO cuts a 64 KiB TCP packet into MSS segments with valid headers', () => {
    const env = new SimEnvironment({ seed: 10 });
    const s = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 'g' });
    const payload = 60_000;
    const pkt = s.buildIp(ipv4('10.0.0.1'), ipv4('10.0.0.2'), IPPROTO_TCP, 32 + payload, true);
    const d = pkt.data;
    d[pkt.l4 + 12] = 8 << 4;
    d[pkt.l4 + 13] = 0x19; // FIN|PSH|ACK
    for (let i = 0; i < payload; i++) d[pkt.l4 + 32 + i] = i & 255;
    pkt.gsoType = GSO_TCPV4;
    pkt.gsoSize = 1448;
    const segs = gsoSegment(pkt, false, HEAP_MEMORY);
    assert.equal(segs.length, Math.ceil(payload / 1448));
    let off = 0;
    for (const [i, seg] of segs.entries()) {
      const ip = parseIpv4(seg.data, seg.l3, seg.length - seg.l3);
      assert.ok(!(ip instanceof WireError));
      assert.ok(l4ChecksumValid(seg.data, seg.l4, ip.payloadLen, ip.src, ip.dst, IPPROTO_TCP));
      const last = i === segs.length - 1;
      assert.equal(seg.data[seg.l4 + 13], last ? 0x19 : 0x10, 'FIN/PSH only on the last');
      for (let j = 0; j < ip.payloadLen - 32; j++) assert.equal(seg.data[seg.l4 + 32 + j], (off + j) & 255);
      off += ip.payloadLen - 32;
    }
    assert.equal(off, payload);
    const partial = gsoSegment(pkt, true, HEAP_MEMORY);
    assert.ok(partial.every((q: Packet) => q.csum === CSUM_PARTIAL));
  });

  it('replaceDevice: the interface keeps its identity; what waits in its queue goes to the new driver in order; a different device is refused', () => {
    const env = new SimEnvironment({ seed: 11 });
    const s = new Stack({ env, cpu: new SimpleCpu(env), profile, name: 'g' });
    class Dev implements NetDevice {
      readonly name = 'eth0';
      readonly mtu = 1500;
      readonly features = NO_OFFLOADS;
      readonly got: Packet[] = [];
      constructor(
        readonly mac: number,
        private readonly takes: boolean,
      ) {}
      attach(): void {}
      xmit(p: Packet): boolean {
        if (this.takes) this.got.push(p);
        return this.takes;
      }
    }
    const old = new Dev(0x02_00_00_00_00_01, false);
    const iface = s.addInterface(old, { address: ipv4('10.0.0.1'), prefix: 24 });
    iface.sendArp(ARP_REQUEST, MAC_BROADCAST, 0, ipv4('10.0.0.2'));
    iface.sendArp(ARP_REQUEST, MAC_BROADCAST, 0, ipv4('10.0.0.3'));
    env.run();
    assert.equal(iface.txq.length, 2, 'held while the old device refuses');
    assert.throws(() => iface.replaceDevice(new Dev(0x02_00_00_00_00_09, true)), /differs/);
    const neu = new Dev(0x02_00_00_00_00_01, true);
    iface.replaceDevice(neu);
    env.run();
    assert.equal(iface.dev, neu);
    assert.equal(iface.txq.length, 0);
    assert.deepEqual(
      neu.got.map((p) => p.data[ETH.HEADER_LEN + 27]),
      [2, 3],
      'in order',
    );
  });
});
