import { PAGE_SIZE, SHARED_INFO, VCPU_INFO, VCPU_INFO_SIZE, XEN_LEGACY_MAX_VCPUS } from './abi/index.js';
import { getU64, setU64, testAndClearBit, testAndSetBit, testBit } from './bytes.js';

/**
 * The 2-level event-channel state of a domain as it lies in its shared-info page (x86-64
 * struct shared_info): the `evtchn_pending` and `evtchn_mask` bitmaps and, per vCPU,
 * `vcpu_info.evtchn_upcall_pending`, `evtchn_upcall_mask` and `evtchn_pending_sel`.
 * A view over page bytes, used by Xen on its page and by the guest on the same page mapped
 * into its physical address space (XENMEM_add_to_physmap, XENMAPSPACE_shared_info).
 * vCPUs beyond the legacy 32 keep their vcpu_info in `extra` pages (the model's stand-in for
 * VCPUOP_register_vcpu_info, which puts it in guest memory).
 */
export class SharedInfo {
  constructor(
    readonly page: Uint8Array,
    private readonly extra: readonly Uint8Array[] = [],
  ) {}

  isPending(port: number): boolean {
    return testBit(this.page, SHARED_INFO.evtchn_pending, port);
  }

  /** Sets the pending bit; returns whether it was already set. */
  testAndSetPending(port: number): boolean {
    return testAndSetBit(this.page, SHARED_INFO.evtchn_pending, port);
  }

  clearPending(port: number): void {
    testAndClearBit(this.page, SHARED_INFO.evtchn_pending, port);
  }

  isMasked(port: number): boolean {
    return testBit(this.page, SHARED_INFO.evtchn_mask, port);
  }

  setMask(port: number): void {
    testAndSetBit(this.page, SHARED_INFO.evtchn_mask, port);
  }

  /** Clears the mask bit; returns whether it was set. */
  testAndClearMask(port: number): boolean {
    return testAndClearBit(this.page, SHARED_INFO.evtchn_mask, port);
  }

  /** The 64-bit pending word `i` with masked ports removed: pending[i] & ~mask[i]. */
  activeWord(i: number): bigint {
    const p = getU64(this.page, SHARED_INFO.evtchn_pending + 8 * i);
    const m = getU64(this.page, SHARED_INFO.evtchn_mask + 8 * i);
    return p & ~m;
  }

  // ---- vcpu_info ----

  upcallPending(vcpu: number): boolean {
    const [b, o] = this.vcpuInfo(vcpu);
    return b[o + VCPU_INFO.evtchn_upcall_pending] !== 0;
  }

  setUpcallPending(vcpu: number, v: boolean): void {
    const [b, o] = this.vcpuInfo(vcpu);
    b[o + VCPU_INFO.evtchn_upcall_pending] = v ? 1 : 0;
  }

  /** Sets evtchn_upcall_pending; returns whether it was already set. */
  testAndSetUpcallPending(vcpu: number): boolean {
    const [b, o] = this.vcpuInfo(vcpu);
    const old = b[o + VCPU_INFO.evtchn_upcall_pending] !== 0;
    b[o + VCPU_INFO.evtchn_upcall_pending] = 1;
    return old;
  }

  upcallMask(vcpu: number): boolean {
    const [b, o] = this.vcpuInfo(vcpu);
    return b[o + VCPU_INFO.evtchn_upcall_mask] !== 0;
  }

  setUpcallMask(vcpu: number, v: boolean): void {
    const [b, o] = this.vcpuInfo(vcpu);
    b[o + VCPU_INFO.evtchn_upcall_mask] = v ? 1 : 0;
  }

  /** Sets bit `word` of the vCPU's evtchn_pending_sel; returns whether it was set. */
  testAndSetPendingSel(vcpu: number, word: number): boolean {
    const [b, o] = this.vcpuInfo(vcpu);
    return testAndSetBit(b, o + VCPU_INFO.evtchn_pending_sel, word);
  }

  /** xchg(&vcpu_info->evtchn_pending_sel, 0). */
  takePendingSel(vcpu: number): bigint {
    const [b, o] = this.vcpuInfo(vcpu);
    const sel = getU64(b, o + VCPU_INFO.evtchn_pending_sel);
    setU64(b, o + VCPU_INFO.evtchn_pending_sel, 0n);
    return sel;
  }

  private vcpuInfo(vcpu: number): [Uint8Array, number] {
    if (vcpu < XEN_LEGACY_MAX_VCPUS) return [this.page, SHARED_INFO.vcpu_info + vcpu * VCPU_INFO_SIZE];
    const k = vcpu - XEN_LEGACY_MAX_VCPUS;
    const per = PAGE_SIZE / VCPU_INFO_SIZE;
    const page = this.extra[Math.floor(k / per)];
    if (page === undefined) throw new Error(`vcpu_info of vCPU ${vcpu} does not exist (model bug)`);
    return [page, (k % per) * VCPU_INFO_SIZE];
  }
}
