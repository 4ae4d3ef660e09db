import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameAllocator } from './guest/frame-alloc.js';
import { GuestFault, GuestMemory, HIGH_RAM_START_GFN, MMIO_HOLE_START_GFN } from './memory.js';

describe('guest memory', () => {
  it("resumeAs (live migration): the RAM and its views kept, the old host's mappings gone, the new domain's special pages in, the new domid", () => {
    const ram = new GuestMemory(5, 16);
    ram.write(0x3000, new Uint8Array([1, 2, 3]));
    const view = ram.view(3);
    ram.setOverlay(HIGH_RAM_START_GFN + 10, { type: 'xen_page', page: new Uint8Array(4096) });
    assert.ok(ram.populateSpecial(0xfeffc));
    ram.writeU8(0xfeffc * 4096, 9);
    const fresh = new GuestMemory(7, 16);
    assert.ok(fresh.populateSpecial(0xfeffc));
    fresh.writeU8(0xfeffc * 4096, 4);
    assert.equal(ram.peekRam(9), null, 'peekRam does not populate');
    ram.resumeAs(7, fresh);
    assert.equal(ram.domid, 7);
    assert.deepEqual([...ram.read(0x3000, 3)], [1, 2, 3]);
    assert.equal(ram.view(3), view, 'the same bytes behind the same view');
    assert.equal(ram.overlayAt(HIGH_RAM_START_GFN + 10), undefined);
    assert.equal(ram.readU8(0xfeffc * 4096), 4, "the xenstore page is the new domain's");
    assert.equal(ram.ramPage(0xfeffc), fresh.ramPage(0xfeffc));
    assert.throws(() => ram.resumeAs(8, new GuestMemory(8, 32)), /model bug/);
  });

  it("allocates RAM pages on first touch, zeroed, up to the domain's memory", () => {
    const m = new GuestMemory(3, 16);
    assert.equal(m.ramPages, 4096);
    assert.equal(m.populated, 0);
    assert.equal(m.readU32(0x5000), 0);
    m.writeU8(0x5001, 7);
    assert.equal(m.populated, 1);
    assert.equal(m.readU32(0x5000), 0x700);
    assert.ok(m.isRamGfn(4095) && !m.isRamGfn(4096));
    assert.throws(
      () => m.readU8(4096 * 4096),
      (e: unknown) => e instanceof GuestFault && /nothing is mapped/.test(e.message),
    );
    assert.equal(m.ramPage(4096), null, 'Xen finds no page there either');
  });

  it('lays RAM out around the MMIO hole below 4 GiB', () => {
    const m = new GuestMemory(1, 4096);
    assert.ok(m.isRamGfn(MMIO_HOLE_START_GFN - 1));
    assert.ok(!m.isRamGfn(MMIO_HOLE_START_GFN));
    assert.ok(!m.isRamGfn(HIGH_RAM_START_GFN - 1));
    const high = m.ramPages - MMIO_HOLE_START_GFN;
    assert.ok(m.isRamGfn(HIGH_RAM_START_GFN + high - 1));
    assert.ok(!m.isRamGfn(HIGH_RAM_START_GFN + high));
    assert.equal(m.firstFreeGfn, HIGH_RAM_START_GFN + high);
    assert.equal(m.ramGfnAt(m.ramPages - 1), HIGH_RAM_START_GFN + high - 1);
  });

  it('reads and writes across page boundaries, little-endian', () => {
    const m = new GuestMemory(1, 1);
    m.writeU64(4096 - 4, 0x0102030405060708n);
    assert.deepEqual([...m.read(4096 - 4, 8)], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert.equal(m.readU32(4096 - 2), 0x03040506);
    m.write(8190, Uint8Array.of(1, 2, 3, 4));
    assert.equal(m.readU16(8192), 0x0403);
  });

  it('a mapping replaces the RAM page at its frame; after it goes the frame stays empty', () => {
    const m = new GuestMemory(1, 1);
    m.writeU8(0x3000, 5);
    const page = new Uint8Array(4096).fill(0xee);
    m.setOverlay(3, { type: 'grant_map_ro', page });
    assert.equal(m.readU8(0x3000), 0xee);
    assert.throws(() => m.writeU8(0x3000, 1), /read-only grant mapping/);
    assert.equal(m.ramPage(3), null, "not the domain's RAM any more");
    assert.ok(!m.clearOverlay(3, new Uint8Array(4096)), 'only the page mapped there is removed');
    assert.ok(m.clearOverlay(3, page));
    assert.throws(() => m.readU8(0x3000), GuestFault);
  });
});

describe('guest frame allocator', () => {
  it('hands out zeroed RAM frames from the top down, never more than the domain has, and unpopulated frames above RAM', () => {
    const m = new GuestMemory(1, 1); // 256 frames
    const f = new FrameAllocator(m);
    m.fill(255 * 4096, 4096, 0x77);
    const a = f.alloc()!;
    assert.equal(a, 255);
    assert.equal(m.readU8(a * 4096 + 9), 0, 'zeroed');
    assert.equal(f.allocMany(300), null, 'all or nothing');
    const rest = f.allocMany(255)!;
    assert.equal(rest.length, 255);
    assert.equal(new Set([a, ...rest]).size, 256);
    assert.equal(f.alloc(), null, 'memory exhausted');
    f.free(rest[3]!);
    assert.equal(f.alloc(), rest[3]);
    assert.throws(() => f.free(9999), /not allocated/);
    const u = f.allocUnpopulated();
    assert.ok(u >= m.firstFreeGfn && !m.isRamGfn(u));
    assert.notEqual(f.allocUnpopulated(), u);
  });
});
