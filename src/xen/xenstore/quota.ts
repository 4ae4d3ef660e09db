/**
 * xenstored's per-domain quotas (xen-abi.md §1.9; tools/xenstored/domain.c hard_quotas, and
 * the `-E -W -t -A -M -S -Q` options). They bind unprivileged domains only: dom0 and socket
 * clients are limited by the 4096-byte payload alone.
 */
export interface XsQuotas {
  /** Nodes a domain may own (ACC_NODES). */
  readonly nodes: number;
  /** Watches per domain (ACC_WATCH). */
  readonly watches: number;
  /** Open transactions per domain (ACC_TRANS). */
  readonly transactions: number;
  /** Distinct nodes one transaction may touch (ACC_TRANSNODES). */
  readonly transactionNodes: number;
  /** Entries in one SET_PERMS (ACC_NPERM). */
  readonly permsPerNode: number;
  /** Stored size of one node, see nodeSize() (ACC_NODESZ). */
  readonly nodeSize: number;
  /** Replies a domain may have outstanding before xenstored stops reading its ring (ACC_OUTST). */
  readonly outstanding: number;
  /**
   * Bytes of queued watch events a domain may hold: xenstored charges events to the domain's
   * memory quota (ACC_MEM, 2.5 MiB hard) and drops an event that would exceed it.
   */
  readonly eventBytes: number;
}

export const DEFAULT_QUOTAS: XsQuotas = {
  nodes: 1000,
  watches: 128,
  transactions: 10,
  transactionNodes: 1024,
  permsPerNode: 5,
  nodeSize: 2048,
  outstanding: 20,
  eventBytes: 2 * 1024 * 1024 + 512 * 1024,
};

export function checkQuotas(q: XsQuotas): XsQuotas {
  for (const [k, v] of Object.entries(q)) {
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new RangeError(`xenstore quota ${k} = ${String(v)} is not a non-negative integer`);
  }
  return q;
}
