import { PRIO_IRQ, type SimEvent } from '../sim/index.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import type { Vcpu } from './vcpu.js';

/**
 * ept_sync_domain (xen/arch/x86/mm/p2m-ept.c) after a p2m removal in HVM domain `v.domain`,
 * done by its vCPU `v`: every other pCPU in the domain's domain_dirty_cpumask (here: holding
 * one of its vCPUs' state, running or lazily kept across idle) gets a call-function IPI, and
 * `v` spins in on_selected_cpus(..., wait = 1) until each has taken it. Its own pCPU's INVEPT
 * is charged on `v`.
 *
 * Up to Xen 4.6 the IPI handler (__ept_sync_domain) runs INVEPT before it lets the initiator
 * go; pCPUs outside the mask invalidate when the domain is next switched in there. From 4.7
 * (8eb2235599) the handler is empty and every pCPU invalidates on its next VM entry of the
 * domain (ept->invalidate is set for all), so the wait is shorter and the INVEPTs come later.
 *
 * A target running a guest takes the IPI by a VM exit (HVM) or in guest mode (PV) and goes
 * back to it afterwards; an idle one first leaves its C-state. The target's work is Xen's on
 * behalf of the unmapping domain. The acknowledgement's way back (the initiator seeing its
 * bit cleared) is taken as included in the IPI latency.
 *
 * Returns the number of IPIs sent.
 */
export function* eptSyncDomain(hv: Hypervisor, v: Vcpu): Generator<SimEvent<unknown>, number, unknown> {
  const d = v.domain;
  const c = hv.costs;
  const onVmentry = hv.release.eptInvalidateOnVmentry;
  const here = v.pcpu;
  const now = hv.env.now;
  let wait = 0;
  let ipis = 0;
  for (const p of hv.pcpus) {
    if (p === here) continue;
    const dirty = p.loadedVcpu !== null && p.loadedVcpu.domain === d;
    if (!dirty) {
      // Not in the mask: no IPI; its INVEPT waits for the domain's next vCPU entry there.
      p.inveptPending.add(d);
      continue;
    }
    ipis++;
    const { take, back, taken } = targetCosts(hv, p);
    const handler = c.ipiCallFunction + (onVmentry ? 0 : c.tlbFlush);
    const ack = c.ipiLatency + taken + take + handler;
    if (ack > wait) wait = ack;
    // 4.7+: the pCPU that goes straight back into one of this domain's vCPUs invalidates on
    // that entry; any other keeps the invalidation pending for its next entry of the domain.
    let after = back;
    if (onVmentry) {
      if (p.curr !== null && p.curr.domain === d && d.isHvm) after += c.tlbFlush;
      else p.inveptPending.add(d);
    }
    p.interruptAt(now + c.ipiLatency + taken, take + handler + after, d.cpuTime);
  }
  d.counters.eptSyncIpis += ipis;
  yield v.exec(c.tlbFlush + wait, 'xen', PRIO_IRQ);
  return ipis;
}

/**
 * How pCPU `p` takes an IPI now: `take` = Xen work to get into the handler (a VM exit, a
 * trap from PV guest mode, nothing if it is already in Xen or idle), `back` = Xen work to
 * return to the guest, `taken` = delay before it starts (leaving its idle C-state).
 */
function targetCosts(hv: Hypervisor, p: Pcpu): { take: number; back: number; taken: number } {
  const c = hv.costs;
  if (p.curr === null) return { take: 0, back: 0, taken: p.inXen ? 0 : hv.profile.ns('xen.pcpu.idleWake') };
  if (p.inXen) return { take: 0, back: 0, taken: 0 };
  if (p.curr.domain.isHvm) return { take: c.exit.extint, back: c.vmentry, taken: 0 };
  return { take: c.pvTrap, back: 0, taken: 0 };
}
