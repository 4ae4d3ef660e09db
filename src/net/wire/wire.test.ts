import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatIpv4, formatMac, ipv4, mac, readU16, writeU16 } from './addr.js';
import { ARP_REQUEST, emitArp, parseArp } from './arp.js';
import { fold, internetChecksum, sumBytes, updateChecksum } from './checksum.js';
import { WireError } from './error.js';
import { ETHERTYPE_IPV4, emitEthernet, parseEthernet } from './ethernet.js';
import { ICMP_ECHO_REQUEST, emitIcmp, parseIcmp } from './icmp.js';
import { IPPROTO_TCP, emitIpv4, parseIpv4 } from './ipv4.js';
import { completeChecksum, l4ChecksumValid } from './l4-checksum.js';
import { SYN, emitTcp, parseTcp, seqGt, seqLt, type TcpRepr } from './tcp.js';
import { emitUdp, parseUdp } from './udp.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/**
 * A Linux-style SYN (options MSS 1460, SACK-permitted, timestamps, NOP, window scale 7),
 * 10.0.0.1:40000 -> 10.0.0.2:5001. Checksums computed with an independent Python RFC 1071
 * implementation; tshark 4.0 decodes the bytes with both checksums "[correct]".
 */
const GOLDEN_SYN = hex('4500003c12344000400614860a0000010a000002 9c4013890102030400000000a0027210c9b70000 020405b40402080a11223344000000000103 0307');

function err(v: unknown, layer: string, code: string): void {
  assert.ok(v instanceof WireError, `expected a WireError, got ${JSON.stringify(v)}`);
  assert.equal(v.layer, layer);
  assert.equal(v.code, code, v.message);
}

describe('Internet checksum (RFC 1071)', () => {
  it('RFC 1071 section 3 example: sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2', () => {
    assert.equal(fold(sumBytes(hex('0001f203f4f5f6f7'), 0, 8)), 0xddf2);
  });
  it('the classic header 4500 0073 0000 4000 4011 ____ c0a8 0001 c0a8 00c7 checksums to b861', () => {
    const h = hex('450000730000400040110000c0a80001c0a800c7');
    assert.equal(internetChecksum(h, 0, 20), 0xb861);
  });
  it('incremental update (RFC 1624) equals recomputation', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 64 }).map((a) => (a.length % 2 === 0 ? a : a.subarray(1))),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, at, v) => {
          const buf = data.slice();
          const i = (at % (buf.length / 2)) * 2;
          const before = internetChecksum(buf, 0, buf.length);
          const old = readU16(buf, i);
          writeU16(buf, i, v);
          const inc = updateChecksum(before, old, v);
          const full = internetChecksum(buf, 0, buf.length);
          // One's complement has two zeros; both sides must verify the same data.
          assert.equal(fold(sumBytes(buf, 0, buf.length, inc)), fold(sumBytes(buf, 0, buf.length, full)));
        },
      ),
    );
  });
});

describe('addresses', () => {
  it('format and parse', () => {
    assert.equal(formatIpv4(ipv4('192.168.0.199')), '192.168.0.199');
    assert.equal(formatMac(mac('02:00:5e:10:00:ff')), '02:00:5e:10:00:ff');
    assert.throws(() => ipv4('300.1.1.1'));
  });
  it('sequence comparisons wrap (RFC 9293 3.4)', () => {
    assert.ok(seqLt(0xfffffff0, 0x10));
    assert.ok(seqGt(0x10, 0xfffffff0));
  });
});

describe('Ethernet II', () => {
  it('round-trips', () => {
    const b = new Uint8Array(14);
    emitEthernet({ dst: mac('ff:ff:ff:ff:ff:ff'), src: mac('02:00:00:00:00:01'), ethertype: ETHERTYPE_IPV4 }, b);
    assert.deepEqual(parseEthernet(b), { dst: 0xffffffffffff, src: mac('02:00:00:00:00:01'), ethertype: 0x0800 });
  });
  it('malformed: truncated', () => err(parseEthernet(new Uint8Array(13)), 'ethernet', 'truncated'));
  it('malformed: 802.3 length instead of a type', () => err(parseEthernet(new Uint8Array(14)), 'ethernet', 'unsupported'));
});

describe('ARP', () => {
  const req = { op: ARP_REQUEST, senderMac: mac('02:00:00:00:00:01'), senderIp: ipv4('10.0.0.1'), targetMac: 0, targetIp: ipv4('10.0.0.2') } as const;
  it('golden request (RFC 826 layout)', () => {
    const b = new Uint8Array(28);
    emitArp(req, b, 0);
    assert.deepEqual(b, hex('0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002'));
    assert.deepEqual(parseArp(b, 0, 28), req);
  });
  it('malformed: truncated', () => err(parseArp(new Uint8Array(27), 0, 27), 'arp', 'truncated'));
  it('malformed: not IPv4 over Ethernet', () => {
    const b = new Uint8Array(28);
    emitArp(req, b, 0);
    b[5] = 16;
    err(parseArp(b, 0, 28), 'arp', 'unsupported');
  });
  it('malformed: unknown operation', () => {
    const b = new Uint8Array(28);
    emitArp(req, b, 0);
    b[7] = 9;
    err(parseArp(b, 0, 28), 'arp', 'unsupported');
  });
});

describe('IPv4', () => {
  it('parses the golden SYN header', () => {
    const r = parseIpv4(GOLDEN_SYN, 0, GOLDEN_SYN.length);
    assert.ok(!(r instanceof WireError));
    assert.equal(formatIpv4(r.src), '10.0.0.1');
    assert.equal(r.protocol, IPPROTO_TCP);
    assert.equal(r.dontFragment, true);
    assert.equal(r.payloadLen, 40);
    assert.equal(r.ident, 0x1234);
  });
  it('emits the golden header', () => {
    const b = new Uint8Array(20);
    emitIpv4(
      {
        src: ipv4('10.0.0.1'),
        dst: ipv4('10.0.0.2'),
        protocol: 6,
        ttl: 64,
        tos: 0,
        ident: 0x1234,
        dontFragment: true,
        moreFragments: false,
        fragOffset: 0,
        payloadLen: 40,
      },
      b,
      0,
    );
    assert.deepEqual(b, GOLDEN_SYN.subarray(0, 20));
  });
  it('ignores Ethernet padding after the total length', () => {
    const b = new Uint8Array(80);
    b.set(GOLDEN_SYN);
    assert.ok(!(parseIpv4(b, 0, 80) instanceof WireError));
  });
  const bad = (mut: (b: Uint8Array) => void, len?: number): unknown => {
    const b = GOLDEN_SYN.slice();
    mut(b);
    return parseIpv4(b, 0, len ?? b.length);
  };
  it('malformed: truncated header', () =>
    err(
      bad(() => {}, 19),
      'ipv4',
      'truncated',
    ));
  it('malformed: version 6', () =>
    err(
      bad((b) => (b[0] = 0x65)),
      'ipv4',
      'badVersion',
    ));
  it('malformed: IHL 4', () =>
    err(
      bad((b) => (b[0] = 0x44)),
      'ipv4',
      'badHeaderLength',
    ));
  it('malformed: IHL beyond the bytes received', () =>
    err(
      bad((b) => (b[0] = 0x4f), 40),
      'ipv4',
      'truncated',
    ));
  it('malformed: total length below the header length', () =>
    err(
      bad((b) => writeU16(b, 2, 19)),
      'ipv4',
      'badTotalLength',
    ));
  it('malformed: total length beyond the bytes received', () =>
    err(
      bad((b) => writeU16(b, 2, 61)),
      'ipv4',
      'badTotalLength',
    ));
  it('malformed: bad header checksum', () =>
    err(
      bad((b) => (b[10] = b[10]! ^ 0xff)),
      'ipv4',
      'badChecksum',
    ));
  it('malformed: reserved flag set', () => {
    const b = GOLDEN_SYN.slice();
    b[6] = 0xc0;
    writeU16(b, 10, 0);
    writeU16(b, 10, internetChecksum(b, 0, 20));
    err(parseIpv4(b, 0, b.length), 'ipv4', 'badFragment');
  });
  it('malformed: fragment ending beyond 65535', () => {
    const b = GOLDEN_SYN.slice();
    writeU16(b, 6, 0x1fff);
    writeU16(b, 10, 0);
    writeU16(b, 10, internetChecksum(b, 0, 20));
    err(parseIpv4(b, 0, b.length), 'ipv4', 'badFragment');
  });
});

describe('TCP', () => {
  const src = ipv4('10.0.0.1');
  const dst = ipv4('10.0.0.2');
  const syn = GOLDEN_SYN.subarray(20);
  it('parses the golden SYN with its options', () => {
    const r = parseTcp(syn, 0, 40, src, dst, 'verify');
    assert.ok(!(r instanceof WireError));
    assert.deepEqual(
      [r.srcPort, r.dstPort, r.seq, r.flags, r.window, r.mss, r.sackPermitted, r.tsVal, r.tsEcr, r.wscale, r.headerLen, r.payloadLen],
      [40000, 5001, 0x01020304, SYN, 29200, 1460, true, 0x11223344, 0, 7, 40, 0],
    );
  });
  it('emits the golden SYN byte for byte (Linux option order)', () => {
    const b = new Uint8Array(40);
    emitTcp(
      {
        srcPort: 40000,
        dstPort: 5001,
        seq: 0x01020304,
        ack: 0,
        flags: SYN,
        window: 29200,
        urgent: 0,
        mss: 1460,
        sackPermitted: true,
        tsVal: 0x11223344,
        tsEcr: 0,
        wscale: 7,
        payloadLen: 0,
      },
      b,
      0,
      src,
      dst,
      'full',
    );
    assert.deepEqual(b, syn);
  });
  it('SACK blocks round-trip', () => {
    const b = new Uint8Array(60);
    const hl = emitTcp(
      {
        srcPort: 1,
        dstPort: 2,
        seq: 5,
        ack: 6,
        flags: 0x10,
        window: 100,
        urgent: 0,
        sackPermitted: false,
        tsVal: 1,
        tsEcr: 2,
        sack: [10, 20, 30, 40],
        payloadLen: 0,
      },
      b,
      0,
      src,
      dst,
      'full',
    );
    const r = parseTcp(b, 0, hl, src, dst, 'verify');
    assert.ok(!(r instanceof WireError));
    assert.deepEqual(r.sack, [10, 20, 30, 40]);
  });
  it('a partial checksum, completed as a device would, verifies', () => {
    const b = new Uint8Array(40 + 100).fill(7);
    emitTcp(
      { srcPort: 1, dstPort: 2, seq: 5, ack: 6, flags: 0x18, window: 100, urgent: 0, sackPermitted: false, tsVal: 1, tsEcr: 2, payloadLen: 108 },
      b,
      0,
      src,
      dst,
      'partial',
    );
    assert.equal(l4ChecksumValid(b, 0, b.length, src, dst, IPPROTO_TCP), false);
    completeChecksum(b, 0, b.length, 16, false);
    assert.equal(l4ChecksumValid(b, 0, b.length, src, dst, IPPROTO_TCP), true);
  });
  const bad = (mut: (b: Uint8Array) => void, len = 40, rx: 'verify' | 'trusted' = 'trusted'): unknown => {
    const b = syn.slice();
    mut(b);
    return parseTcp(b, 0, len, src, dst, rx);
  };
  it('malformed: truncated', () =>
    err(
      bad(() => {}, 19),
      'tcp',
      'truncated',
    ));
  it('malformed: data offset 4', () =>
    err(
      bad((b) => (b[12] = 0x40)),
      'tcp',
      'badDataOffset',
    ));
  it('malformed: data offset beyond the segment', () =>
    err(
      bad((b) => (b[12] = 0xf0)),
      'tcp',
      'badDataOffset',
    ));
  it('malformed: bad checksum', () =>
    err(
      bad((b) => (b[16] = b[16]! ^ 1), 40, 'verify'),
      'tcp',
      'badChecksum',
    ));
  it('a bad checksum passes when the device validated it (data_validated)', () =>
    assert.ok(!(bad((b) => (b[16] = b[16]! ^ 1)) instanceof WireError)));
  // Bad options, as Linux's tcp_parse_options treats them: the segment stands; an option of
  // the wrong length is ignored, a length below 2 or past the header ends the parsing.
  const opts = (r: unknown): [number | undefined, boolean, number | undefined, number | undefined, string | undefined] => {
    assert.ok(!(r instanceof WireError), 'the segment is not malformed');
    const t = r as TcpRepr;
    return [t.mss, t.sackPermitted, t.tsVal, t.wscale, t.optionError?.code];
  };
  it('bad option: length 0 ends parsing', () =>
    assert.deepEqual(opts(bad((b) => (b[21] = 0))), [undefined, false, undefined, undefined, 'badOption']));
  it('bad option: running past the header ends parsing, earlier options stand', () =>
    assert.deepEqual(opts(bad((b) => (b[27] = 20))), [1460, true, undefined, undefined, 'optionOverrun']));
  it('bad option: a kind without room for its length ends parsing', () =>
    assert.deepEqual(opts(bad((b) => b.set([1, 1, 1, 2], 36))), [1460, true, 0x11223344, undefined, 'optionOverrun']));
  it('bad option: MSS of length 3 is ignored', () =>
    assert.deepEqual(opts(bad((b) => b.set([2, 3, 5, 1], 20))), [undefined, true, 0x11223344, 7, 'badOption']));
  it('bad option: window scale of length 4 is ignored', () =>
    assert.deepEqual(opts(bad((b) => b.set([3, 4, 7, 1], 36))), [1460, true, 0x11223344, undefined, 'badOption']));
  it('bad option: timestamp of length 8 is ignored', () =>
    assert.deepEqual(opts(bad((b) => (b[27] = 8))), [1460, true, undefined, undefined, 'badOption']));
  it('bad option: SACK-permitted of length 3 is ignored', () => assert.deepEqual(opts(bad((b) => (b[25] = 3)))[1], false));
  it('bad option: SACK of length 6 is ignored', () => {
    const r = bad((b) => b.set([5, 6, 0, 0, 0, 0, 1, 1], 24));
    assert.deepEqual(opts(r)[4], 'badOption');
    assert.equal((r as TcpRepr).sack, undefined);
  });
  it('parses arbitrary bytes without throwing', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (a) => void parseTcp(a, 0, a.length, src, dst, 'verify')));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (a) => void parseIpv4(a, 0, a.length)));
  });
});

describe('UDP and ICMP', () => {
  const src = ipv4('10.0.0.1');
  const dst = ipv4('10.0.0.2');
  it('UDP round-trips with a computed checksum; zero checksum means none', () => {
    const b = new Uint8Array(8 + 5);
    b.set([104, 101, 108, 108, 111], 8);
    emitUdp({ srcPort: 7, dstPort: 9, payloadLen: 5 }, b, 0, src, dst, 'full');
    assert.deepEqual(parseUdp(b, 0, 13, src, dst, 'verify'), { srcPort: 7, dstPort: 9, payloadLen: 5 });
    writeU16(b, 6, 0);
    assert.ok(!(parseUdp(b, 0, 13, src, dst, 'verify') instanceof WireError));
  });
  const udp = (): Uint8Array => {
    const b = new Uint8Array(12);
    emitUdp({ srcPort: 7, dstPort: 9, payloadLen: 4 }, b, 0, src, dst, 'full');
    return b;
  };
  it('malformed UDP: truncated', () => err(parseUdp(udp(), 0, 7, src, dst, 'verify'), 'udp', 'truncated'));
  it('malformed UDP: length field beyond the datagram', () => err(parseUdp(udp(), 0, 10, src, dst, 'verify'), 'udp', 'badLength'));
  it('malformed UDP: length field below 8', () => {
    const b = udp();
    writeU16(b, 4, 7);
    err(parseUdp(b, 0, 12, src, dst, 'trusted'), 'udp', 'badLength');
  });
  it('malformed UDP: bad checksum', () => {
    const b = udp();
    b[9] = b[9]! ^ 1;
    err(parseUdp(b, 0, 12, src, dst, 'verify'), 'udp', 'badChecksum');
  });
  it('ICMP echo request golden bytes (RFC 792)', () => {
    const b = new Uint8Array(8 + 4);
    b.set([0xde, 0xad, 0xbe, 0xef], 8);
    emitIcmp({ type: ICMP_ECHO_REQUEST, code: 0, ident: 0x1234, seq: 1, dataLen: 4 }, b, 0);
    assert.deepEqual(b, hex('0800 482d 1234 0001 deadbeef'));
    const r = parseIcmp(b, 0, 12);
    assert.ok(!(r instanceof WireError));
    assert.equal(r.seq, 1);
  });
  it('malformed ICMP: truncated', () => err(parseIcmp(new Uint8Array(7), 0, 7), 'icmp', 'truncated'));
  it('malformed ICMP: bad checksum', () => err(parseIcmp(hex('0800482e12340001deadbeef'), 0, 12), 'icmp', 'badChecksum'));
});
