import type { SimEvent } from '../sim/index.js';
import { EINVAL, EVTCHN_2L_NR_CHANNELS, EVTCHN_FIFO_NR_CHANNELS } from './abi/index.js';
import type { Domain } from './domain.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import type { Vcpu } from './vcpu.js';

/** struct sched_poll: the ports to wait for, and an absolute system-time timeout in ns (0: none). */
export interface SchedPoll {
  ports: readonly number[];
  timeout: number;
}

/** do_poll's "fairly arbitrary limit" on the number of ports. */
export const SCHED_POLL_MAX_PORTS = 128;

interface Poller {
  /** v->poll_evtchn: the one port polled, or -1 for several. */
  port: number;
  woken: SimEvent<Pcpu | null>;
}

/**
 * SCHEDOP_poll (xen/common/schedule.c do_poll, evtchn_check_pollers in event_channel.c): a vCPU
 * blocks in Xen until one of some ports becomes pending, any event is delivered to it, or a
 * timeout passes. It returns at once if one of the ports is pending already or the vCPU has
 * an upcall to take. While it polls the vCPU is blocked (no HLT: it is in a hypercall); a port
 * of its domain newly set pending wakes every poller of that port or of several ports
 * (evtchn_check_pollers), and vcpu_kick for an upcall unblocks it too.
 */
export class PollOps {
  private readonly pollers = new Map<Vcpu, Poller>();
  /** The pCPU whose Xen code woke each poller (its return to the guest is then tickled from there). */
  private readonly wokeFrom = new Map<Vcpu, Pcpu | null>();

  constructor(private readonly hv: Hypervisor) {}

  /** do_poll from vCPU `v`: 0 when it may go on, -EINVAL for bad arguments; may block. */
  *poll(v: Vcpu, a: SchedPoll): Generator<SimEvent<unknown>, number, unknown> {
    const d = v.domain;
    if (!Array.isArray(a.ports) || a.ports.length > SCHED_POLL_MAX_PORTS) return -EINVAL;
    // local_events_need_delivery: an upcall is waiting to be taken.
    if (d.sharedInfo.upcallPending(v.id) && !d.sharedInfo.upcallMask(v.id)) return 0;
    const max = d.evtchnFifo !== null ? EVTCHN_FIFO_NR_CHANNELS : EVTCHN_2L_NR_CHANNELS;
    let port = 0;
    for (const p of a.ports) {
      port = Number.isInteger(p) ? p >>> 0 : max;
      if (port >= max) return -EINVAL;
      if (this.isPending(d, port)) return 0;
    }
    const woken = this.hv.env.event<Pcpu | null>();
    const poller: Poller = { port: a.ports.length === 1 ? port : -1, woken };
    this.pollers.set(v, poller);
    v.polling = true;
    if (a.timeout !== 0) {
      // The poll timer (absolute system time; one in the past fires at once). It wakes only
      // this poll, not a later one of the same vCPU.
      this.hv.env.timeout(Math.max(0, a.timeout - this.hv.env.now)).addCallback(() => {
        if (this.pollers.get(v) === poller) this.unblock(v, null);
      });
    }
    this.wokeFrom.set(v, (yield woken) as Pcpu | null);
    return 0;
  }

  /** The pCPU that woke `v`'s last poll, once (null: none, or not woken by another pCPU). */
  takeWakeFrom(v: Vcpu): Pcpu | null {
    const f = this.wokeFrom.get(v) ?? null;
    this.wokeFrom.delete(v);
    return f;
  }

  /** evtchn_port_is_pending on the domain's ABI. */
  private isPending(d: Domain, port: number): boolean {
    const fifo = d.evtchnFifo;
    return fifo !== null ? fifo.isPending(port) : port < EVTCHN_2L_NR_CHANNELS && d.sharedInfo.isPending(port);
  }

  /** evtchn_check_pollers: `port` of `d` became pending; pollers of it, or of several ports, wake. */
  checkPollers(d: Domain, port: number, from: Pcpu | null): void {
    if (this.pollers.size === 0) return;
    for (const [v, p] of [...this.pollers]) if (v.domain === d && (p.port <= 0 || p.port === port)) this.unblock(v, from);
  }

  /** vcpu_unblock of a polling vCPU (an event for it, its timer, or a poller check). */
  unblock(v: Vcpu, from: Pcpu | null): void {
    const p = this.pollers.get(v);
    if (p === undefined) return;
    this.pollers.delete(v);
    v.polling = false;
    p.woken.succeed(from);
  }

  /** Whether `v` is blocked in SCHEDOP_poll. */
  isPolling(v: Vcpu): boolean {
    return this.pollers.has(v);
  }
}
