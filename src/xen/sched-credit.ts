import { MS, type Env, type Time } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import type { Domain } from './domain.js';
import type { Pcpu, SchedDecision, SchedPolicy } from './pcpu.js';
import { releaseOf, type XenRelease } from './release.js';
import { TP_SCHED_ACCT, TP_SCHED_WAKE } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

/** credit1 priorities (CSCHED_PRI_*): higher runs first. */
export const PRI_BOOST = 0;
export const PRI_UNDER = -1;
export const PRI_OVER = -2;
export const PRI_IDLE = -64;

/** The credit scheduler's per-vCPU data (struct csched_vcpu). */
export class CreditVcpu {
  credit = 0;
  pri = PRI_UNDER; // csched_alloc_vdata: a new vCPU starts UNDER with no credit
  /** Paused by the scheduler because its capped domain overspent (CSCHED_FLAG_VCPU_PARKED). */
  parked = false;
  /** When credits were last burned while running. */
  startTime: Time = 0;
  /** Sub-credit remainder of burned time, in credits·ns/ms. */
  residual = 0;
  /** On its domain's active list (earning credits). */
  active = false;
  /** To be moved to another pCPU once descheduled (_VPF_migrating). */
  migrating = false;
  /** Asked to yield (CSCHED_FLAG_VCPU_YIELD), until it is next scheduled out. */
  yielding = false;
}

/** The credit scheduler's per-domain data (struct csched_dom). */
export class CreditDomain {
  readonly activeVcpus: Vcpu[] = [];
  onActiveList = false;
  constructor(
    public weight: number,
    public cap: number,
  ) {}
}

export interface CreditOptions {
  /** Give a vCPU woken while UNDER the BOOST priority (Xen always does; off for comparison). */
  boost: boolean;
}

/**
 * Xen's credit scheduler (credit1, xen/common/sched_credit.c of Xen 4.x), in its essentials:
 * - every time slice (30 ms) `acct` shares the host's credits (10 per ms per pCPU) among the
 *   active domains by weight, limited by caps, and sets each vCPU UNDER (credit ≥ 0) or OVER;
 *   capped vCPUs that overspend are parked (paused) until their credit is positive again;
 * - every tick (10 ms) a pCPU burns its running vCPU's credits and drops its BOOST;
 * - a vCPU woken while UNDER gets BOOST, and the wake "tickles" a pCPU: an idle one in its
 *   affinity, or its own if it outranks what runs there;
 * - `schedule` keeps the running vCPU until it has run for the rate limit (1 ms), then takes
 *   the head of the priority-ordered run queue, stealing higher-priority work from other
 *   pCPUs' queues when its own best is OVER or idle.
 * Credits are burned exactly (the remainder carried) rather than with sched_credit.c's
 * start_time arithmetic; the long-run shares are the same.
 */
export class CreditScheduler implements SchedPolicy {
  readonly tslice: Time;
  readonly tick: Time;
  readonly ratelimit: Time;
  /** CSCHED_MIN_TIMER: the shortest rate-limit remainder (4.8+). */
  readonly minTimer: Time;
  /** The release whose rules this scheduler follows (profile `xen.version`). */
  readonly release: XenRelease;
  readonly creditsPerMs: number;
  /** Credits one vCPU can earn in a time slice (credits_per_tslice). */
  readonly creditsPerTslice: number;
  /** Sum of weight × active vCPUs over active domains (prv->weight). */
  private weight = 0;
  /** Host credits per accounting period: creditsPerTslice × pCPUs (prv->credit). */
  private readonly creditTotal: number;
  private creditBalance = 0;
  private runqSort = 0;
  private readonly activeDoms: Domain[] = [];
  /** prv->balance_bias (one NUMA node): the pCPU last stolen from (4.9+). */
  private balanceBias = 0;
  /** per_cpu(last_tickle_cpu), by the pCPU whose Xen code does the wake (-1 key: no pCPU). */
  private readonly lastTickled = new Map<number, number>();

  constructor(
    private readonly env: Env,
    profile: Profile,
    private readonly pcpus: readonly Pcpu[],
    private readonly options: CreditOptions,
  ) {
    this.tslice = profile.ns('xen.sched.tslice');
    this.tick = profile.ns('xen.sched.tick');
    this.release = releaseOf(profile);
    // Xen before 4.2 has no rate limit at all, whatever the profile's figure.
    this.ratelimit = this.release.hasRatelimit ? profile.ns('xen.sched.ratelimit') : 0;
    this.minTimer = profile.ns('xen.sched.minTimer');
    this.creditsPerMs = profile.count('xen.sched.creditsPerMs');
    this.creditsPerTslice = Math.round((this.creditsPerMs * this.tslice) / MS);
    this.creditTotal = this.creditsPerTslice * pcpus.length;
    if (this.tick <= 0 || this.tslice <= 0 || this.creditsPerMs <= 0)
      throw new Error('credit scheduler: tick, tslice and creditsPerMs must be positive');
    for (const p of pcpus) {
      p.policy = this;
      const t = env.timer(() => {
        this.onTick(p);
        t.setIn(this.tick);
      });
      t.setIn(this.tick);
    }
    const master = env.timer(() => {
      this.acct();
      master.setIn(this.tslice);
    });
    master.setIn(this.tslice);
  }

  /** A vCPU became runnable (csched_vcpu_wake); `from` = the pCPU whose Xen code woke it. */
  wake(v: Vcpu, from: Pcpu | null = null, migrated = false): void {
    if (v.pcpu !== null || v.inRunq) return;
    const svc = v.csched;
    // "We temporarily boost the priority of awaking VCPUs" — except capped ones unparking
    // and (4.7+, CSCHED_FLAG_VCPU_MIGRATING) ones just moved by vcpu_migrate.
    const skip = migrated && this.release.migratingSkipsBoost;
    if (this.options.boost && svc.pri === PRI_UNDER && !svc.parked && !skip) svc.pri = PRI_BOOST;
    const boosted = svc.pri === PRI_BOOST;
    v.wakeups++;
    v.setRunstate('runnable');
    this.runqInsert(v.processor, v);
    if (this.env.trace.enabled(TP_SCHED_WAKE)) this.env.trace.emit(TP_SCHED_WAKE, { vcpu: v.name, pcpu: v.processor.id, boosted });
    this.tickle(v.processor, v, from);
  }

  /** A vCPU stopped being runnable (csched_vcpu_sleep): leave the queue, or make its pCPU reschedule. */
  sleep(v: Vcpu): void {
    if (v.pcpu !== null) v.pcpu.reschedule();
    else if (v.inRunq) this.runqRemove(v.processor, v);
  }

  /**
   * SCHEDOP_yield from running vCPU `v` (vcpu_yield: csched_vcpu_yield, then the schedule
   * softirq): from 4.1 it is flagged to go behind one lower-priority vCPU.
   */
  yield(v: Vcpu): void {
    if (this.release.yieldFlag) v.csched.yielding = true;
    if (v.pcpu !== null) v.pcpu.reschedule();
  }

  /** csched_schedule. */
  schedule(p: Pcpu): SchedDecision {
    const now = this.env.now;
    const scurr = p.curr;
    if (scurr !== null) this.burnCredits(scurr.csched, now);
    // vcpu_runnable(): _VPF_migrating is a pause flag, so a vCPU being moved is not runnable here.
    const runnable = scurr !== null && scurr.runnable && !scurr.csched.migrating;
    // Rate limit: a runnable vCPU that has run less than `ratelimit` keeps the pCPU. Up to
    // 4.7 for a new full `ratelimit` from this decision; 4.8+ (0053127890) for the remainder,
    // never less than CSCHED_MIN_TIMER.
    // 4.8+ (9fdd2f3c9c): a yielding vCPU is not held by the rate limit.
    const yielding = scurr !== null && scurr.csched.yielding;
    if (runnable && this.ratelimit > 0 && !(yielding && this.release.yieldSkipsRatelimit)) {
      const runtime = now - p.runStart;
      if (runtime < this.ratelimit) {
        if (!this.release.ratelimitRemainder) return { next: scurr, slice: this.ratelimit };
        return { next: scurr, slice: runtime < this.minTimer ? this.minTimer : this.ratelimit - runtime };
      }
    }
    if (runnable) this.runqInsert(p, scurr);
    // "Clear YIELD flag before scheduling out" (a rate-limited vCPU keeps it, as in Xen).
    if (scurr !== null) scurr.csched.yielding = false;
    let snext: Vcpu | null = p.runq[0] ?? null;
    if (snext !== null && snext.csched.pri > PRI_OVER) {
      this.runqRemove(p, snext);
    } else {
      snext = this.loadBalance(p, snext);
    }
    p.idler = snext === null;
    if (snext !== null) snext.csched.startTime = now;
    return { next: snext, slice: this.tslice };
  }

  /**
   * `prev` has left pCPU `p` (context_saved): a vCPU marked for migration is moved now
   * (vcpu_migrate): it gets the pCPU `_csched_cpu_pick` chooses and, if it still has work,
   * wakes there — which BOOSTs it if it is UNDER, up to Xen 4.6 (4.7+ skips BOOST).
   */
  descheduled(p: Pcpu, prev: Vcpu): void {
    const svc = prev.csched;
    if (!svc.migrating) return;
    svc.migrating = false;
    prev.processor = this.cpuPick(prev);
    if (prev.runnable) this.wake(prev, p, true);
  }

  /**
   * _csched_cpu_pick (without SMT topology): the vCPU's own pCPU if it is idle or would be
   * without this vCPU, else an idle pCPU of its affinity (cycling from its own), else its own.
   */
  private cpuPick(v: Vcpu): Pcpu {
    const cur = v.processor;
    const idle = (q: Pcpu): boolean => (q.idler && q.curr === null) || (q === cur && q.runq.length === 0 && (q.curr === null || q.curr === v));
    if (v.affine[cur.id] === true && idle(cur)) return cur;
    const n = this.pcpus.length;
    for (let k = 1; k < n; k++) {
      const q = this.pcpus[(cur.id + k) % n]!;
      if (v.affine[q.id] === true && idle(q)) return q;
    }
    return v.affine[cur.id] === true ? cur : this.pcpus[v.affinity[0]!]!;
  }

  /**
   * Looks on other pCPUs for work of higher priority than `snext` (csched_load_balance). The
   * peers are the "workers" (online pCPUs not in prv->idlers), scanned from the lowest-numbered
   * up to 4.8 (cpumask_first), from the one after the last stolen from in 4.9+ (balance_bias).
   */
  private loadBalance(p: Pcpu, snext: Vcpu | null): Vcpu | null {
    const floor = snext === null ? PRI_IDLE : snext.csched.pri;
    const n = this.pcpus.length;
    const from = this.release.balanceBias ? this.balanceBias : -1;
    for (let k = 1; k <= n; k++) {
      const peer = this.pcpus[(from + k) % n]!;
      // Not our own queue, and not an idler's: it is about to take that work itself.
      if (peer === p || peer.idler) continue;
      for (const v of peer.runq) {
        if (v.csched.pri <= floor) break;
        if (v.affine[p.id] === true) {
          this.runqRemove(peer, v);
          v.processor = p;
          if (this.release.balanceBias) this.balanceBias = peer.id;
          return v;
        }
      }
    }
    if (snext !== null) this.runqRemove(p, snext);
    return snext;
  }

  /** __runq_tickle: who should look at newly runnable `v`, queued on pCPU `p`. */
  private tickle(p: Pcpu, v: Vcpu, from: Pcpu | null): void {
    const cur = p.curr;
    const curPri = cur === null ? PRI_IDLE : cur.csched.pri;
    const newPri = v.csched.pri;
    const idlers = this.pcpus.filter((q) => q.idler && q.curr === null);
    if (cur === null || (idlers.length === 0 && newPri > curPri)) {
      if (this.release.idlersClearedAtTickle) p.idler = false;
      p.tickle(from);
      return;
    }
    if (idlers.length > 0) {
      const fit = idlers.filter((q) => v.affine[q.id] === true);
      if (fit.length === 0) {
        // No idler can run `v`, but the running vCPU may be able to use one: kick it away —
        // up to 4.6 whatever its affinity, 4.7+ (f02a5760c7) only if an idler is in it.
        // Either way the pCPU is tickled, so `v` can preempt `cur` if the rate limit allows.
        if (newPri > curPri) {
          const curFits = !this.release.tickleChecksAffinity || idlers.some((q) => cur.affine[q.id] === true);
          if (curFits) cur.csched.migrating = true;
          p.tickle(from);
        }
        return;
      }
      // opt_tickle_one_idle: wake one suitable idler, cycling through them.
      // The cursor is the waking CPU's own (this_cpu(last_tickle_cpu)), not one for the host.
      const key = from === null ? -1 : from.id;
      const last = this.lastTickled.get(key) ?? -1;
      const next = fit.find((q) => q.id > last) ?? fit[0]!;
      this.lastTickled.set(key, next.id);
      // 4.9+ (47d5292995): a tickled pCPU counts as busy at once; before, it stays an idler
      // until it schedules, so a second wake may pick it again.
      if (this.release.idlersClearedAtTickle) next.idler = false;
      next.tickle(from);
    }
  }

  /**
   * Inserts after every vCPU of equal or higher priority (__runq_insert); a yielding one also
   * behind the next (lower-priority) vCPU, if any (the idle vCPU ends Xen's queue).
   */
  private runqInsert(p: Pcpu, v: Vcpu): void {
    const q = p.runq;
    let i = 0;
    while (i < q.length && q[i]!.csched.pri >= v.csched.pri) i++;
    if (v.csched.yielding && i < q.length) i++;
    q.splice(i, 0, v);
    v.inRunq = true;
    v.processor = p;
  }

  private runqRemove(p: Pcpu, v: Vcpu): void {
    const i = p.runq.indexOf(v);
    if (i < 0) throw new Error(`${v.name} is not on pCPU${p.id}'s run queue (model bug)`);
    p.runq.splice(i, 1);
    v.inRunq = false;
  }

  /** burn_credits: debit the running vCPU for the time since it last paid. */
  private burnCredits(svc: CreditVcpu, now: Time): void {
    const delta = now - svc.startTime;
    if (delta <= 0) return;
    const val = delta * this.creditsPerMs + svc.residual;
    const credits = Math.floor(val / MS);
    svc.residual = val - credits * MS;
    svc.credit -= credits;
    svc.startTime = now;
  }

  /** csched_tick → csched_vcpu_acct, then csched_runq_sort. */
  private onTick(p: Pcpu): void {
    p.settle();
    const v = p.curr;
    if (v !== null) {
      const svc = v.csched;
      // Running at a tick means it uses a non-negligible amount of CPU: no more BOOST.
      if (svc.pri === PRI_BOOST) svc.pri = PRI_UNDER;
      this.burnCredits(svc, this.env.now);
      if (!svc.active) {
        this.acctStart(v);
      } else if (this.cpuPick(v) !== p) {
        // A better pCPU (an idle one) exists for this running vCPU: migrate it (migrate_running).
        svc.migrating = true;
        p.reschedule();
      }
    }
    if (p.runqSortLast !== this.runqSort) {
      p.runqSortLast = this.runqSort;
      // Stable partition: UNDER and BOOST ahead of OVER (csched_runq_sort).
      const under = p.runq.filter((x) => x.csched.pri >= PRI_UNDER);
      const over = p.runq.filter((x) => x.csched.pri < PRI_UNDER);
      p.runq.splice(0, p.runq.length, ...under, ...over);
    }
  }

  private acctStart(v: Vcpu): void {
    const sdom = v.domain.csched;
    v.csched.active = true;
    sdom.activeVcpus.unshift(v);
    this.weight += sdom.weight;
    if (!sdom.onActiveList) {
      sdom.onActiveList = true;
      this.activeDoms.unshift(v.domain);
    }
  }

  private acctStop(v: Vcpu): void {
    const sdom = v.domain.csched;
    v.csched.active = false;
    sdom.activeVcpus.splice(sdom.activeVcpus.indexOf(v), 1);
    this.weight -= sdom.weight;
    if (sdom.activeVcpus.length === 0) {
      sdom.onActiveList = false;
      this.activeDoms.splice(this.activeDoms.indexOf(v.domain), 1);
    }
  }

  /** csched_acct: share out the period's credits by weight and cap; recompute priorities. */
  private acct(): void {
    const weightTotal = this.weight;
    let creditTotal = this.creditTotal;
    // Converge the balance towards 0 when it drops negative.
    if (this.creditBalance < 0) creditTotal -= this.creditBalance;
    if (weightTotal === 0) {
      this.creditBalance = 0;
      return;
    }
    let weightLeft = weightTotal;
    let creditBalance = 0;
    let creditXtra = false;
    for (const dom of [...this.activeDoms]) {
      const sdom = dom.csched;
      const nActive = sdom.activeVcpus.length;
      weightLeft -= sdom.weight * nActive;
      // At most, a domain can use credits to run all its active vCPUs for one period.
      let creditPeak = nActive * this.creditsPerTslice;
      if (this.creditBalance < 0) creditPeak += Math.floor((-this.creditBalance * sdom.weight * nActive + (weightTotal - 1)) / weightTotal);
      let creditCap = 0;
      if (sdom.cap !== 0) {
        creditCap = Math.floor((sdom.cap * this.creditsPerTslice + 99) / 100);
        if (creditCap < creditPeak) creditPeak = creditCap;
        creditCap = Math.floor((creditCap + (nActive - 1)) / nActive);
      }
      let creditFair = Math.floor((creditTotal * sdom.weight * nActive + (weightTotal - 1)) / weightTotal);
      if (creditFair < creditPeak) {
        creditXtra = true;
      } else {
        // Give other domains a chance at the credits this one cannot use.
        if (weightLeft !== 0) creditTotal += Math.floor(((creditFair - creditPeak) * weightTotal + (weightLeft - 1)) / weightLeft);
        if (creditXtra) {
          // Keep domains with extra credits at the head of the list for later periods.
          this.activeDoms.splice(this.activeDoms.indexOf(dom), 1);
          this.activeDoms.unshift(dom);
        }
        creditFair = creditPeak;
      }
      creditFair = Math.floor((creditFair + (nActive - 1)) / nActive);
      for (const v of [...sdom.activeVcpus]) {
        const svc = v.csched;
        svc.credit += creditFair;
        let credit = svc.credit;
        if (credit < 0) {
          svc.pri = PRI_OVER;
          // Park running vCPUs of capped-out domains.
          if (sdom.cap !== 0 && credit < -creditCap && !svc.parked) {
            svc.parked = true;
            this.pause(v);
          }
          if (credit < -this.creditsPerTslice) {
            credit = -this.creditsPerTslice;
            svc.credit = credit;
          }
        } else {
          svc.pri = PRI_UNDER;
          if (svc.parked) {
            if (this.release.boostOnUnpark) {
              // ≤ 4.12: the flag is cleared first, so the wake BOOSTs the unparked vCPU.
              svc.parked = false;
              this.unpause(v);
            } else {
              // 4.13+ (5c8c0ae7c4): unpause before clearing the flag, so the wake does not BOOST.
              this.unpause(v);
              svc.parked = false;
            }
          }
          // Upper bound on credits: the vCPU stops earning, and keeps half.
          if (credit > this.creditsPerTslice) {
            this.acctStop(v);
            credit = Math.trunc(credit / 2);
            svc.credit = credit;
          }
        }
        creditBalance += credit;
      }
    }
    this.creditBalance = creditBalance;
    this.runqSort++;
    if (this.env.trace.enabled(TP_SCHED_ACCT)) {
      const credits = this.pcpus
        .flatMap((p) => [...(p.curr ? [p.curr] : []), ...p.runq])
        .map((v) => ({ vcpu: v.name, credit: v.csched.credit, pri: v.csched.pri }));
      this.env.trace.emit(TP_SCHED_ACCT, { credits });
    }
  }

  /** csched_vcpu_remove, as the domain dies: paused, off the run queue, no longer earning. */
  removeVcpu(v: Vcpu): void {
    this.pause(v);
    if (v.csched.active) this.acctStop(v);
  }

  /** vcpu_pause_nosync. */
  pause(v: Vcpu): void {
    v.pauseCount++;
    if (v.pauseCount > 1) return;
    this.sleep(v);
    if (v.pcpu === null) v.setRunstate('offline');
  }

  /** vcpu_unpause; `from` = the pCPU whose Xen code unpaused it. */
  unpause(v: Vcpu, from: Pcpu | null = null): void {
    if (v.pauseCount === 0) throw new Error(`${v.name} unpaused more than paused (model bug)`);
    v.pauseCount--;
    if (v.pauseCount > 0 || v.pcpu !== null) return;
    if (v.work.length > 0) this.wake(v, from);
    else v.setRunstate('blocked');
  }
}
