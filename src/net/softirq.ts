import { Deque, PRIO_KERNEL, PRIO_SOFTIRQ, type Env, type Executor } from '../sim/index.js';
import type { Napi } from './iface/device.js';
import type { Packet } from './iface/packet.js';

export interface NetRxParams {
  /** Frames one poll of a NAPI context may take before the next context's turn (its weight). */
  weight: number;
  /** Frames one net_rx_action may take over all contexts (netdev_budget). */
  budget: number;
  /** Time one net_rx_action may run (2 jiffies). */
  netRxTime: number;
  /** Time and passes __do_softirq may spend before handing the rest to ksoftirqd. */
  maxTime: number;
  maxRestart: number;
  /** Frames the per-CPU backlog of netif_rx holds (netdev_max_backlog). */
  maxBacklog: number;
  /** Waking ksoftirqd and switching to it. */
  wakeup: number;
}

/** /proc/net/softnet_stat's columns, and the hand-offs to ksoftirqd. */
export interface SoftnetStats {
  processed: number;
  /** Frames netif_rx dropped because the backlog was full. */
  dropped: number;
  /** net_rx_action passes that ended with work left (budget or time used up). */
  timeSqueeze: number;
  /** Times __do_softirq gave up and woke ksoftirqd. */
  ksoftirqdWakeups: number;
}

/**
 * The NET_RX softirq of one guest CPU (net/core/dev.c net_rx_action, kernel/softirq.c
 * __do_softirq and ksoftirqd), over NAPI contexts: a device's interrupt handler schedules
 * its context (and keeps its interrupt masked); each poll takes up to `weight` frames, a
 * context that got fewer is complete (its device may interrupt again) and one that got
 * `weight` goes to the back of the list. Between polls, one pass stops once `budget` frames
 * are taken (a poll may overshoot it, as in Linux 3.x) or `netRxTime` has passed;
 * __do_softirq restarts passes while work is left, up to `maxRestart` passes and `maxTime`,
 * at softirq priority (preempting tasks). Then it wakes ksoftirqd: the remaining work runs
 * in process context (PRIO_KERNEL), one frame at a time in turn with the application's
 * system calls until the poll list is empty. (An approximation of CFS: the two alternate
 * work item by item, so their shares follow the items' lengths rather than being equal.)
 * Every frame costs `cost(pkt)` of CPU, charged before `input(pkt)` runs.
 *
 * Frames from devices without NAPI (netif_rx: loopback) wait in a backlog of `maxBacklog`
 * frames, itself a NAPI context of weight `weight` (process_backlog with dev_weight).
 */
export class NetRxSoftirq {
  readonly stats: SoftnetStats = { processed: 0, dropped: 0, timeSqueeze: 0, ksoftirqdWakeups: 0 };
  private readonly pollList = new Deque<Napi>();
  private readonly scheduled = new Set<Napi>();
  private readonly backlog = new Deque<Packet>();
  private readonly backlogNapi: Napi;
  private running = false;
  /** The pending work was handed to ksoftirqd (runs at task priority). */
  private threaded = false;
  private current: Napi | null = null;
  private pollWork = 0;
  private budgetLeft = 0;
  private passStart = 0;
  private runStart = 0;
  private passes = 0;
  private readonly stepFn: () => void;
  private pending: Packet | null = null;

  constructor(
    private readonly env: Env,
    private readonly cpu: Executor,
    private readonly p: NetRxParams,
    private readonly cost: (pkt: Packet) => number,
    private readonly input: (pkt: Packet) => void,
  ) {
    this.backlogNapi = { poll: () => this.backlog.shift(), complete: () => undefined };
    this.stepFn = () => {
      const pkt = this.pending!;
      this.pending = null;
      this.stats.processed++;
      this.input(pkt);
      this.step();
    };
  }

  /** Frames waiting in the netif_rx backlog. */
  get backlogLength(): number {
    return this.backlog.length;
  }

  /** True while receive processing runs in ksoftirqd rather than in softirq context. */
  get inKsoftirqd(): boolean {
    return this.running && this.threaded;
  }

  /** napi_schedule (from a device's interrupt handler): poll `napi` soon. */
  schedule(napi: Napi): void {
    if (this.scheduled.has(napi)) return;
    this.scheduled.add(napi);
    this.pollList.push(napi);
    if (this.running) return;
    // raise_softirq, run on the way out of the interrupt (irq_exit -> __do_softirq).
    this.running = true;
    this.threaded = false;
    this.runStart = this.env.now;
    this.passes = 0;
    this.startPass();
  }

  /** netif_rx: queue a frame to the backlog; false (and counted) when it is full. */
  netifRx(pkt: Packet): boolean {
    if (this.backlog.length >= this.p.maxBacklog) {
      this.stats.dropped++;
      pkt.release();
      return false;
    }
    this.backlog.push(pkt);
    this.schedule(this.backlogNapi);
    return true;
  }

  private startPass(): void {
    this.passes++;
    this.budgetLeft = this.p.budget;
    this.passStart = this.env.now;
    this.step();
  }

  /** Takes the next frame of net_rx_action and charges it, or ends the pass. */
  private step(): void {
    for (;;) {
      if (this.current === null) {
        if (this.pollList.length === 0) {
          this.running = false;
          this.threaded = false;
          return;
        }
        if (this.budgetLeft <= 0 || this.env.now - this.passStart >= this.p.netRxTime) {
          this.endPass();
          return;
        }
        this.current = this.pollList.peek()!;
        this.pollWork = 0;
      }
      const napi = this.current;
      if (this.pollWork >= this.p.weight) {
        // The poll used its whole weight: the context stays scheduled, at the back.
        this.pollList.shift();
        this.pollList.push(napi);
        this.current = null;
        continue;
      }
      const pkt = napi.poll();
      if (pkt === undefined) {
        // Less than the weight: napi_complete, the device may interrupt again.
        this.pollList.shift();
        this.scheduled.delete(napi);
        this.current = null;
        napi.complete();
        continue;
      }
      this.pollWork++;
      this.budgetLeft--;
      this.pending = pkt;
      this.cpu.exec(this.cost(pkt), 'softirq', this.threaded ? PRIO_KERNEL : PRIO_SOFTIRQ).addCallback(this.stepFn);
      return;
    }
  }

  /** A pass ended with work left (time_squeeze): restart, or hand over to ksoftirqd. */
  private endPass(): void {
    this.stats.timeSqueeze++;
    if (this.threaded || (this.passes < this.p.maxRestart && this.env.now - this.runStart < this.p.maxTime)) {
      this.startPass();
      return;
    }
    // wakeup_softirqd: the rest runs in a kernel thread at task priority.
    this.threaded = true;
    this.stats.ksoftirqdWakeups++;
    this.cpu.exec(this.p.wakeup, 'softirq', PRIO_KERNEL).addCallback(() => this.startPass());
  }
}
