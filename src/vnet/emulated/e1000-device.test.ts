import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimEnvironment, US } from '../../sim/index.js';
import { E1000Device } from './e1000-device.js';
import * as R from './e1000-regs.js';

const RAM = 1 << 20;
const MAC = Uint8Array.of(0x00, 0x16, 0x3e, 0x00, 0x00, 0x01);

function rig(): { env: SimEnvironment; dev: E1000Device; ram: Uint8Array; sent: Uint8Array[]; irq: boolean[]; wakes: { n: number } } {
  const env = new SimEnvironment({ seed: 1 });
  const ram = new Uint8Array(RAM);
  const sent: Uint8Array[] = [];
  const irq: boolean[] = [];
  const wakes = { n: 0 };
  const dev = new E1000Device(env, MAC, {
    dmaRead: (gpa, len) => {
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) out[i] = gpa + i < RAM ? ram[gpa + i]! : 0;
      return out;
    },
    dmaWrite: (gpa, data) => data.forEach((b, i) => gpa + i < RAM && (ram[gpa + i] = b)),
    setIrq: (l) => {
      if (irq.at(-1) !== l) irq.push(l);
    },
    transmit: (f) => sent.push(f),
    canReceive: () => void wakes.n++,
  });
  irq.length = 0;
  return { env, dev, ram, sent, irq, wakes };
}

const TX_RING = 0x10000;
const RX_RING = 0x20000;
const BUFS = 0x40000;

function txDesc(ram: Uint8Array, ring: number, i: number, buf: number, len: number, cmd: number, upper = 0): void {
  const dv = new DataView(ram.buffer, ring + i * 16, 16);
  dv.setBigUint64(0, BigInt(buf), true);
  dv.setUint32(8, (len | cmd) >>> 0, true);
  dv.setUint32(12, upper, true);
}

function setupTx(dev: E1000Device, n = 8): void {
  dev.write(R.E1000_TDBAL, 4, TX_RING);
  dev.write(R.E1000_TDBAH, 4, 0);
  dev.write(R.E1000_TDLEN, 4, n * 16);
  dev.write(R.E1000_TDH, 4, 0);
  dev.write(R.E1000_TDT, 4, 0);
  dev.write(R.E1000_TCTL, 4, R.E1000_TCTL_EN | R.E1000_TCTL_PSP);
}

function setupRx(dev: E1000Device, ram: Uint8Array, n = 8): void {
  for (let i = 0; i < n; i++) new DataView(ram.buffer, RX_RING + i * 16, 16).setBigUint64(0, BigInt(BUFS + i * 2048), true);
  dev.write(R.E1000_RDBAL, 4, RX_RING);
  dev.write(R.E1000_RDLEN, 4, n * 16);
  dev.write(R.E1000_RDH, 4, 0);
  dev.write(R.E1000_RDT, 4, 0);
  dev.write(R.E1000_RCTL, 4, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | R.E1000_RCTL_SECRC);
}

function frame(len: number, seed: number, dst: Uint8Array = MAC): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set([0x00, 0x16, 0x3e, 0, 0, 2], 6);
  f[12] = 0x08;
  for (let i = 14; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

describe('e1000 device (QEMU hw/net/e1000.c): registers', () => {
  it('resets with link up, the MAC in RA[0] and an EEPROM whose words sum to 0xBABA; EERD reads it', () => {
    const { dev } = rig();
    assert.equal(dev.read(R.E1000_STATUS, 4) & R.E1000_STATUS_LU, R.E1000_STATUS_LU);
    assert.equal(dev.read(R.E1000_RA + 4, 4) >>> 0, (0x0100 | R.E1000_RAH_AV) >>> 0);
    let sum = 0;
    for (let a = 0; a < 64; a++) {
      dev.write(R.E1000_EERD, 4, (a << R.E1000_EERD_ADDR_SHIFT) | R.E1000_EERD_START);
      const v = dev.read(R.E1000_EERD, 4);
      assert.ok(v & R.E1000_EERD_DONE);
      sum = (sum + (v >>> R.E1000_EERD_DATA_SHIFT)) & 0xffff;
    }
    assert.equal(sum, R.EEPROM_SUM);
  });

  it('ICR is read-to-clear; ICS sets causes; IMS/IMC gate the line', () => {
    const { dev, irq } = rig();
    dev.write(R.E1000_ICS, 4, R.E1000_ICR_RXT0);
    assert.deepEqual(irq, [false], 'masked: no line');
    dev.write(R.E1000_IMS, 4, R.E1000_ICR_RXT0 | R.E1000_ICR_TXDW);
    assert.equal(dev.peek(R.E1000_IMS), R.E1000_ICR_RXT0 | R.E1000_ICR_TXDW);
    assert.deepEqual(irq, [false, true], 'unmasking a pending cause raises the line');
    assert.equal(dev.read(R.E1000_ICR, 4), R.E1000_ICR_RXT0);
    assert.equal(dev.read(R.E1000_ICR, 4), 0, 'cleared by the read');
    assert.deepEqual(irq, [false, true, false]);
    dev.write(R.E1000_IMC, 4, R.E1000_ICR_RXT0);
    assert.equal(dev.peek(R.E1000_IMS), R.E1000_ICR_TXDW);
    dev.write(R.E1000_ICS, 4, R.E1000_ICR_TXQE);
    assert.equal(dev.read(R.E1000_ICR, 4), R.E1000_ICR_TXQE, 'a masked cause is still latched in ICR');
  });

  it('ring lengths keep only multiples of 128 bytes; tails and heads are 16-bit', () => {
    const { dev } = rig();
    dev.write(R.E1000_TDLEN, 4, 1000);
    assert.equal(dev.peek(R.E1000_TDLEN), 896);
    dev.write(R.E1000_RDLEN, 4, 100);
    assert.equal(dev.peek(R.E1000_RDLEN), 0);
    dev.write(R.E1000_RDT, 4, 0x12345);
    assert.equal(dev.peek(R.E1000_RDT), 0x2345);
  });

  it('statistics registers clear on read', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev);
    txDesc(ram, TX_RING, 0, BUFS, 100, R.E1000_TXD_CMD_EOP);
    dev.write(R.E1000_TDT, 4, 1);
    assert.equal(sent.length, 1);
    assert.equal(dev.read(R.E1000_TPT, 4), 1);
    assert.equal(dev.read(R.E1000_TPT, 4), 0);
  });
});

describe('e1000 device: transmit', () => {
  it('sends each EOP-terminated chain, advances TDH to TDT, writes DD only where RS asked, raises TXDW|TXQE', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev);
    const f1 = frame(200, 1);
    const f2 = frame(1514, 2);
    ram.set(f1, BUFS);
    ram.set(f2.subarray(0, 1000), BUFS + 0x1000);
    ram.set(f2.subarray(1000), BUFS + 0x2000);
    txDesc(ram, TX_RING, 0, BUFS, 200, R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS);
    txDesc(ram, TX_RING, 1, BUFS + 0x1000, 1000, R.E1000_TXD_CMD_IFCS);
    txDesc(ram, TX_RING, 2, BUFS + 0x2000, 514, R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_IFCS | R.E1000_TXD_CMD_RS);
    dev.write(R.E1000_TDT, 4, 3);
    assert.equal(dev.peek(R.E1000_TDH), 3);
    assert.deepEqual(sent, [f1, f2]);
    assert.equal(ram[TX_RING + 12]! & R.E1000_TXD_STAT_DD, 0, 'no RS, no write-back');
    assert.equal(ram[TX_RING + 2 * 16 + 12]! & R.E1000_TXD_STAT_DD, R.E1000_TXD_STAT_DD);
    assert.equal(dev.read(R.E1000_ICR, 4), R.E1000_ICR_TXDW | R.E1000_ICR_TXQE);
  });

  it('the head wraps at the ring end', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev, 8);
    dev.write(R.E1000_TDH, 4, 6);
    dev.write(R.E1000_TDT, 4, 6);
    for (const [i, k] of [
      [6, 0],
      [7, 1],
      [0, 2],
    ] as const) {
      ram.set(frame(64, k), BUFS + k * 0x100);
      txDesc(ram, TX_RING, i, BUFS + k * 0x100, 64, R.E1000_TXD_CMD_EOP);
    }
    dev.write(R.E1000_TDT, 4, 1);
    assert.equal(dev.peek(R.E1000_TDH), 1);
    assert.equal(sent.length, 3);
    assert.deepEqual(
      sent.map((f) => f[20]),
      [0, 1, 2].map((k) => (20 * 7 + k) & 0xff),
    );
  });

  it('checksum offload: a context descriptor then data descriptors with TXSM/IXSM get the sums qemu computes', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev);
    // An IPv4/UDP frame: IP header at 14 (20 bytes), UDP checksum at 14+20+6.
    const f = frame(100, 3);
    f.fill(0, 24, 26); // IP checksum field
    f.fill(0, 40, 42); // UDP checksum field (pseudo-header sum would sit here; zero is fine for the arithmetic)
    ram.set(f, BUFS);
    const ctx = new DataView(ram.buffer, TX_RING, 16);
    ctx.setUint8(0, 14);
    ctx.setUint8(1, 24);
    ctx.setUint16(2, 33, true);
    ctx.setUint8(4, 34);
    ctx.setUint8(5, 40);
    ctx.setUint16(6, 0, true);
    ctx.setUint32(8, R.E1000_TXD_CMD_DEXT, true);
    txDesc(
      ram,
      TX_RING,
      1,
      BUFS,
      100,
      R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_DEXT | R.E1000_TXD_DTYP_D,
      (R.E1000_TXD_POPTS_TXSM | R.E1000_TXD_POPTS_IXSM) << 8,
    );
    dev.write(R.E1000_TDT, 4, 2);
    assert.equal(sent.length, 1);
    const out = sent[0]!;
    const fold = (a: number, b: number): number => {
      let s = 0;
      for (let i = a; i < b; i += 2) s += (out[i]! << 8) | (i + 1 < b ? out[i + 1]! : 0);
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      return s;
    };
    assert.equal(fold(14, 34), 0xffff, 'IP header sums to all ones');
    assert.equal(fold(34, 100), 0xffff, 'UDP part sums to all ones');
  });

  it('nonsense: a chain with no EOP sends nothing; a base outside RAM reads zero descriptors; a tail beyond the ring stalls on wrap', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev, 8);
    txDesc(ram, TX_RING, 0, BUFS, 100, 0);
    txDesc(ram, TX_RING, 1, BUFS, 100, 0);
    dev.write(R.E1000_TDT, 4, 2);
    assert.equal(sent.length, 0);
    assert.equal(dev.peek(R.E1000_TDH), 2);
    // Base outside guest RAM.
    const b = rig();
    setupTx(b.dev, 8);
    b.dev.write(R.E1000_TDBAL, 4, 0xf0000000);
    b.dev.write(R.E1000_TDT, 4, 3);
    assert.equal(b.sent.length, 0);
    assert.equal(b.dev.peek(R.E1000_TDH), 3);
    // Tail beyond an 8-entry ring: the head never meets it; start_xmit stops after one lap.
    const c = rig();
    setupTx(c.dev, 8);
    c.dev.write(R.E1000_TDT, 4, 20);
    assert.equal(c.dev.stats.txWrapStalls, 1);
    assert.equal(c.dev.stats.txDescs, 8);
    assert.equal(c.dev.peek(R.E1000_TDH), 0);
  });

  it('a descriptor longer than 16 KiB is taken whole, as QEMU does (up to its 64 KiB buffer)', () => {
    const { dev, ram, sent } = rig();
    setupTx(dev);
    txDesc(ram, TX_RING, 0, BUFS, 20000, R.E1000_TXD_CMD_EOP);
    dev.write(R.E1000_TDT, 4, 1);
    assert.equal(sent[0]!.length, 20000);
  });
});

describe('e1000 device: receive', () => {
  it('RDH == RDT means no buffer: the frame waits; RDT written wakes the queue; DD|EOP with the length; RXT0', () => {
    const { dev, ram, wakes } = rig();
    setupRx(dev, ram, 8);
    assert.equal(dev.canReceive(), false);
    assert.equal(dev.receive(frame(100, 1)), false, 'queued, not dropped');
    dev.write(R.E1000_RDT, 4, 7); // the driver posts n-1: the ring is full when RDH == RDT + 1
    assert.ok(wakes.n >= 1);
    const f = frame(1514, 4);
    assert.equal(dev.receive(f), true);
    assert.deepEqual(ram.subarray(BUFS, BUFS + 1514), f);
    const d = new DataView(ram.buffer, RX_RING, 16);
    assert.equal(d.getUint16(8, true), 1514);
    assert.equal(d.getUint8(12), R.E1000_RXD_STAT_DD | R.E1000_RXD_STAT_EOP);
    assert.equal(dev.peek(R.E1000_RDH), 1);
    assert.ok(dev.read(R.E1000_ICR, 4) & R.E1000_ICR_RXT0);
  });

  it('a short frame is padded to 60 bytes; a frame for another MAC is filtered; oversize without LPE is dropped', () => {
    const { dev, ram } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RDT, 4, 7);
    assert.equal(dev.receive(frame(42, 1)), true);
    assert.equal(new DataView(ram.buffer, RX_RING, 16).getUint16(8, true), 60);
    assert.equal(dev.receive(frame(100, 1, Uint8Array.of(0, 0x16, 0x3e, 9, 9, 9))), true);
    assert.equal(dev.receive(frame(1600, 1)), true);
    assert.equal(dev.stats.rxDropped, 2);
    assert.equal(dev.peek(R.E1000_RDH), 1);
  });

  it("without SECRC the last descriptor's length counts the 4-byte FCS (Linux e1000 subtracts it)", () => {
    const { dev, ram } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RCTL, 4, R.E1000_RCTL_EN | R.E1000_RCTL_BAM | R.E1000_RCTL_LPE);
    dev.write(R.E1000_RDT, 4, 7);
    const f = frame(2046, 9);
    assert.equal(dev.receive(f), true);
    const d0 = new DataView(ram.buffer, RX_RING, 16);
    const d1 = new DataView(ram.buffer, RX_RING + 16, 16);
    assert.equal(d0.getUint16(8, true), 2048);
    assert.equal(d0.getUint8(12), R.E1000_RXD_STAT_DD);
    assert.equal(d1.getUint16(8, true), 2);
    assert.equal(d1.getUint8(12), R.E1000_RXD_STAT_DD | R.E1000_RXD_STAT_EOP);
    assert.deepEqual(ram.subarray(BUFS, BUFS + 2046), f);
    assert.equal(ram[BUFS + 2046], 0, 'the FCS bytes are not written');
  });

  it('head wrap: buffers posted across the ring end are used in order', () => {
    const { dev, ram } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RDH, 4, 6);
    dev.write(R.E1000_RDT, 4, 5);
    for (let k = 0; k < 4; k++) assert.equal(dev.receive(frame(64 + k, k)), true);
    assert.equal(dev.peek(R.E1000_RDH), 2);
    assert.equal(new DataView(ram.buffer, RX_RING + 1 * 16, 16).getUint16(8, true), 67);
  });

  it('too few buffers for a frame: RXO and a counted miss, the ring untouched', () => {
    const { dev, ram } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RCTL, 4, R.E1000_RCTL_EN | R.E1000_RCTL_LPE | R.E1000_RCTL_SECRC);
    dev.write(R.E1000_RDT, 4, 1);
    assert.equal(dev.receive(frame(3000, 1)), true);
    assert.equal(dev.peek(R.E1000_RDH), 0);
    assert.equal(dev.read(R.E1000_MPC, 4), 1);
    assert.ok(dev.read(R.E1000_ICR, 4) & R.E1000_ICR_RXO);
  });
});

describe('e1000 device: interrupt mitigation (mit_timer)', () => {
  it('the first cause raises the line at once; the next edge waits for the ITR window (256 ns units, at least 500)', () => {
    const { env, dev, ram, irq } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RDT, 4, 7);
    dev.write(R.E1000_ITR, 4, 1000); // 256 µs
    dev.write(R.E1000_IMS, 4, R.E1000_ICR_RXT0);
    dev.receive(frame(64, 1));
    assert.equal(irq.at(-1), true);
    dev.read(R.E1000_ICR, 4);
    assert.equal(irq.at(-1), false);
    dev.receive(frame(64, 2));
    assert.equal(irq.at(-1), false, 'inside the window: postponed');
    env.run({ until: 255 * US });
    assert.equal(irq.at(-1), false);
    env.run({ until: 257 * US });
    assert.equal(irq.at(-1), true, 'raised when the mit_timer fires');
    assert.equal(dev.stats.irqRaised, 2);
  });

  it("ITR 0 still paces edges at 500 × 256 ns (128 µs), QEMU's floor", () => {
    const { env, dev, ram, irq } = rig();
    setupRx(dev, ram, 8);
    dev.write(R.E1000_RDT, 4, 7);
    dev.write(R.E1000_IMS, 4, R.E1000_ICR_RXT0);
    dev.receive(frame(64, 1));
    dev.read(R.E1000_ICR, 4);
    dev.receive(frame(64, 2));
    env.run({ until: 127 * US });
    assert.equal(irq.at(-1), false);
    env.run({ until: 129 * US });
    assert.equal(irq.at(-1), true);
  });
});

describe('e1000 device: TSO as QEMU segments it (xmit_seg)', () => {
  const sum16 = (d: Uint8Array, from: number, to: number, init = 0): number => {
    let s = init;
    for (let i = from; i < to; i += 2) s += (d[i]! << 8) | (i + 1 < to ? d[i + 1]! : 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return s;
  };
  it('cuts a 4,000-byte TCP payload into MSS segments with their own length, id, sequence number, flags and valid checksums', () => {
    const { env, dev, ram, sent } = rig();
    setupTx(dev);
    const pay = 4000;
    const mss = 1460;
    const hdr = 54;
    const pkt = frame(hdr + pay, 3);
    // IPv4 header: version/IHL, tot_len 0 and check 0 as e1000_tso leaves them, id 0x1234, TTL, TCP, addresses.
    pkt.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 14);
    // TCP header: ports, seq 0xfffffc00 (it wraps), ack, data offset 5, flags ACK|PSH|FIN, window.
    pkt.set([0x30, 0x39, 0x00, 0x50, 0xff, 0xff, 0xfc, 0x00, 0, 0, 0, 1, 0x50, 0x19, 0xff, 0xff, 0, 0, 0, 0], 34);
    const ph = sum16(pkt, 26, 34, 6); // pseudo-header without a length
    pkt[50] = ph >> 8;
    pkt[51] = ph & 0xff;
    ram.set(pkt, BUFS);
    const ctx = new DataView(ram.buffer, TX_RING, 16);
    ctx.setUint8(0, 14);
    ctx.setUint8(1, 24);
    ctx.setUint16(2, 33, true);
    ctx.setUint8(4, 34);
    ctx.setUint8(5, 50);
    ctx.setUint32(8, (R.E1000_TXD_CMD_DEXT | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_IP | R.E1000_TXD_CMD_TCP | pay) >>> 0, true);
    ctx.setUint8(13, hdr);
    ctx.setUint16(14, mss, true);
    const data = R.E1000_TXD_CMD_DEXT | R.E1000_TXD_DTYP_D | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_IFCS;
    const popts = (R.E1000_TXD_POPTS_TXSM | R.E1000_TXD_POPTS_IXSM) << 8;
    txDesc(ram, TX_RING, 1, BUFS, 2000, data, popts);
    txDesc(ram, TX_RING, 2, BUFS + 2000, hdr + pay - 2000, data | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS, popts);
    dev.write(R.E1000_TDT, 4, 3);
    env.run({ until: env.now + 10 * US });
    assert.deepEqual(
      sent.map((f) => f.length),
      [hdr + mss, hdr + mss, hdr + pay - 2 * mss],
    );
    const payload: number[] = [];
    sent.forEach((f, k) => {
      assert.equal((f[16]! << 8) | f[17]!, f.length - 14, 'IPv4 total length of the segment');
      assert.equal((f[18]! << 8) | f[19]!, 0x1234 + k, 'IPv4 id advances per segment');
      assert.equal(sum16(f, 14, 34), 0xffff, 'IPv4 header checksum valid');
      const seq = ((f[38]! << 24) | (f[39]! << 16) | (f[40]! << 8) | f[41]!) >>> 0;
      assert.equal(seq, (0xfffffc00 + k * mss) >>> 0, 'sequence number advances by MSS');
      assert.equal(f[47]! & 9, k === sent.length - 1 ? 9 : 0, 'PSH and FIN only on the last');
      const tcpLen = f.length - 34;
      assert.equal(sum16(f, 34, f.length, sum16(f, 26, 34, 6 + tcpLen)), 0xffff, 'TCP checksum valid');
      payload.push(...f.subarray(hdr));
    });
    assert.deepEqual(Uint8Array.from(payload), pkt.subarray(hdr), 'the payload, in order');
  });

  it('a data descriptor asking for TSE after a context without it is ignored (QEMU: "TCP segmentation error")', () => {
    const { env, dev, ram, sent } = rig();
    setupTx(dev);
    ram.set(frame(100, 1), BUFS);
    txDesc(ram, TX_RING, 0, 0, 0, R.E1000_TXD_CMD_DEXT);
    txDesc(ram, TX_RING, 1, BUFS, 100, R.E1000_TXD_CMD_DEXT | R.E1000_TXD_DTYP_D | R.E1000_TXD_CMD_TSE | R.E1000_TXD_CMD_EOP | R.E1000_TXD_CMD_RS);
    dev.write(R.E1000_TDT, 4, 2);
    env.run({ until: env.now + 10 * US });
    assert.equal(sent.length, 0);
    assert.equal(dev.read(R.E1000_TDH, 4), 2, 'the descriptors are consumed all the same');
  });
});
