import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packet } from '../net/index.js';
import { makeHost } from '../xen/test-fixture.js';
import { GuestPacketMemory, PacketMemoryExhausted } from './packet-memory.js';

describe('guest packet memory', () => {
  it('puts a packet in the guest’s own frames: one frame, or a run of consecutive frames for a 64 KiB frame', () => {
    const h = makeHost();
    const g = h.guest('a');
    const m = new GuestPacketMemory(g.mem, g.frames);
    const small = Packet.alloc(m, 1514);
    const big = Packet.alloc(m, 65536 + 66);
    for (const [p, fill] of [
      [small, 0x11],
      [big, 0x22],
    ] as const) {
      const b = p.buf!;
      assert.equal(b.domid, g.domid);
      p.data.fill(fill);
      // What the guest's physmap holds at the buffer's frames is what the packet holds.
      const seen = g.mem.read(b.gfn * 4096 + b.offset, p.length);
      assert.deepEqual(seen, p.data);
      assert.ok(g.mem.ramPage(b.gfn) !== null, 'the guest’s own RAM');
    }
    assert.equal(big.buf!.bytes.length, 17 * 4096);
    assert.equal(m.framesHeld, 18);
  });

  it('reuses freed buffers (zeroed) instead of taking more frames, and counts what is out', () => {
    const h = makeHost();
    const g = h.guest('a');
    const m = new GuestPacketMemory(g.mem, g.frames);
    for (let i = 0; i < 100; i++) {
      const p = Packet.alloc(m, 1500);
      assert.equal(p.data[10], 0, 'zeroed');
      p.data.fill(0xff);
      p.release();
    }
    assert.equal(m.framesHeld, 1);
    assert.equal(m.outstanding, 0);
    const held = Packet.alloc(m, 100);
    assert.equal(m.outstanding, 1);
    held.release();
    held.release(); // idempotent
    assert.equal(m.outstanding, 0);
  });

  it('says which domain ran out when its RAM is used up', () => {
    const h = makeHost();
    const g = h.guest('tiny', { memoryMiB: 1 });
    const m = new GuestPacketMemory(g.mem, g.frames);
    const kept: Packet[] = [];
    assert.throws(
      () => {
        for (;;) kept.push(Packet.alloc(m, 65536));
      },
      (e: unknown) => e instanceof PacketMemoryExhausted && e.domid === g.domid && /exhausted/.test(e.message),
    );
    assert.ok(kept.length >= 10, `${kept.length} buffers before exhaustion`);
    assert.equal(m.outstanding, kept.length);
  });
});
