import type { ProcessGenerator } from '../../sim/index.js';
import { mac } from '../../net/index.js';
import type { Hypervisor } from '../../xen/index.js';
import type { AttachedNic, IoPath, NicSpec, PathHost, PathKernel } from '../path.js';
import { sriovCosts } from './costs.js';
import { IxgbevfDriver } from './ixgbevf.js';
import { SriovNic, type Vf } from './nic.js';

/** The PF's PCI address on every host (the 82599 in the first slot of bus 1); VFs follow at 01:10.0, 01:10.1… */
export const PF_BDF = '01:00.0';
/** The 82599 exposes at most 63 VFs per port (datasheet 1.1: 64 pools, one kept by the PF). */
export const MAX_VFS = 63;
/** The guest vector Linux gives the VF's queue MSI-X entry (the first device vector, as for the emulated NIC). */
export const VF_VECTOR = 0x41;

/** Options of an `sriov` NIC (NicSpec.options). */
export interface SriovOptions {
  /** The VF to pass through, by BDF (xl `pci = ['01:10.0,…']`); default the next unassigned one. */
  vf?: string;
  /** A fixed interrupt interval, µs (ethtool -C rx-usecs); default ixgbevf's adaptive ITR. */
  itrUs?: number;
}

export function parseSriovOptions(o: Readonly<Record<string, unknown>>, where: string): SriovOptions {
  const errs: string[] = [];
  const out: SriovOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'vf') {
      if (typeof v !== 'string' || !/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(v))
        errs.push(`vf: expected a PCI address [DDDD:]BB:DD.F, got ${JSON.stringify(v)}`);
      else out.vf = v.toLowerCase().replace(/^0000:/, '');
    } else if (k === 'itrUs') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000)
        errs.push(`itrUs: expected an interrupt interval of 1 to 1000 µs, got ${JSON.stringify(v)}`);
      else out.itrUs = v;
    } else errs.push(`${k}: not an option of the sriov path (vf, itrUs)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid sriov options:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out;
}

/** One attached VF: the guest's driver and the VF it drives. */
export class SriovVfNic implements AttachedNic {
  constructor(
    readonly driver: IxgbevfDriver,
    readonly nic: SriovNic,
    readonly vf: Vf,
  ) {}

  get device(): IxgbevfDriver {
    return this.driver;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.driver.stats) as [string, number][]) out[`driver.${k}`] = v;
    for (const [k, v] of Object.entries(this.vf.stats) as [string, number][]) out[`vf.${k}`] = v;
    return out;
  }

  /** Hot-unplug (xl pci-detach): the driver closes, the VF goes back to the PF. */
  *detach(): ProcessGenerator<void> {
    yield* this.driver.close();
    this.nic.releaseVf(this.vf);
  }
}

const nics = new WeakMap<Hypervisor, SriovNic>();

/** The host's SR-IOV NIC, if any guest of it has a VF (for the host builder: the PF filter, the wire port). */
export function sriovNicOf(hv: Hypervisor): SriovNic | undefined {
  return nics.get(hv);
}

/**
 * The host's SR-IOV NIC, created with the first `sriov` NIC: its PF (ixgbe in Dom0) is a port of
 * that NIC's bridge, with an address in Intel's OUI from the host's seeded stream.
 */
export function hostSriovNic(host: PathHost, bridge: string): SriovNic {
  let nic = nics.get(host.hv);
  if (nic === undefined) {
    const r = host.hv.rng('mac/sriov-pf');
    const pfMac = 0x00_1b_21_00_00_00 + r.int(0x1000000);
    nic = new SriovNic(host.env, host.hv, 'sriov0', PF_BDF, pfMac, sriovCosts(host.profile), host.hv.rng('phys/sriov0'));
    nic.pf.setBridge(host.dom0.addBridgePort(bridge, nic.pf), bridge);
    nics.set(host.hv, nic);
  }
  return nic;
}

/**
 * The SR-IOV path (DESIGN.md path 3): each guest gets a virtual function of the host's
 * 82599-class NIC passed through (xl `pci=`), driven by Linux 3.18's ixgbevf in the guest.
 * Rings and buffers are in the guest's memory, the BAR is mapped (no exits for the doorbell),
 * the NIC DMAs through the IOMMU over its PCIe link and switches VF to VF in its VEB; its
 * MSI-X interrupts are physical interrupts Xen takes and injects, each with an EOI exit. No
 * Dom0 in the data path between VFs; a pv or emulated guest of the same host is reached
 * through the PF on Dom0's bridge, another host through the NIC's wire port.
 *
 * Set-up as the toolstack does it: Dom0's PF driver enables one more VF for each NIC (ixgbe
 * max_vfs), sets its MAC (ip link set … vf N mac), assigns it to the guest (pciback,
 * XEN_DOMCTL_assign_device: the IOMMU context) and binds its MSI-X entry to the guest vector
 * (the guest's MSI-X table write, trapped by the device model, then bind_pt_irq); none of
 * it timed except the driver's open.
 */
export class SriovPath implements IoPath {
  readonly name = 'sriov';
  readonly description =
    "SR-IOV VF passed through (Linux 3.18 ixgbevf in the guest, an 82599-class NIC): DMA over PCIe through the IOMMU, the NIC's embedded switch between VFs, MSI-X taken by Xen and injected (EOI exit); no Dom0 in the data path";

  *attach(host: PathHost, guest: PathKernel, spec: NicSpec, devid: number): ProcessGenerator<AttachedNic> {
    const where = `${guest.domain.name}: nic ${devid}`;
    const opts = parseSriovOptions(spec.options, where);
    if (!guest.domain.isHvm)
      throw new Error(
        `${where}: the sriov path needs an HVM guest (a VF is passed through with the IOMMU and MSI-X remapping; use path pv for a PV guest)`,
      );
    if (devid > 0) throw new Error(`${where}: the sriov path gives a guest one VF (its first NIC); devid ${devid}`);
    const nic = hostSriovNic(host, spec.bridge);
    let vf: Vf | undefined;
    if (opts.vf !== undefined) {
      while (nic.vfByBdf(opts.vf) === undefined && nic.vfs.length < MAX_VFS) nic.enableVfs(1);
      vf = nic.vfByBdf(opts.vf);
      if (vf === undefined)
        throw new Error(
          `${where}: VF ${opts.vf} is not a VF of ${nic.name} (its VFs are ${PF_BDF.slice(0, 3)}10.0 … on bus ${PF_BDF.slice(0, 2)}, at most ${MAX_VFS})`,
        );
      if (vf.owner !== null) throw new Error(`${where}: VF ${opts.vf} is already assigned to ${vf.owner.name}`);
    } else {
      vf = nic.vfs.find((v) => v.owner === null);
      if (vf === undefined) {
        if (nic.vfs.length >= MAX_VFS) throw new Error(`${where}: no VF left on ${nic.name} (all ${MAX_VFS} are assigned)`);
        nic.enableVfs(1);
        vf = nic.vfs[nic.vfs.length - 1]!;
      }
    }
    nic.setVfMac(vf, mac(spec.mac));
    nic.assignVf(vf, guest.domain, VF_VECTOR);
    const costs = nic.costs;
    // The PF driver answers the VF's reset and set-MAC mailbox messages on Dom0's CPU (set-up only).
    yield host.dom0.domain.vcpus[0]!.exec(costs.mailbox * 2, 'kernel');
    const drv = new IxgbevfDriver(
      host.env,
      `eth${devid}`,
      guest.kernel,
      guest.domain.vcpus[0]!,
      guest.memory,
      nic,
      vf,
      VF_VECTOR,
      costs,
      opts.itrUs ?? null,
    );
    const ok = yield* drv.open();
    if (!ok) {
      nic.releaseVf(vf);
      throw new Error(`${where}: ixgbevf: the PF gave VF ${vf.bdf} no MAC address`);
    }
    return new SriovVfNic(drv, nic, vf);
  }
}
