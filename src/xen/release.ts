import { ProfileError, type Profile } from '../profile/index.js';

/**
 * The Xen release the model behaves as, turned into one named rule per behaviour that changed
 * between releases. Each rule cites the xen.git commit that changed it (the first release
 * tag containing it is the release from which it holds). Mechanism code asks these rules,
 * never the version number.
 */
export interface XenRelease {
  /** As written in the profile, e.g. "4.5.0". */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  /**
   * credit1 has a scheduling rate limit (sched_ratelimit_us). Added in Xen 4.2
   * (64908a0466 "sched_credit: Use delay to control scheduling frequency"); Xen 3.2 has none.
   */
  readonly hasRatelimit: boolean;
  /**
   * A rate-limited vCPU is kept for the remainder `ratelimit − runtime`, floored at
   * CSCHED_MIN_TIMER, rather than for a full `ratelimit` from the decision.
   * 4.8+: 0053127890 "credit1: return the 'time remaining to the limit' as next timeslice".
   */
  readonly ratelimitRemainder: boolean;
  /**
   * csched_acct clears PARKED before vcpu_unpause, so the unparked vCPU's wake BOOSTs it.
   * ≤ 4.12; 4.13 (5c8c0ae7c4 "sched/credit: avoid priority boost for capped domains when
   * unpark") unpauses first.
   */
  readonly boostOnUnpark: boolean;
  /**
   * A vCPU woken on its new pCPU by vcpu_migrate is not BOOSTed (CSCHED_FLAG_VCPU_MIGRATING).
   * 4.7+: 66c7449a4d "credit1: avoid boosting vCPUs being "just" migrated".
   */
  readonly migratingSkipsBoost: boolean;
  /**
   * __runq_tickle kicks the running vCPU away (to an idler) only if its hard affinity
   * contains an idler. 4.7+: f02a5760c7 "credit1: on vCPU wakeup, kick away current only if
   * makes sense"; before, unconditionally.
   */
  readonly tickleChecksAffinity: boolean;
  /**
   * Tickled pCPUs leave prv->idlers at tickle time, not when they next schedule.
   * 4.9+: 47d5292995 "xen: credit: consider tickled pCPUs as busy".
   */
  readonly idlersClearedAtTickle: boolean;
  /**
   * GNTTABOP_copy keeps the source and destination claimed across consecutive ops on the
   * same page (gnttab_copy_buf_valid), so acquire/map is paid once per run.
   * 4.6+: d28f42f270 "grant-table: defer releasing pages acquired in a grant copy".
   */
  readonly batchedGnttabCopy: boolean;
  /**
   * ept_sync_domain's IPI handler does nothing: each pCPU invalidates the EPT (INVEPT) on its
   * next VM entry of the domain, so the initiator waits only for the IPIs to be taken. Before,
   * __ept_sync_domain runs INVEPT inside the handler the initiator waits for.
   * 4.7+: 8eb2235599 "x86/ept: invalidate guest physical mappings on VMENTER".
   */
  readonly eptInvalidateOnVmentry: boolean;
  /**
   * GNTTABOP_unmap_grant_ref compares the whole dev_bus_addr (any non-zero value) with the
   * grant's address; before, only its frame (dev_bus_addr >> PAGE_SHIFT, 0 = not given).
   * A mismatch is GNTST_general_error in both.
   * 4.10+: 8fdfcb2b6b "gnttab: fix handling of dev_bus_addr during unmap" (XSA-224).
   */
  readonly unmapChecksFullBusAddr: boolean;
  /**
   * The unmap checks dev_bus_addr only for a device mapping and says GNTST_bad_dev_addr; a full
   * maptrack is GNTST_no_space rather than GNTST_no_device_space. Both are 4.16+ (c5bf1295b0
   * "gnttab: adjust unmap checking of dev_bus_addr", 5c10b96795 "gnttab: maptrack handle
   * shortage is not IOMMU related"), so no release the model knows has them.
   */
  readonly modernGnttabStatuses: boolean;
  /**
   * guest_physmap_add_entry crashes an HVM domain when asked to put a page over a gfn that
   * holds a grant mapping ("Really shouldn't be unmapping grant maps this way"): a second
   * grant map there, or XENMEM_add_to_physmap. 4.0+: b37d30c8fc "Mapping grant references
   * into HVM guests, take 2" (before, an HVM guest had no grant entries in its p2m).
   */
  readonly physmapOverGrantCrashes: boolean;
  /**
   * csched_load_balance scans the busy pCPUs from the one after where it last stole
   * (prv->balance_bias), not from the lowest-numbered one (cpumask_first).
   * 4.9+: 89216c7999 "xen: credit1: treat pCPUs more evenly during balancing".
   */
  readonly balanceBias: boolean;
  /**
   * SCHEDOP_yield sets CSCHED_FLAG_VCPU_YIELD: the yielding vCPU is queued behind one vCPU of
   * lower priority, if there is one. 4.1+: 5fc9f5ef6c "scheduler: Implement yield for credit1";
   * Xen 3.2's yield only re-queues it by priority.
   */
  readonly yieldFlag: boolean;
  /**
   * A yielding vCPU is not kept by the rate limit. 4.8+: 9fdd2f3c9c "xen: credit1: don't rate
   * limit context switches in case of yields".
   */
  readonly yieldSkipsRatelimit: boolean;
  /**
   * The FIFO event-channel ABI (EVTCHNOP_init_control, expand_array, set_priority) exists.
   * 4.4+: 88910061ec "evtchn: add FIFO-based event channel hypercalls and port ops"; before,
   * the calls are -ENOSYS and every guest uses the 2-level ABI.
   */
  readonly fifoEventChannels: boolean;
}

/** Releases whose rules the model knows: 3.2 and 4.2 to 4.13 (credit1's life as default). */
function supported(major: number, minor: number): boolean {
  return (major === 3 && minor === 2) || (major === 4 && minor >= 2 && minor <= 13);
}

/** The rules of the release `version` names; an unknown or unsupported one is a profile error. */
export function xenRelease(version: string, origin = 'profile'): XenRelease {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(version);
  if (m === null) throw new ProfileError(origin, [`field "xen.version": "${version}" is not a Xen release number (expected e.g. "4.5.0")`]);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (!supported(major, minor)) {
    throw new ProfileError(origin, [`field "xen.version": Xen ${version} is not a release the model knows (supported: 3.2, 4.2 … 4.13)`]);
  }
  const since = (mi: number): boolean => major > 4 || (major === 4 && minor >= mi);
  return {
    version,
    major,
    minor,
    hasRatelimit: since(2),
    ratelimitRemainder: since(8),
    boostOnUnpark: !since(13),
    migratingSkipsBoost: since(7),
    tickleChecksAffinity: since(7),
    idlersClearedAtTickle: since(9),
    batchedGnttabCopy: since(6),
    eptInvalidateOnVmentry: since(7),
    unmapChecksFullBusAddr: since(10),
    modernGnttabStatuses: since(16),
    physmapOverGrantCrashes: since(0),
    balanceBias: since(9),
    yieldFlag: since(1),
    yieldSkipsRatelimit: since(8),
    fifoEventChannels: since(4),
  };
}

/** The rules of the release a profile names. */
export function releaseOf(profile: Profile): XenRelease {
  return xenRelease(profile.xenVersion, profile.origin);
}
