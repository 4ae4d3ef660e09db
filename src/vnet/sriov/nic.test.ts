/**
 * The SR-IOV NIC on its own (src/vnet/sriov/nic.ts): two VFs of one NIC assigned to two HVM
 * guests whose "drivers" here are test code writing descriptors straight into the guests'
 * memory and ringing the tail through the BAR, with no CPU behind them, so what limits the
 * NIC shows: the VF-to-VF rate is the PCIe link's (each frame crosses it twice), far above
 * the wire's 10 Gb/s. Then what a bad descriptor does: an address outside the guest's memory
 * faults in the IOMMU (dropped, counted, nothing of anyone else touched), a malformed chain
 * stops that VF's TX queue only.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, US } from '../../sim/index.js';
import { Ipv4Packet, mac } from '../../net/index.js';
import { PAGE_SIZE } from '../../xen/abi/index.js';
import { makeHost, profile } from '../../xen/test-fixture.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { sriovCosts } from './costs.js';
import { SriovNic, type Vf } from './nic.js';
import * as R from './regs.js';

const MAC_A = mac('00:16:3e:00:00:0a');
const MAC_B = mac('00:16:3e:00:00:0b');
const MAC_C = mac('00:16:3e:00:00:0c');

interface Rig {
  nic: SriovNic;
  vfs: Vf[];
  guests: XenGuest[];
  run(ns: number): void;
  env: ReturnType<typeof makeHost>['env'];
}

function rig(n = 2): Rig {
  const h = makeHost({ pcpus: 2 });
  const nic = new SriovNic(h.env, h.hv, 'sriov0', '01:00.0', mac('00:1b:21:00:00:01'), sriovCosts(profile), h.hv.rng('phys/sriov0'));
  nic.enableVfs(n);
  const macs = [MAC_A, MAC_B, MAC_C];
  const guests: XenGuest[] = [];
  for (let i = 0; i < n; i++) {
    const g = h.guest(`g${i}`);
    guests.push(g);
    nic.setVfMac(nic.vfs[i]!, macs[i]!);
    nic.assignVf(nic.vfs[i]!, g.domain, 0x41);
    g.domain.idt.set(0x41, function* () {
      /* the test polls the rings itself */
    });
  }
  return {
    nic,
    vfs: nic.vfs,
    guests,
    env: h.env,
    run: (ns) => h.env.run({ until: h.env.now + ns }),
  };
}

/** A ring of `count` descriptors in consecutive frames of the guest; its guest-physical address. */
function ring(g: XenGuest, count: number): number {
  const pages = Math.max(1, Math.ceil((count * R.DESC_SIZE) / PAGE_SIZE));
  const gfn = g.frames.allocRun(pages);
  assert.ok(gfn !== null);
  return gfn * PAGE_SIZE;
}

function setupTx(nic: SriovNic, vf: Vf, base: number, count: number): void {
  nic.regWrite(vf, R.IXGBE_VFTDBAL0, base >>> 0);
  nic.regWrite(vf, R.IXGBE_VFTDBAH0, Math.floor(base / 2 ** 32));
  nic.regWrite(vf, R.IXGBE_VFTDLEN0, count * R.DESC_SIZE);
  nic.regWrite(vf, R.IXGBE_VFTDH0, 0);
  nic.regWrite(vf, R.IXGBE_VFTDT0, 0);
  nic.regWrite(vf, R.IXGBE_VFTXDCTL0, R.IXGBE_XDCTL_ENABLE);
}

/** An RX ring with a page-sized buffer per descriptor; returns the buffers' addresses. */
function setupRx(nic: SriovNic, g: XenGuest, vf: Vf, count: number): { base: number; bufs: number[] } {
  const base = ring(g, count);
  const bufs: number[] = [];
  for (let i = 0; i < count; i++) {
    const gfn = g.frames.alloc()!;
    bufs.push(gfn * PAGE_SIZE);
    g.mem.writeU64(base + i * 16, BigInt(gfn * PAGE_SIZE));
  }
  nic.regWrite(vf, R.IXGBE_VFRDBAL0, base >>> 0);
  nic.regWrite(vf, R.IXGBE_VFRDBAH0, Math.floor(base / 2 ** 32));
  nic.regWrite(vf, R.IXGBE_VFRDLEN0, count * R.DESC_SIZE);
  nic.regWrite(vf, R.IXGBE_VFRDH0, 0);
  nic.regWrite(vf, R.IXGBE_VFRXDCTL0, R.IXGBE_XDCTL_ENABLE);
  nic.regWrite(vf, R.IXGBE_VFRDT0, count - 1);
  return { base, bufs };
}

/** A TCP/IPv4 frame (or a TSO packet when `payload` > 1460) from `src` to `dst` in guest memory at `gpa`. */
function writeTcp(g: XenGuest, gpa: number, src: number, dst: number, payload: number, seq = 1): number {
  const len = 14 + 20 + 20 + payload;
  const b = new Uint8Array(len);
  for (let i = 0; i < 6; i++) {
    b[i] = Math.floor(dst / 256 ** (5 - i)) % 256;
    b[6 + i] = Math.floor(src / 256 ** (5 - i)) % 256;
  }
  b[12] = 0x08;
  b[14] = 0x45;
  const ipLen = Math.min(65535, 40 + payload);
  b[16] = ipLen >> 8;
  b[17] = ipLen & 0xff;
  b[20] = 0x40;
  b[22] = 64;
  b[23] = 6;
  b.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  new Ipv4Packet(b, 14).fillChecksum();
  b[34] = 0x30;
  b[35] = 0x39;
  b[36] = 0x13;
  b[37] = 0x89;
  b[38] = (seq >>> 24) & 0xff;
  b[41] = seq & 0xff;
  b[46] = 0x50;
  b[47] = 0x10;
  b[48] = 0xff;
  b[49] = 0xff;
  for (let i = 54; i < len; i++) b[i] = i & 0xff;
  g.mem.write(gpa, b);
  return len;
}

function txDesc(g: XenGuest, base: number, i: number, addr: number, w2: number, w3: number): void {
  g.mem.writeU64(base + i * 16, BigInt(addr));
  g.mem.writeU32(base + i * 16 + 8, w2 >>> 0);
  g.mem.writeU32(base + i * 16 + 12, w3 >>> 0);
}

const DATA = (R.IXGBE_ADVTXD_DTYP_DATA << R.IXGBE_ADVTXD_DTYP_SHIFT) | R.IXGBE_TXD_CMD_DEXT | R.IXGBE_TXD_CMD_IFCS;

describe('SR-IOV NIC: VF to VF', () => {
  it("moves TSO traffic VF to VF at the PCIe link's rate (two crossings per frame), well above the wire rate", () => {
    const r = rig();
    const [a, b] = r.guests as [XenGuest, XenGuest];
    const [va, vb] = r.vfs as [Vf, Vf];
    const N = 1024;
    const tx = ring(a, N);
    setupTx(r.nic, va, tx, N);
    const rx = setupRx(r.nic, b, vb, 512);
    // One 64 KiB TSO packet in 17 consecutive frames, sent over and over (5 data descriptors + a context one).
    const pkt = a.frames.allocRun(17)! * PAGE_SIZE;
    const payload = 65535 - 40;
    const len = writeTcp(a, pkt, MAC_A, MAC_B, payload);
    const per = 1 + Math.ceil(len / R.IXGBE_MAX_DATA_PER_TXD);
    let tail = 0;
    let rxNext = 0;
    let rxTail = 511;
    const ctxW0 = 20 | (14 << R.IXGBE_ADVTXD_MACLEN_SHIFT);
    const ctxW2 =
      R.IXGBE_ADVTXD_TUCMD_IPV4 | R.IXGBE_ADVTXD_TUCMD_L4T_TCP | (R.IXGBE_ADVTXD_DTYP_CTXT << R.IXGBE_ADVTXD_DTYP_SHIFT) | R.IXGBE_TXD_CMD_DEXT;
    const ctxW3 = (1460 << R.IXGBE_ADVTXD_MSS_SHIFT) | (20 << R.IXGBE_ADVTXD_L4LEN_SHIFT);
    const driver = function* () {
      for (;;) {
        // Keep the TX ring full: the NIC's own pace decides (in-use = tail − head as the NIC reports through DD is not needed here).
        const head = va.tdh;
        while ((head - tail - 1 + N) % N >= per) {
          a.mem.writeU32(tx + tail * 16, ctxW0);
          a.mem.writeU32(tx + tail * 16 + 8, ctxW2 >>> 0);
          a.mem.writeU32(tx + tail * 16 + 12, ctxW3 >>> 0);
          tail = (tail + 1) % N;
          for (let off = 0; off < len; off += R.IXGBE_MAX_DATA_PER_TXD) {
            const l = Math.min(R.IXGBE_MAX_DATA_PER_TXD, len - off);
            const last = off + l >= len;
            txDesc(
              a,
              tx,
              tail,
              pkt + off,
              DATA | R.IXGBE_ADVTXD_DCMD_TSE | l | (last ? R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS : 0),
              off === 0 ? R.IXGBE_ADVTXD_POPTS_TXSM : 0,
            );
            tail = (tail + 1) % N;
          }
        }
        r.nic.regWrite(va, R.IXGBE_VFTDT0, tail);
        // Re-post every RX buffer the NIC wrote back.
        let posted = false;
        for (;;) {
          const st = b.mem.readU32(rx.base + rxNext * 16 + 8);
          if ((st & R.IXGBE_RXD_STAT_DD) === 0) break;
          b.mem.writeU64(rx.base + rxNext * 16, BigInt(rx.bufs[rxNext]!));
          b.mem.writeU64(rx.base + rxNext * 16 + 8, 0n);
          rxTail = rxNext;
          rxNext = (rxNext + 1) % 512;
          posted = true;
        }
        if (posted) r.nic.regWrite(vb, R.IXGBE_VFRDT0, rxTail);
        yield r.env.timeout(2 * US);
      }
    };
    r.env.process(driver());
    r.run(500 * US);
    const s0 = { bytes: vb.stats.rxBytes, frames: vb.stats.rxFrames, t: r.env.now };
    r.run(2 * MS);
    const bytes = vb.stats.rxBytes - s0.bytes;
    const frames = vb.stats.rxFrames - s0.frames;
    const gbps = (bytes * 8) / (r.env.now - s0.t);
    assert.equal(vb.stats.rxNoDesc, 0, 'the re-posting kept up');
    assert.ok(frames > 1000, `frames ${frames}`);
    // The bound: every frame is DMA-written upstream with its TLP framing (the TX reads use the
    // other direction), at pcie.bandwidth; the switch's per-frame slot is far shorter.
    const c = sriovCosts(profile);
    const frame = bytes / frames;
    const wireOfFrame = frame + Math.ceil(frame / c.pcie.maxPayload) * c.pcie.tlpOverhead;
    const pcieBound = (8 * frame) / (wireOfFrame * c.pcie.nsPerByte);
    const vebBound = (8 * frame) / c.vebFrame;
    assert.ok(vebBound > pcieBound, 'the switch is not the limit for full-size frames');
    assert.ok(gbps <= pcieBound * 1.001, `${gbps.toFixed(2)} Gb/s above the PCIe bound ${pcieBound.toFixed(2)}`);
    assert.ok(gbps > 0.75 * pcieBound, `${gbps.toFixed(2)} Gb/s, far below the PCIe bound ${pcieBound.toFixed(2)}: something else limits it`);
    assert.ok(gbps > 15, `${gbps.toFixed(2)} Gb/s: VF to VF is not bounded by the 10 Gb/s wire`);
    assert.equal(r.nic.stats.toWire, 0, 'nothing left by the wire');
    // Two crossings per frame: one read of each packet's data, one write of each frame's.
    assert.ok(r.nic.pcie.stats.dmaWriteBytes >= vb.stats.rxBytes && r.nic.pcie.stats.dmaReadBytes >= va.stats.txBytes);
    assert.equal(vb.stats.dataWrites, vb.stats.rxFrames);
  });

  it("a TX buffer outside the guest's memory faults in the IOMMU: dropped and counted, the other guest untouched, the queue goes on", () => {
    const r = rig();
    const [a, b] = r.guests as [XenGuest, XenGuest];
    const [va, vb] = r.vfs as [Vf, Vf];
    const tx = ring(a, 128);
    setupTx(r.nic, va, tx, 128);
    setupRx(r.nic, b, vb, 64);
    r.run(10 * US);
    const before = b.mem.read(0, 64 * PAGE_SIZE).slice();
    const good = a.frames.alloc()! * PAGE_SIZE;
    const len = writeTcp(a, good, MAC_A, MAC_B, 100);
    // Descriptor 0: a buffer in the MMIO hole (not the guest's RAM); 1: beyond its RAM; 2: a good frame.
    txDesc(a, tx, 0, 0xf0000000, DATA | len | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    txDesc(a, tx, 1, 2 ** 36, DATA | len | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    txDesc(a, tx, 2, good, DATA | len | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    const faults0 = r.nic.pcie.stats.dmaReadBytes;
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 3);
    r.run(50 * US);
    assert.equal(va.stats.txIommuFaults, 2);
    assert.equal(
      r.guests[0]!.domain.domid,
      [...(r.nic as unknown as { hv: { iommu: { faultsByDomain: Map<number, number> } } }).hv.iommu.faultsByDomain.keys()][0],
    );
    assert.equal(va.stats.txPackets, 1, 'only the good packet was read');
    assert.equal(
      r.nic.pcie.stats.dmaReadBytes - faults0,
      3 * 16 + len + 32 * 16,
      "a's three descriptors and its good frame (plus b's RX descriptor prefetch), nothing of the faulting ones",
    );
    assert.equal(vb.stats.rxFrames, 1, 'b got the good frame only');
    // All three descriptors completed (DD): the ring moves on past the dropped packets.
    for (let i = 0; i < 3; i++) assert.ok((a.mem.readU32(tx + i * 16 + 12) & R.IXGBE_TXD_STAT_DD) !== 0, `descriptor ${i} DD`);
    // b's memory changed only where its one posted buffer and descriptor are.
    const after = b.mem.read(0, 64 * PAGE_SIZE);
    let changed = 0;
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changed++;
    assert.ok(changed <= len + 16, `${changed} bytes of b changed`);
  });

  it("an RX buffer outside the guest's memory: the frame dropped, the descriptor written back with RXE, nothing written elsewhere", () => {
    const r = rig();
    const [a, b] = r.guests as [XenGuest, XenGuest];
    const [va, vb] = r.vfs as [Vf, Vf];
    const tx = ring(a, 128);
    setupTx(r.nic, va, tx, 128);
    const rx = setupRx(r.nic, b, vb, 64);
    b.mem.writeU64(rx.base, BigInt(0xfee00000)); // the LAPIC page, not RAM
    r.nic.regWrite(vb, R.IXGBE_VFRDT0, 63);
    r.run(10 * US);
    const good = a.frames.alloc()! * PAGE_SIZE;
    const len = writeTcp(a, good, MAC_A, MAC_B, 100);
    txDesc(a, tx, 0, good, DATA | len | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    txDesc(a, tx, 1, good, DATA | len | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 2);
    r.run(50 * US);
    assert.equal(vb.stats.rxIommuFaults, 1);
    assert.equal(vb.stats.rxFrames, 1);
    const st = b.mem.readU32(rx.base + 8);
    assert.ok((st & R.IXGBE_RXD_STAT_DD) !== 0 && (st & R.IXGBE_RXDADV_ERR_RXE) !== 0, 'written back with RXE');
    assert.equal(b.mem.readU16(rx.base + 16 + 12), len, 'the next frame went to the next buffer');
  });

  it("a malformed TX chain (no EOP before the tail, or a zero length) stops that VF's TX queue only; the others carry on; nothing throws", () => {
    const r = rig(3);
    const [a, b, c] = r.guests as [XenGuest, XenGuest, XenGuest];
    const [va, vb, vc] = r.vfs as [Vf, Vf, Vf];
    const txa = ring(a, 128);
    const txb = ring(b, 128);
    setupTx(r.nic, va, txa, 128);
    setupTx(r.nic, vb, txb, 128);
    setupRx(r.nic, a, va, 64);
    setupRx(r.nic, c, vc, 64);
    r.run(10 * US);
    const fa = a.frames.alloc()! * PAGE_SIZE;
    const la = writeTcp(a, fa, MAC_A, MAC_C, 100);
    // a: a chain of two data descriptors with no EOP, then the tail.
    txDesc(a, txa, 0, fa, DATA | la, 0);
    txDesc(a, txa, 1, fa, DATA | la, 0);
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 2);
    r.run(20 * US);
    assert.equal(va.stats.txMalformed, 1);
    assert.ok(va.txStopped);
    assert.equal(r.nic.stats.mddEvents, 1, 'the PF was told');
    assert.equal(vc.stats.rxFrames, 0, 'nothing of the malformed chain was sent');
    // A later good packet from a does not go either: its queue is stopped until the VF is reset.
    txDesc(a, txa, 2, fa, DATA | la | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 3);
    // b to c and b to a still work (a's RX queue is fine).
    const fb = b.frames.alloc()! * PAGE_SIZE;
    const lb = writeTcp(b, fb, MAC_B, MAC_C, 200);
    const fb2 = b.frames.alloc()! * PAGE_SIZE;
    const lb2 = writeTcp(b, fb2, MAC_B, MAC_A, 200);
    txDesc(b, txb, 0, fb, DATA | lb | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    txDesc(b, txb, 1, fb2, DATA | lb2 | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    // and a zero-length descriptor stops b's queue in turn, after its two good packets.
    txDesc(b, txb, 2, fb, DATA | 0 | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    r.nic.regWrite(vb, R.IXGBE_VFTDT0, 3);
    r.run(50 * US);
    assert.equal(vc.stats.rxFrames, 1, 'b → c delivered');
    assert.equal(va.stats.rxFrames, 1, "b → a delivered: a's RX queue is not stalled");
    assert.equal(va.stats.txPackets, 0);
    assert.equal(vb.stats.txPackets, 2);
    assert.equal(vb.stats.txMalformed, 1);
    assert.equal(r.nic.stats.mddEvents, 2);
    // A reset (VFLR) and a fresh set-up brings a's queue back.
    r.nic.resetVf(va);
    setupTx(r.nic, va, txa, 128);
    txDesc(a, txa, 0, fa, DATA | la | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 1);
    r.run(50 * US);
    assert.equal(va.stats.txPackets, 1);
    assert.equal(vc.stats.rxFrames, 2);
  });

  it("a frame whose source MAC is not the VF's is dropped (anti-spoofing); broadcast reaches every other pool", () => {
    const r = rig(3);
    const [a, b, c] = r.guests as [XenGuest, XenGuest, XenGuest];
    const [va, vb, vc] = r.vfs as [Vf, Vf, Vf];
    const txa = ring(a, 128);
    setupTx(r.nic, va, txa, 128);
    setupRx(r.nic, b, vb, 64);
    setupRx(r.nic, c, vc, 64);
    r.run(10 * US);
    const f = a.frames.alloc()! * PAGE_SIZE;
    const l = writeTcp(a, f, MAC_C, MAC_B, 60);
    const g = a.frames.alloc()! * PAGE_SIZE;
    const lg = writeTcp(a, g, MAC_A, 0xffffffffffff, 60);
    txDesc(a, txa, 0, f, DATA | l | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    txDesc(a, txa, 1, g, DATA | lg | R.IXGBE_TXD_CMD_EOP | R.IXGBE_TXD_CMD_RS, 0);
    r.nic.regWrite(va, R.IXGBE_VFTDT0, 2);
    r.run(50 * US);
    assert.equal(va.stats.txSpoofed, 1);
    assert.equal(vb.stats.rxFrames, 1);
    assert.equal(vc.stats.rxFrames, 1);
    assert.equal(r.nic.stats.wireDropped, 1, "the broadcast's wire copy: no cable");
  });
});
