/** Why an HVM vCPU left guest mode (the exits the model takes). */
export type ExitReason = 'vmcall' | 'io' | 'ept' | 'extint' | 'intwin' | 'eoi' | 'hlt';
export const EXIT_REASONS: readonly ExitReason[] = ['vmcall', 'io', 'ept', 'extint', 'intwin', 'eoi', 'hlt'];

/**
 * Per-domain event counts, as xentrace/xenalyze would total them: VM exits by reason (HVM),
 * traps into Xen (PV), hypercalls by name (`grant_table_op.copy`), and what the hypervisor
 * did for the domain.
 */
export class DomainCounters {
  readonly exits: Record<ExitReason, number> = { vmcall: 0, io: 0, ept: 0, extint: 0, intwin: 0, eoi: 0, hlt: 0 };
  /** PV traps into Xen (hypercalls, interrupts taken in guest mode). */
  pvTraps = 0;
  readonly hypercalls = new Map<string, number>();
  /** Event-channel notifications sent (EVTCHNOP_send that reached a peer), and dropped on unbound ports. */
  notifySent = 0;
  notifyDropped = 0;
  /** Upcalls entered in this domain (callback vector or PV callback), and LAPIC vectors injected. */
  upcalls = 0;
  vectorsInjected = 0;
  /** Grant operations this domain issued that succeeded, and the bytes its copies moved. */
  grantCopies = 0;
  grantCopyBytes = 0;
  /** CPU time Xen spent on this domain's GNTTABOP_copy ops (on its vCPUs, on its behalf), ns: per-sender accounting. */
  grantCopyNs = 0;
  grantMaps = 0;
  grantUnmaps = 0;
  /** Grant operations this domain issued that failed (any GNTST_* other than okay). */
  grantFailures = 0;
  /** IPIs this domain's p2m removals sent to other pCPUs holding its vCPUs (ept_sync_domain). */
  eptSyncIpis = 0;
  /** Emulated accesses forwarded to an ioreq server, and those no server claimed. */
  ioreqs = 0;
  ioUnclaimed = 0;
  /** Of `ioreqs`: PCI config-space accesses (IOREQ_TYPE_PCI_CONFIG). */
  ioreqsPciConfig = 0;
  /** Writes put on a buffered ioreq ring (not in `ioreqs`), and those a full ring sent the synchronous way. */
  ioreqsBuffered = 0;
  ioreqsBufferFull = 0;
  /** Emulated accesses Xen handled itself (the virtual IOAPIC). */
  ioInternal = 0;

  hypercall(name: string): void {
    this.hypercalls.set(name, (this.hypercalls.get(name) ?? 0) + 1);
  }

  /** Total VM exits. */
  get exitTotal(): number {
    let n = 0;
    for (const r of EXIT_REASONS) n += this.exits[r];
    return n;
  }
}

/** A domain's counters at one instant, as plain numbers (`hypercalls.<name>`, `exits.<reason>`). */
export type CounterSnapshot = Record<string, number>;

/** Copies every counter of `c` (a snapshot never changes afterwards). */
export function snapshotCounters(c: DomainCounters): CounterSnapshot {
  const out: CounterSnapshot = {};
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number') out[k] = v;
  }
  for (const r of EXIT_REASONS) out[`exits.${r}`] = c.exits[r];
  for (const [name, n] of c.hypercalls) out[`hypercalls.${name}`] = n;
  out.exitTotal = c.exitTotal;
  return out;
}

/** `to − from`, key by key (a key absent from `from` counts from zero). */
export function diffCounters(to: CounterSnapshot, from: CounterSnapshot | undefined): CounterSnapshot {
  const out: CounterSnapshot = {};
  for (const [k, v] of Object.entries(to)) out[k] = v - (from?.[k] ?? 0);
  return out;
}
