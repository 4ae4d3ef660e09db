import type { ProcessGenerator } from '../../sim/index.js';
import { mac } from '../../net/index.js';
import { hvmloaderPciSetup, PciConf, pciDevfn } from '../../xen/guest/index.js';
import type { AttachedNic, BridgePortHandle, IoPath, NicSpec, PathHost, PathKernel } from '../path.js';
import { emulatedCosts } from './costs.js';
import { DEFAULT_ITR, MAX_ITR, MIN_ITR, validInterruptThrottleRate } from './e1000-itr.js';
import { E1000Driver } from './e1000-driver.js';
import { E1000_IO_SIZE } from './e1000-pci.js';
import { E1000_MMIO_SIZE } from './e1000-regs.js';
import { QemuDm, type E1000Placement } from './qemu-dm.js';
import { TapDevice } from './tap.js';

/** hvmloader's PCI_MEM_START: BARs are placed from here in the MMIO hole; each e1000 takes 128 KiB. */
export const PCI_MEM_START = 0xf0000000;
/** hvmloader's I/O BAR window starts at 0xc000; the Xen platform device's 256 ports come first, then 64 per e1000. */
export const PCI_IO_START = 0xc000;
const PLATFORM_IO_SIZE = 0x100;
/** qemu-xen's first free slot after the host bridge (0), PIIX3 (1), VGA (2) and the Xen platform device (3). */
export const FIRST_NIC_SLOT = 4;
/** The first vector Linux's vector allocator hands a device (FIRST_EXTERNAL_VECTOR 0x20 + the legacy 16, rounded up). */
export const FIRST_DEVICE_VECTOR = 0x41;

/** Options of an `emulated` NIC (NicSpec.options). */
export interface EmulatedOptions {
  /**
   * e1000's InterruptThrottleRate module parameter as Linux 3.18 takes it: 0 turns ITR off, 1
   * (or 'dynamic') is dynamic mode, 3 (or 'dynamic-conservative', the default) dynamic
   * conservative mode, 100 to 100000 a fixed rate in interrupts/s. Held as the number.
   */
  itr?: number;
}

const ITR_NAMES: Readonly<Record<string, number>> = { off: 0, dynamic: 1, 'dynamic-conservative': 3 };

export function parseEmulatedOptions(o: Readonly<Record<string, unknown>>, where: string): EmulatedOptions {
  const errs: string[] = [];
  const out: EmulatedOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'itr') {
      const n = typeof v === 'string' ? ITR_NAMES[v] : v;
      if (typeof n !== 'number' || !validInterruptThrottleRate(n))
        errs.push(
          `itr: expected InterruptThrottleRate: 0 (off), 1 or 'dynamic', 3 or 'dynamic-conservative' (the default), or a fixed rate of ${MIN_ITR} to ${MAX_ITR} interrupts/s (4, simplified mode, is not modelled), got ${JSON.stringify(v)}`,
        );
      else out.itr = n;
    } else errs.push(`${k}: not an option of the emulated path (itr)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid emulated options:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out;
}

/** One attached emulated NIC: the guest's driver, its qemu-dm and tap. */
export class EmulatedNic implements AttachedNic {
  constructor(
    readonly driver: E1000Driver,
    readonly qemu: QemuDm,
    readonly tap: TapDevice,
    private readonly port: BridgePortHandle,
  ) {}

  get device(): E1000Driver {
    return this.driver;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.driver.stats) as [string, number][]) out[`driver.${k}`] = v;
    for (const [k, v] of Object.entries(this.qemu.stats) as [string, number][]) out[`qemu.${k}`] = v;
    for (const [k, v] of Object.entries(this.qemu.device.stats) as [string, number][]) out[`device.${k}`] = v;
    for (const [k, v] of Object.entries(this.tap.stats) as [string, number][]) out[`tap.${k}`] = v;
    return out;
  }

  /** Hot-unplug: the driver closes, qemu drops the device and its tap leaves the bridge. */
  *detach(): ProcessGenerator<void> {
    yield* this.driver.close();
    yield* this.qemu.stop();
    this.port.remove();
  }
}

/**
 * The emulated NIC (DESIGN.md path 1): Linux 3.18's e1000 driver in an HVM guest, each of its
 * register accesses an MMIO exit that Xen forwards as an ioreq to the guest's qemu-dm in
 * Dom0, which emulates the 82540EM as QEMU's hw/net/e1000.c does, reaches guest memory
 * through its map cache, moves frames to and from tap<domid>.<devid> on the bridge and raises
 * the guest's interrupt through XEN_DMOP_set_pci_intx_level and the virtual IOAPIC.
 *
 * Placement: the device is in slot 4 + devid, INTA. An hvmloader step on the guest's vCPU 0
 * (hvmloaderPciSetup, through CONFIG_ADDRESS/CONFIG_DATA like everything below) sizes its
 * BARs and places BAR 0 at PCI_MEM_START + 128 KiB per NIC and BAR 1 at 0xc100 + 64 per NIC
 * (hvmloader would pack every device's BARs by size; a fixed place per NIC keeps one NIC's
 * layout independent of the others), writes the interrupt line, enables decode and bus
 * mastering. The driver's probe then finds all of it in config space. qemu-dm runs on Dom0
 * vCPU (domid mod Dom0's vCPUs).
 */
export class EmulatedPath implements IoPath {
  readonly name = 'emulated';
  readonly description =
    'Emulated e1000 (Linux 3.18 driver, QEMU hw/net/e1000.c in qemu-dm on Dom0): every register access an MMIO exit and an ioreq; frames through a tap on the bridge';

  *attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): ProcessGenerator<AttachedNic> {
    const where = `${guest.domain.name}: vif ${devid}`;
    const opts = parseEmulatedOptions(nic.options, where);
    if (!guest.domain.isHvm) throw new Error(`${where}: the emulated path needs an HVM guest (a PV guest has no device model; use path pv)`);
    if (devid < 0 || devid > 15) throw new Error(`${where}: devid ${devid} out of 0-15 for an emulated NIC`);
    const costs = emulatedCosts(host.profile);
    const domid = guest.domain.domid;
    const tap = new TapDevice(host.env, `tap${domid}.${devid}`, host.dom0.memory);
    const port = host.dom0.addBridgePort(nic.bridge, tap);
    const d0 = host.dom0.domain.vcpus;
    const qv = d0[domid % d0.length]!;
    const place: E1000Placement = {
      bar: PCI_MEM_START + devid * E1000_MMIO_SIZE,
      ioBar: PCI_IO_START + PLATFORM_IO_SIZE + devid * E1000_IO_SIZE,
      pciDevice: FIRST_NIC_SLOT + devid,
    };
    const macBytes = Uint8Array.from(nic.mac.split(':').map((x) => parseInt(x, 16)));
    const qemu = new QemuDm(host.hv, host.dom0.kernel, qv, domid, guest.domain.vcpus.length, macBytes, place, tap, costs);
    const rc = yield* qemu.start();
    if (rc < 0) {
      port.remove();
      throw new Error(`${where}: qemu-dm could not create its ioreq server (${rc})`);
    }
    // hvmloader's pass over the device (firmware, before the OS): BARs sized and placed, line, decode, bus mastering.
    const gv = guest.domain.vcpus[0]!;
    const bars = yield* hvmloaderPciSetup(new PciConf(guest.kernel.xen, gv), pciDevfn(place.pciDevice, 0), (b) => (b.io ? place.ioBar : place.bar));
    if (bars === null) throw new Error(`${where}: hvmloader found no device at slot ${place.pciDevice} (model bug)`);
    const drv = new E1000Driver(
      host.env,
      `eth${devid}`,
      mac(nic.mac),
      guest.kernel,
      guest.domain.vcpus[0]!,
      guest.memory,
      { slot: place.pciDevice, vector: FIRST_DEVICE_VECTOR + devid },
      costs,
      opts.itr ?? DEFAULT_ITR,
    );
    const ok = yield* drv.open();
    if (!ok) throw new Error(`${where}: e1000 probe failed (${drv.probeError ?? 'unknown'})`);
    return new EmulatedNic(drv, qemu, tap, port);
  }
}
