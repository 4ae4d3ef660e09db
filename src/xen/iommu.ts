import type { Profile } from '../profile/index.js';
import { PAGE_SIZE } from './abi/index.js';
import type { Domain } from './domain.js';

/** What the IOMMU costs a DMA, read once from the profile (`iommu.*`). */
export interface IommuCosts {
  /** A translation found in the IOTLB, ns. */
  lookup: number;
  /** A translation not in the IOTLB: the page walk through the domain's IOMMU page tables, ns. */
  iotlbMiss: number;
  /** IOTLB entries (page translations it holds, least recently used evicted). */
  iotlbEntries: number;
}

export function iommuCosts(p: Profile): IommuCosts {
  return { lookup: p.ns('iommu.lookup'), iotlbMiss: p.ns('iommu.iotlbMiss'), iotlbEntries: p.count('iommu.iotlbEntries') };
}

/** A DMA the IOMMU translated: the pieces of guest RAM it covers, in order, and what the translation cost. */
export interface IommuMapping {
  readonly pieces: Uint8Array[];
  readonly ns: number;
}

/** A DMA the IOMMU blocked (a VT-d DMA-remapping fault): the device, the address and why. */
export interface IommuFault {
  readonly fault: true;
  readonly bdf: string;
  readonly domid: number | null;
  readonly gpa: number;
  readonly write: boolean;
  readonly reason: 'unassigned' | 'not-mapped';
  readonly ns: number;
}

export interface IommuStats {
  translations: number;
  iotlbMisses: number;
  faults: number;
}

/**
 * The host's IOMMU (Intel VT-d DMA remapping) as Xen programs it for passed-through devices:
 * each assigned device (by BDF) gets the context of the domain it is assigned to, whose page
 * tables map that domain's guest-physical RAM and nothing else (Xen builds them from the p2m:
 * iommu_hwdom_init / the p2m's iommu_map_page). A DMA address is a guest-physical address of
 * the owning domain; a page that is not the domain's RAM (outside its memory, in the MMIO
 * hole, a page it does not have) faults, the DMA is not performed, and the fault is counted
 * (Xen's iommu_page_fault logs it). Nothing of another domain is ever reachable.
 *
 * Simplification, stated: pages a domain has mapped from others (grant maps, foreign maps)
 * are not in its IOMMU context here, so a device can reach only the domain's own RAM. The
 * IOTLB is one LRU set of `iotlbEntries` page translations shared by all devices.
 */
export class Iommu {
  readonly stats: IommuStats = { translations: 0, iotlbMisses: 0, faults: 0 };
  /** Faults by domid of the device's owner. */
  readonly faultsByDomain = new Map<number, number>();
  readonly faultLog: IommuFault[] = [];
  private readonly contexts = new Map<string, Domain>();
  /** domid:gfn → true, in LRU order (Map iteration order is insertion order). */
  private readonly iotlb = new Map<string, true>();

  constructor(private readonly costs: IommuCosts) {}

  /** XEN_DOMCTL_assign_device: DMA from `bdf` is translated in `d`'s context from now on. */
  assign(bdf: string, d: Domain): void {
    const o = this.contexts.get(bdf);
    if (o !== undefined && o !== d) throw new Error(`IOMMU: device ${bdf} is already assigned to domain ${o.domid} (model bug: deassign first)`);
    this.contexts.set(bdf, d);
  }

  /** XEN_DOMCTL_deassign_device: the device's DMA faults until assigned again; its IOTLB entries are flushed. */
  deassign(bdf: string): void {
    const d = this.contexts.get(bdf);
    this.contexts.delete(bdf);
    if (d !== undefined) for (const k of [...this.iotlb.keys()]) if (k.startsWith(`${d.domid}:`)) this.iotlb.delete(k);
  }

  owner(bdf: string): Domain | undefined {
    return this.contexts.get(bdf);
  }

  /**
   * Translates a DMA of `len` bytes at guest-physical `gpa` from `bdf`: the RAM pieces it
   * covers, or a fault if any page of it is not the owner's RAM (then no byte is touched).
   */
  translate(bdf: string, gpa: number, len: number, write: boolean): IommuMapping | IommuFault {
    const d = this.contexts.get(bdf);
    let ns = 0;
    const fault = (reason: IommuFault['reason'], domid: number | null): IommuFault => {
      this.stats.faults++;
      if (domid !== null) this.faultsByDomain.set(domid, (this.faultsByDomain.get(domid) ?? 0) + 1);
      const f: IommuFault = { fault: true, bdf, domid, gpa, write, reason, ns };
      if (this.faultLog.length < 64) this.faultLog.push(f);
      return f;
    };
    if (d === undefined || d.dying) return fault('unassigned', d?.domid ?? null);
    if (!Number.isSafeInteger(gpa) || gpa < 0 || !Number.isSafeInteger(len) || len < 0) return fault('not-mapped', d.domid);
    const pieces: Uint8Array[] = [];
    let at = gpa;
    let left = len;
    while (left > 0) {
      const gfn = Math.floor(at / PAGE_SIZE);
      const off = at % PAGE_SIZE;
      const n = Math.min(left, PAGE_SIZE - off);
      this.stats.translations++;
      const key = `${d.domid}:${gfn}`;
      if (this.iotlb.delete(key)) ns += this.costs.lookup;
      else {
        this.stats.iotlbMisses++;
        ns += this.costs.lookup + this.costs.iotlbMiss;
      }
      const page = d.memory.isRamGfn(gfn) ? d.memory.ramPage(gfn) : null;
      if (page === null) {
        this.iotlb.delete(key);
        return fault('not-mapped', d.domid);
      }
      this.iotlb.set(key, true);
      if (this.iotlb.size > this.costs.iotlbEntries) this.iotlb.delete(this.iotlb.keys().next().value!);
      pieces.push(page.subarray(off, off + n));
      at += n;
      left -= n;
    }
    return { pieces, ns };
  }
}

export function isIommuFault(x: IommuMapping | IommuFault): x is IommuFault {
  return (x as IommuFault).fault === true;
}
