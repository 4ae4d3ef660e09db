import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { XsReassembler, encodeMessage, nulTerminated, oneArg, parseHeader, payloadStrings } from './wire.js';
import { bytes, msg } from './test-util.js';

describe('xenstore framing (xen-abi.md §1.1)', () => {
  it('encodes the 16-byte little-endian header then the payload (golden bytes)', () => {
    // What xenstore-read /local/domain/0/name sends (xen-abi.md §10).
    const m = encodeMessage(msg(2, '/local/domain/0/name\0'));
    assert.deepEqual([...m.subarray(0, 16)], [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15, 0, 0, 0]);
    assert.equal(Buffer.from(m.subarray(16)).toString('latin1'), '/local/domain/0/name\0');
    const h = encodeMessage(msg(0x01020304, '', 0xdeadbeef, 7));
    assert.deepEqual([...h], [4, 3, 2, 1, 0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseHeader(h), { type: 0x01020304, reqId: 0xdeadbeef, txId: 7, len: 0 });
    assert.equal(parseHeader(h.subarray(0, 15)), undefined);
  });

  it('reassembles messages split anywhere, and several in one chunk', () => {
    const a = encodeMessage(msg(2, '/a\0', 1));
    const b = encodeMessage(msg(11, '/b\0value', 2, 3));
    const stream = new Uint8Array([...a, ...b]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 12 }), (cuts) => {
        const r = new XsReassembler();
        const points = [0, ...[...cuts].sort((x, y) => x - y), stream.length];
        const got = [];
        for (let i = 1; i < points.length; i++) got.push(...r.push(stream.subarray(points[i - 1], points[i])).messages);
        assert.equal(got.length, 2);
        assert.deepEqual(got[1], { type: 11, reqId: 2, txId: 3, payload: bytes('/b\0value') });
        assert.equal(r.pending, 0);
      }),
    );
  });

  it('a header announcing more than 4096 bytes kills the stream (and says so again later)', () => {
    const r = new XsReassembler();
    const ok = encodeMessage(msg(2, '/a\0'));
    const big = new Uint8Array(16);
    new DataView(big.buffer).setUint32(12, 4097, true);
    const first = r.push(new Uint8Array([...ok, ...big]));
    assert.equal(first.messages.length, 1);
    assert.deepEqual(first.error, { kind: 'oversize', len: 4097, type: 0 });
    assert.deepEqual(r.push(ok).error, first.error);
    // 4096 exactly is fine.
    const max = new XsReassembler().push(encodeMessage(msg(11, new Uint8Array(4096))));
    assert.equal(max.error, undefined);
    assert.equal(max.messages[0]!.payload.length, 4096);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const r = new XsReassembler();
        for (const c of chunks) r.push(c);
      }),
    );
  });

  it('payload strings: get_strings, onearg and NUL-terminated output', () => {
    assert.deepEqual(payloadStrings(bytes('a\0b\0tail')), ['a', 'b']);
    assert.deepEqual(payloadStrings(bytes('')), []);
    assert.deepEqual(payloadStrings(bytes('\0')), ['']);
    assert.equal(oneArg(bytes('/a\0')), '/a');
    assert.equal(oneArg(bytes('/a')), undefined, 'missing NUL');
    assert.equal(oneArg(bytes('/a\0b\0')), undefined, 'two arguments');
    assert.equal(oneArg(bytes('')), undefined);
    assert.deepEqual([...nulTerminated(['OK'])], [0x4f, 0x4b, 0x00]);
    assert.deepEqual([...nulTerminated(['\xff'])], [0xff, 0], 'one byte per character');
  });
});
