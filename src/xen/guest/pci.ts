import type { SimEvent } from '../../sim/index.js';
import { IOREQ_READ, IOREQ_WRITE } from '../abi/index.js';
import type { Vcpu } from '../vcpu.js';
import type { XenPlatform } from './platform.js';

/** Type 0 configuration header offsets and bits, by Linux's include/uapi/linux/pci_regs.h names. */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS = 0x06;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_BASE_ADDRESS_1 = 0x14;
export const PCI_BASE_ADDRESS_5 = 0x24;
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

/** PCI_ISA_IRQ_MASK (hvmloader/config.h): the ISA IRQs hvmloader routes the four PCI links to, in turn (5, 10, 11). */
export const PCI_ISA_IRQ_MASK = 0x0c20;

/** PCI_DEVFN. */
export function pciDevfn(slot: number, fn: number): number {
  return ((slot & 0x1f) << 3) | (fn & 7);
}

/**
 * PCI configuration mechanism #1 as a guest kernel uses it (Linux's pci_conf1_read/write,
 * hvmloader's pci_read/pci_write): CONFIG_ADDRESS (0xcf8) gets enable | bus | devfn |
 * register, then CONFIG_DATA (0xcfc + the register's low bits) is read or written with the
 * access size. Both are port I/O, so each is an I/O-instruction exit.
 */
export class PciConf {
  /** Config accesses made (each two port accesses). */
  accesses = 0;

  constructor(
    private readonly xen: XenPlatform,
    private readonly v: Vcpu,
  ) {}

  private addr(bus: number, devfn: number, reg: number): bigint {
    return BigInt((0x80000000 | ((bus & 0xff) << 16) | ((devfn & 0xff) << 8) | (reg & 0xfc)) >>> 0);
  }

  *read(bus: number, devfn: number, reg: number, size: 1 | 2 | 4): Generator<SimEvent<unknown>, number, unknown> {
    this.accesses++;
    yield* this.xen.pio(this.v, IOREQ_WRITE, 0xcf8, 4, this.addr(bus, devfn, reg));
    return Number(yield* this.xen.pio(this.v, IOREQ_READ, 0xcfc + (reg & 3), size));
  }

  *write(bus: number, devfn: number, reg: number, size: 1 | 2 | 4, value: number): Generator<SimEvent<unknown>, void, unknown> {
    this.accesses++;
    yield* this.xen.pio(this.v, IOREQ_WRITE, 0xcf8, 4, this.addr(bus, devfn, reg));
    yield* this.xen.pio(this.v, IOREQ_WRITE, 0xcfc + (reg & 3), size, BigInt(value >>> 0) & ((1n << BigInt(size * 8)) - 1n));
  }
}

/** One BAR as hvmloader sizes it. */
export interface SizedBar {
  reg: number;
  io: boolean;
  size: number;
}

/**
 * hvmloader's pci_setup for one function on bus 0 (tools/firmware/hvmloader/pci.c of
 * RELEASE-4.5.0), reduced to what one device needs: vendor/device (absent: all ones, nothing
 * done), each BAR sized (write all ones, read back, restore), the interrupt line set from
 * INTx pin and the PCI-ISA link routing (the "barber's pole": link = (pin - 1 + slot) & 3,
 * links routed in turn to the IRQs of PCI_ISA_IRQ_MASK), bus mastering enabled, then each BAR
 * given the base `place` chooses and its decode enabled. Returns the sized BARs, or null if
 * nothing answers at `devfn`.
 *
 * hvmloader scans all 256 functions and packs BARs by size from pci_mem_start; here the caller
 * places each BAR (`place`), so one device's set-up does not depend on the others'.
 */
export function* hvmloaderPciSetup(
  conf: PciConf,
  devfn: number,
  place: (bar: SizedBar) => number | null,
): Generator<SimEvent<unknown>, SizedBar[] | null, unknown> {
  const vendor = yield* conf.read(0, devfn, PCI_VENDOR_ID, 2);
  const device = yield* conf.read(0, devfn, PCI_DEVICE_ID, 2);
  if (vendor === 0xffff && device === 0xffff) return null;
  const bars: SizedBar[] = [];
  for (let reg = PCI_BASE_ADDRESS_0; reg <= PCI_BASE_ADDRESS_5; reg += 4) {
    const data = yield* conf.read(0, devfn, reg, 4);
    yield* conf.write(0, devfn, reg, 4, 0xffffffff);
    let sz = yield* conf.read(0, devfn, reg, 4);
    yield* conf.write(0, devfn, reg, 4, data);
    const io = (data & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
    sz = (sz & (io ? PCI_BASE_ADDRESS_IO_MASK & 0xffff : PCI_BASE_ADDRESS_MEM_MASK)) >>> 0;
    sz = (sz & -sz) >>> 0; // bar_sz &= ~(bar_sz - 1)
    if (sz !== 0) bars.push({ reg, io, size: sz });
  }
  const pin = yield* conf.read(0, devfn, PCI_INTERRUPT_PIN, 1);
  if (pin !== 0) {
    const link = (pin - 1 + (devfn >> 3)) & 3;
    yield* conf.write(0, devfn, PCI_INTERRUPT_LINE, 1, hvmloaderLinkIrq(link));
  }
  let cmd = yield* conf.read(0, devfn, PCI_COMMAND, 2);
  yield* conf.write(0, devfn, PCI_COMMAND, 2, cmd | PCI_COMMAND_MASTER);
  for (const b of bars) {
    const base = place(b);
    if (base === null) continue; // "no space for resource"
    const data = yield* conf.read(0, devfn, b.reg, 4);
    yield* conf.write(0, devfn, b.reg, 4, (data & (b.io ? ~PCI_BASE_ADDRESS_IO_MASK : ~PCI_BASE_ADDRESS_MEM_MASK)) | base);
    cmd = yield* conf.read(0, devfn, PCI_COMMAND, 2);
    yield* conf.write(0, devfn, PCI_COMMAND, 2, cmd | (b.io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY));
  }
  return bars;
}

/** The ISA IRQ hvmloader routes PCI link `link` (0-3) to: the next IRQ of PCI_ISA_IRQ_MASK, in turn. */
export function hvmloaderLinkIrq(link: number): number {
  let irq = 0;
  for (let l = 0; l <= link; l++) {
    do irq = (irq + 1) & 15;
    while ((PCI_ISA_IRQ_MASK & (1 << irq)) === 0);
  }
  return irq;
}
