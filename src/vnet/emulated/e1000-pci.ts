import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_1,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../../xen/guest/index.js';
import { E1000_MMIO_SIZE } from './e1000-regs.js';

/** PCI_VENDOR_ID_INTEL and E1000_DEVID (the 82540EM QEMU's "e1000" model is). */
export const PCI_VENDOR_ID_INTEL = 0x8086;
export const E1000_DEV_ID_82540EM = 0x100e;
/** PCI_CLASS_NETWORK_ETHERNET with prog-if 0, and the revision QEMU's e1000_class_init gives. */
export const PCI_CLASS_NETWORK_ETHERNET = 0x0200;
export const E1000_REVISION = 0x03;
/** The subsystem ids QEMU gives emulated hardware (docs/specs/pci-ids: 1af4:1100, "Qemu virtual machine"). */
export const PCI_SUBVENDOR_ID_REDHAT_QUMRANET = 0x1af4;
export const PCI_SUBDEVICE_ID_QEMU = 0x1100;
/** e1000's I/O BAR (IOPORT_SIZE): IOADDR/IODATA, which QEMU's e1000_io_read/write leave unimplemented. */
export const E1000_IO_SIZE = 0x40;
/** PCI_CONFIG_SPACE_SIZE: a conventional function's config space. */
export const PCI_CONFIG_SPACE_SIZE = 0x100;

/** Where the function decodes now: a BAR's base, or null when unmapped (pci_bar_address's PCI_BAR_UNMAPPED). */
export interface E1000Decode {
  mem: number | null;
  io: number | null;
}

/**
 * The config space of QEMU's e1000 (hw/net/e1000.c pci_e1000_realize and e1000_class_init
 * over hw/pci/pci.c's generic header): 8086:100e rev 3, class 020000, subsystem 1af4:1100,
 * cache line 0x10, BAR0 a 32-bit non-prefetchable memory BAR of 128 KiB, BAR1 an I/O BAR of
 * 64 ports, INTA, no capability list — QEMU's 82540EM has no MSI (e1000e's 82574 does), so
 * its interrupt is INTx only — and no expansion ROM (the option ROM is left out: romfile "").
 *
 * Writes go through QEMU's per-byte write mask (pci_default_write_config): COMMAND's I/O,
 * memory, bus master, SERR and INTx-disable bits, cache line, latency timer, interrupt line,
 * and the BARs' address bits (~(size - 1)), so writing all ones reads back the size mask.
 * Everything else is read-only. Where the BARs decode follows pci_bar_address: only with
 * the COMMAND bit on, and never a BAR that would end at or beyond 4 GiB (a BAR holding
 * all ones while it is sized).
 */
export class E1000PciConfig {
  readonly bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly wmask = new Uint8Array(PCI_CONFIG_SPACE_SIZE);

  constructor() {
    const b = this.bytes;
    this.set(PCI_VENDOR_ID, 2, PCI_VENDOR_ID_INTEL);
    this.set(PCI_DEVICE_ID, 2, E1000_DEV_ID_82540EM);
    this.set(PCI_CLASS_REVISION, 4, (PCI_CLASS_NETWORK_ETHERNET << 16) | E1000_REVISION);
    b[PCI_CACHE_LINE_SIZE] = 0x10;
    this.set(PCI_BASE_ADDRESS_1, 4, PCI_BASE_ADDRESS_SPACE_IO);
    this.set(PCI_SUBSYSTEM_VENDOR_ID, 2, PCI_SUBVENDOR_ID_REDHAT_QUMRANET);
    this.set(PCI_SUBSYSTEM_ID, 2, PCI_SUBDEVICE_ID_QEMU);
    b[PCI_INTERRUPT_PIN] = 1;
    const w = (off: number, len: number, mask: number): void => {
      for (let i = 0; i < len; i++) this.wmask[off + i] = (mask >>> (8 * i)) & 0xff;
    };
    w(PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
    w(PCI_CACHE_LINE_SIZE, 1, 0xff);
    w(PCI_LATENCY_TIMER, 1, 0xff);
    w(PCI_BASE_ADDRESS_0, 4, ~(E1000_MMIO_SIZE - 1));
    w(PCI_BASE_ADDRESS_1, 4, ~(E1000_IO_SIZE - 1));
    w(PCI_INTERRUPT_LINE, 1, 0xff);
  }

  private set(off: number, len: number, v: number): void {
    for (let i = 0; i < len; i++) this.bytes[off + i] = (v >>> (8 * i)) & 0xff;
  }

  private get(off: number, len: number): number {
    let v = 0;
    for (let i = len - 1; i >= 0; i--) v = v * 256 + this.bytes[off + i]!;
    return v;
  }

  /** pci_default_read_config; beyond the 256-byte space (an extended register) all ones. */
  read(reg: number, size: number): number {
    if (reg < 0 || reg + size > PCI_CONFIG_SPACE_SIZE) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.get(reg, size);
  }

  /** pci_default_write_config: byte by byte through the write mask; beyond the space, dropped. */
  write(reg: number, size: number, value: number): void {
    if (reg < 0 || reg + size > PCI_CONFIG_SPACE_SIZE) return;
    for (let i = 0; i < size; i++) {
      const m = this.wmask[reg + i]!;
      const byte = (value >>> (8 * i)) & 0xff;
      this.bytes[reg + i] = (this.bytes[reg + i]! & ~m) | (byte & m);
    }
  }

  get command(): number {
    return this.get(PCI_COMMAND, 2);
  }

  get busMaster(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  get intxDisabled(): boolean {
    return (this.command & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  get interruptLine(): number {
    return this.bytes[PCI_INTERRUPT_LINE]!;
  }

  /** pci_bar_address for both BARs. */
  decode(): E1000Decode {
    const cmd = this.command;
    const bar = (reg: number, size: number, on: boolean, io: boolean): number | null => {
      if (!on) return null;
      const base = (this.get(reg, 4) & ~(size - 1)) >>> 0;
      const last = base + size - 1;
      if (last <= base || last >= 0xffffffff || (io && (base === 0 || last > 0xffff))) return null;
      return base;
    };
    return {
      mem: bar(PCI_BASE_ADDRESS_0, E1000_MMIO_SIZE, (cmd & PCI_COMMAND_MEMORY) !== 0, false),
      io: bar(PCI_BASE_ADDRESS_1, E1000_IO_SIZE, (cmd & PCI_COMMAND_IO) !== 0, true),
    };
  }
}
