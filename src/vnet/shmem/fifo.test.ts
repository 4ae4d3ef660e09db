import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesPage } from '../../xen/index.js';
import {
  REC_CSUM_BLANK,
  REC_GSO_TCPV4,
  checkRecord,
  eventDue,
  readBytes,
  readHeader,
  recordBytes,
  used,
  writeRecord,
  type FifoView,
} from './fifo.js';

function fifo(size: number): { f: FifoView; data: Uint8Array } {
  const data = new Uint8Array(size);
  return { f: { desc: bytesPage(new Uint8Array(4096)), data: bytesPage(data), size }, data };
}

describe('shmem FIFO records', () => {
  it('a record is an 8-byte little-endian header, then the bytes, padded to 8', () => {
    const { f, data } = fifo(4096);
    writeRecord(f, 0, { len: 17, flags: REC_CSUM_BLANK | REC_GSO_TCPV4, gsoSize: 1448 }, new Uint8Array(17).fill(0xab));
    assert.deepEqual([...data.subarray(0, 8)], [17, 0, 0, 0, 5, 0, 0xa8, 0x05]);
    assert.ok(data.subarray(8, 25).every((x) => x === 0xab));
    assert.equal(recordBytes(17), 32);
    assert.deepEqual(readHeader(f, 0), { len: 17, flags: 5, gsoSize: 1448 });
  });

  it('a record wraps around the end of the buffer, with free-running indices past 2^32', () => {
    const { f } = fifo(4096);
    const at = (0xffff_ffff - 4096 + 1 + 4096 - 40) >>> 0; // 40 bytes before the end of the buffer, near the u32 wrap
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    writeRecord(f, at, { len: 100, flags: 0, gsoSize: 0 }, bytes);
    const out = new Uint8Array(100);
    readBytes(f, at, out);
    assert.deepEqual(out, bytes);
    const next = (at + recordBytes(100)) >>> 0;
    assert.ok(next < at, 'the index wrapped');
    assert.equal(used(next, at), 112);
  });

  it('the event rule and the header checks', () => {
    assert.equal(eventDue(10, 5, 6), true);
    assert.equal(eventDue(10, 5, 11), false);
    assert.equal(eventDue(3, 0xffff_fffe, 0xffff_ffff), true, 'across the wrap');
    assert.equal(checkRecord({ len: 60, flags: 0, gsoSize: 0 }, 72, 4096), null);
    assert.match(checkRecord({ len: 60, flags: 0, gsoSize: 0 }, 64, 4096)!, /only 64 bytes produced/);
    assert.match(checkRecord({ len: 5000, flags: 0, gsoSize: 0 }, 8000, 4096)!, /in a FIFO of 4096/);
    assert.match(checkRecord({ len: 3, flags: 0, gsoSize: 0 }, 16, 4096)!, /record of 3 bytes/);
    assert.match(checkRecord({ len: 60, flags: 0x80, gsoSize: 0 }, 72, 4096)!, /unknown record flags/);
    assert.match(checkRecord({ len: 60, flags: REC_GSO_TCPV4, gsoSize: 0 }, 72, 4096)!, /segment size/);
  });
});
