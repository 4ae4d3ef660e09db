import {
  BITS_PER_EVTCHN_WORD,
  DOMID_SELF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  ENOSYS,
  EPERM,
  ESRCH,
  EVTCHN_2L_NR_CHANNELS,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  NR_VIRQS,
  VIRQ_DEBUG,
  VIRQ_TIMER,
  VIRQ_XENOPROF,
  VIRQ_XENPMU,
} from './abi/index.js';
import type { Domain } from './domain.js';
import { checkInitControl, EvtchnFifo, type EvtchnExpandArray, type EvtchnInitControl, type EvtchnSetPriority } from './event-fifo.js';
import type { Hypervisor } from './hypervisor.js';
import type { Pcpu } from './pcpu.js';
import { TP_NOTIFY } from './trace-points.js';
import type { Vcpu } from './vcpu.js';

/** ECS_* channel states (xen/include/xen/sched.h). */
export type EvtchnState = 'free' | 'reserved' | 'unbound' | 'interdomain' | 'virq' | 'ipi';

/** Xen's handler for a notification arriving on a Xen-attached port (xen_event_channel_notification_t). */
export type XenNotify = (port: number, from: Pcpu | null) => void;

/** struct evtchn: one port of a domain. */
export interface Evtchn {
  state: EvtchnState;
  /** vCPU the port's events are delivered to (notify_vcpu_id). */
  notifyVcpu: number;
  /** Unbound: the domain allowed to bind (u.unbound.remote_domid). */
  remoteDomid: number;
  /** Interdomain: the peer (u.interdomain). */
  peer: Domain | null;
  peerPort: number;
  virq: number;
  /** Set for a Xen-attached port (consumer_is_xen): guests cannot send on, close or rebind it. */
  xenNotify: XenNotify | null;
}

/** Ports are allocated in buckets (EVTCHNS_PER_BUCKET); a port beyond the allocated buckets is invalid. */
const EVTCHNS_PER_BUCKET = 64;

/**
 * A domain's ports (struct domain's evtchn buckets): port 0 reserved, lowest free port first,
 * at most 4096 (2-level ABI, 64-bit guest).
 */
export class EventChannelTable {
  private readonly chans: Evtchn[] = [];
  /** virq_to_evtchn of each vCPU. */
  readonly virqPorts: number[][];

  constructor(
    nvcpus: number,
    readonly maxPorts: number = EVTCHN_2L_NR_CHANNELS,
  ) {
    this.virqPorts = Array.from({ length: nvcpus }, () => new Array<number>(NR_VIRQS).fill(0));
    this.addBucket();
    this.chans[0]!.state = 'reserved';
  }

  /** port_is_valid: the port lies in an allocated bucket. */
  valid(port: number): boolean {
    return Number.isInteger(port) && port >= 0 && port < this.chans.length;
  }

  get(port: number): Evtchn | undefined {
    return this.valid(port) ? this.chans[port] : undefined;
  }

  /** get_free_port: the lowest free port, allocating a bucket if needed; -ENOSPC when all are used. */
  freePort(): number {
    for (let p = 0; p < this.chans.length; p++) if (this.chans[p]!.state === 'free') return p;
    if (this.chans.length >= this.maxPorts) return -ENOSPC;
    const p = this.chans.length;
    this.addBucket();
    return p;
  }

  /** Ports in any state but free, lowest first. */
  ports(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.chans.length; p++) if (this.chans[p]!.state !== 'free') out.push(p);
    return out;
  }

  private addBucket(): void {
    const n = Math.min(EVTCHNS_PER_BUCKET, this.maxPorts - this.chans.length);
    for (let i = 0; i < n; i++) this.chans.push(freeChannel());
  }
}

function freeChannel(): Evtchn {
  return { state: 'free', notifyVcpu: 0, remoteDomid: 0, peer: null, peerPort: 0, virq: 0, xenNotify: null };
}

function reset(c: Evtchn): void {
  Object.assign(c, freeChannel());
}

/** virq_is_global: every VIRQ but the per-vCPU ones. */
function virqIsGlobal(virq: number): boolean {
  return virq !== VIRQ_TIMER && virq !== VIRQ_DEBUG && virq !== VIRQ_XENOPROF && virq !== VIRQ_XENPMU;
}

/** Arguments of the EVTCHNOP_* sub-ops, with Xen's field names; OUT fields are written back. */
export interface EvtchnAllocUnbound {
  dom: number;
  remote_dom: number;
  port?: number;
}
export interface EvtchnBindInterdomain {
  remote_dom: number;
  remote_port: number;
  local_port?: number;
}
export interface EvtchnBindVirq {
  virq: number;
  vcpu: number;
  port?: number;
}
export interface EvtchnBindIpi {
  vcpu: number;
  port?: number;
}
export interface EvtchnPort {
  port: number;
}
export interface EvtchnBindVcpu {
  port: number;
  vcpu: number;
}
export interface EvtchnStatus {
  dom: number;
  port: number;
  status?: number;
  vcpu?: number;
  /** unbound: {dom}; interdomain: {dom, port}; virq: {virq}. */
  u?: { dom?: number; port?: number; virq?: number };
}

/**
 * Xen's event-channel operations (xen/common/event_channel.c and event_2l.c, Xen 4.x), with
 * its checks in its order and its negated errnos (shared/reference/xen-abi.md §4). Guest
 * mistakes return errors; nothing here throws for them.
 */
export class EventChannels {
  constructor(private readonly hv: Hypervisor) {}

  /** rcu_lock_domain_by_any_id: DOMID_SELF, a live domain, or a dying one not yet freed. */
  private anyId(caller: Domain, dom: number): Domain | undefined {
    return dom === DOMID_SELF ? caller : this.hv.lookupDomain(dom);
  }

  /** XSM_TARGET: the caller itself, or a privileged domain. */
  private mayTarget(caller: Domain, d: Domain): boolean {
    return caller === d || caller.privileged;
  }

  allocUnbound(caller: Domain, a: EvtchnAllocUnbound): number {
    const d = this.anyId(caller, a.dom & 0xffff);
    if (d === undefined) return -ESRCH;
    // get_free_port: "if ( d->is_dying ) return -EINVAL".
    if (d.dying) return -EINVAL;
    const port = d.evtchn.freePort();
    if (port < 0) return port;
    if (!this.mayTarget(caller, d)) return -EPERM;
    const c = d.evtchn.get(port)!;
    c.state = 'unbound';
    const remote = a.remote_dom & 0xffff;
    c.remoteDomid = remote === DOMID_SELF ? caller.domid : remote;
    a.port = port;
    return 0;
  }

  bindInterdomain(ld: Domain, a: EvtchnBindInterdomain, from: Pcpu | null): number {
    let rdom = a.remote_dom & 0xffff;
    if (rdom === DOMID_SELF) rdom = ld.domid;
    // A dying domain is still found; its ports were all closed (evtchn_destroy), so -EINVAL below.
    const rd = this.hv.lookupDomain(rdom);
    if (rd === undefined) return -ESRCH;
    const lport = ld.evtchn.freePort();
    if (lport < 0) return lport;
    const rport = a.remote_port >>> 0;
    const rchn = rd.evtchn.get(rport);
    if (rchn === undefined || rchn.state !== 'unbound' || rchn.remoteDomid !== ld.domid) return -EINVAL;
    const lchn = ld.evtchn.get(lport)!;
    lchn.state = 'interdomain';
    lchn.peer = rd;
    lchn.peerPort = rport;
    rchn.state = 'interdomain';
    rchn.peer = ld;
    rchn.peerPort = lport;
    // "We may have lost notifications on the remote unbound port. Fix that up here by
    // conservatively always setting a notification on the local port."
    this.setPending(ld, lchn.notifyVcpu, lport, from);
    a.local_port = lport;
    return 0;
  }

  bindVirq(d: Domain, a: EvtchnBindVirq): number {
    const virq = a.virq >>> 0;
    const vcpu = a.vcpu >>> 0;
    if (virq >= NR_VIRQS) return -EINVAL;
    if (virqIsGlobal(virq) && vcpu !== 0) return -EINVAL;
    if (vcpu >= d.vcpus.length) return -ENOENT;
    if (d.evtchn.virqPorts[vcpu]![virq] !== 0) return -EEXIST;
    const port = d.evtchn.freePort();
    if (port < 0) return port;
    const c = d.evtchn.get(port)!;
    c.state = 'virq';
    c.virq = virq;
    c.notifyVcpu = vcpu;
    d.evtchn.virqPorts[vcpu]![virq] = port;
    a.port = port;
    return 0;
  }

  bindIpi(d: Domain, a: EvtchnBindIpi): number {
    const vcpu = a.vcpu >>> 0;
    if (vcpu >= d.vcpus.length) return -ENOENT;
    const port = d.evtchn.freePort();
    if (port < 0) return port;
    const c = d.evtchn.get(port)!;
    c.state = 'ipi';
    c.notifyVcpu = vcpu;
    a.port = port;
    return 0;
  }

  /** EVTCHNOP_close by the guest: Xen-attached ports are refused. */
  close(d: Domain, port: number): number {
    const c = d.evtchn.get(port >>> 0);
    if (c === undefined || c.xenNotify !== null) return -EINVAL;
    return this.closePort(d, port >>> 0);
  }

  /** __evtchn_close: an interdomain peer returns to unbound, awaiting the closer's domain. */
  private closePort(d: Domain, port: number): number {
    const c = d.evtchn.get(port);
    if (c === undefined) return -EINVAL;
    switch (c.state) {
      case 'free':
      case 'reserved':
        return -EINVAL;
      case 'unbound':
      case 'ipi':
        break;
      case 'virq':
        for (const row of d.evtchn.virqPorts) if (row[c.virq] === port) row[c.virq] = 0;
        break;
      case 'interdomain': {
        const peer = c.peer!.evtchn.get(c.peerPort)!;
        if (peer.state !== 'interdomain' || peer.peer !== d) throw new Error(`d${d.domid} port ${port}: peer is not bound back (model bug)`);
        peer.state = 'unbound';
        peer.remoteDomid = d.domid;
        peer.peer = null;
        peer.peerPort = 0;
        break;
      }
    }
    // "Clear pending event to avoid unexpected behavior on re-bind."
    const fifo = d.evtchnFifo;
    if (fifo !== null) {
      fifo.forget(port);
      fifo.clearPending(port);
    } else d.sharedInfo.clearPending(port);
    reset(c);
    return 0;
  }

  /** EVTCHNOP_send from vCPU `v`. */
  send(v: Vcpu, port: number): number {
    const ld = v.domain;
    const lport = port >>> 0;
    const c = ld.evtchn.get(lport);
    if (c === undefined || c.xenNotify !== null) return -EINVAL;
    switch (c.state) {
      case 'interdomain':
        this.deliverTo(ld, lport, c, v.pcpu);
        ld.counters.notifySent++;
        return 0;
      case 'ipi':
        this.setPending(ld, c.notifyVcpu, lport, v.pcpu, ld.domid);
        ld.counters.notifySent++;
        return 0;
      case 'unbound':
        // "silently drop the notification"
        ld.counters.notifyDropped++;
        this.trace(ld.domid, lport, null, null, 'dropped');
        return 0;
      default:
        return -EINVAL;
    }
  }

  /** Whether a send on `port` of `ld` sets an event of a domain on the FIFO ABI (which send path Xen takes). */
  receiverUsesFifo(ld: Domain, port: number): boolean {
    const c = ld.evtchn.get(port >>> 0);
    if (c === undefined) return false;
    if (c.state === 'ipi') return ld.evtchnFifo !== null;
    return c.state === 'interdomain' && c.peer!.evtchnFifo !== null && c.peer!.evtchn.get(c.peerPort)?.xenNotify === null;
  }

  /** Interdomain delivery: the peer's port is set pending, or Xen consumes it (Xen-attached peer). */
  private deliverTo(ld: Domain, lport: number, c: Evtchn, from: Pcpu | null): void {
    const rd = c.peer!;
    const rchn = rd.evtchn.get(c.peerPort)!;
    if (rchn.xenNotify !== null) {
      this.trace(ld.domid, lport, rd.domid, c.peerPort, 'xen');
      rchn.xenNotify(c.peerPort, from);
      return;
    }
    this.setPending(rd, rchn.notifyVcpu, c.peerPort, from, ld.domid, lport);
  }

  status(caller: Domain, a: EvtchnStatus): number {
    const d = this.anyId(caller, a.dom & 0xffff);
    if (d === undefined) return -ESRCH;
    // evtchn_status: the port is checked before the permission (xsm_evtchn_status).
    const c = d.evtchn.get(a.port >>> 0);
    if (c === undefined) return -EINVAL;
    if (!this.mayTarget(caller, d)) return -EPERM;
    a.u = {};
    switch (c.state) {
      case 'free':
      case 'reserved':
        a.status = EVTCHNSTAT_closed;
        break;
      case 'unbound':
        a.status = EVTCHNSTAT_unbound;
        a.u.dom = c.remoteDomid;
        break;
      case 'interdomain':
        a.status = EVTCHNSTAT_interdomain;
        a.u.dom = c.peer!.domid;
        a.u.port = c.peerPort;
        break;
      case 'virq':
        a.status = EVTCHNSTAT_virq;
        a.u.virq = c.virq;
        break;
      case 'ipi':
        a.status = EVTCHNSTAT_ipi;
        break;
    }
    a.vcpu = c.notifyVcpu;
    return 0;
  }

  /** EVTCHNOP_unmask → evtchn_2l_unmask: clear the mask and re-raise the upcall if the port is pending. */
  unmask(d: Domain, port: number, from: Pcpu | null): number {
    const p = port >>> 0;
    const c = d.evtchn.get(p);
    if (c === undefined) return -EINVAL;
    const fifo = d.evtchnFifo;
    if (fifo !== null) {
      // evtchn_fifo_unmask: clear MASKED, and link the event again if it is pending.
      if (fifo.unmask(p)) this.setPending(d, c.notifyVcpu, p, from);
      return 0;
    }
    const si = d.sharedInfo;
    if (si.testAndClearMask(p) && si.isPending(p) && !si.testAndSetPendingSel(c.notifyVcpu, Math.floor(p / BITS_PER_EVTCHN_WORD))) {
      this.markEventsPending(d.vcpus[c.notifyVcpu]!, from);
    }
    return 0;
  }

  // ---- FIFO ABI (event_fifo.c) -----------------------------------------------------------

  /**
   * EVTCHNOP_init_control: map vCPU `a.vcpu`'s control block at `control_gfn` + `offset` of the
   * caller's RAM. The first call switches the domain to the FIFO ABI: every vCPU gets its 16
   * queues, the event array starts empty, bound ports keep their 2-level pending state (raised
   * again when their array page arrives) and get the default priority.
   */
  initControl(d: Domain, a: EvtchnInitControl): number {
    if (!this.hv.release.fifoEventChannels) return -ENOSYS;
    const rc = checkInitControl(a, d.vcpus.length);
    if (rc !== 0) return rc;
    const page = Number.isSafeInteger(a.control_gfn) && a.control_gfn >= 0 ? d.memory.ramPage(a.control_gfn) : null;
    if (d.evtchnFifo !== null) {
      const rc2 = d.evtchnFifo.mapControlBlock(a.vcpu >>> 0, page, a.offset >>> 0);
      if (rc2 === 0) d.evtchnFifo.mappedGfns.add(a.control_gfn);
      return rc2;
    }
    const fifo = new EvtchnFifo(d.vcpus.length);
    const r = fifo.mapControlBlock(a.vcpu >>> 0, page, a.offset >>> 0);
    if (r !== 0) return r; // evtchn_fifo_destroy: the domain stays on the 2-level ABI
    fifo.mappedGfns.add(a.control_gfn);
    fifo.setupPorts(d.evtchn.ports().map((port) => ({ port, vcpu: d.evtchn.get(port)!.notifyVcpu, pending: d.sharedInfo.isPending(port) })));
    d.evtchnFifo = fifo;
    return 0;
  }

  /** EVTCHNOP_expand_array: one more page of event words; events raised meanwhile are raised again. */
  expandArray(d: Domain, a: EvtchnExpandArray, from: Pcpu | null): number {
    if (!this.hv.release.fifoEventChannels) return -ENOSYS;
    const fifo = d.evtchnFifo;
    if (fifo === null) return -ENOSYS;
    const page = Number.isSafeInteger(a.array_gfn) && a.array_gfn >= 0 ? d.memory.ramPage(a.array_gfn) : null;
    const again = fifo.addPage(page);
    if (typeof again === 'number') return again;
    fifo.mappedGfns.add(a.array_gfn);
    for (const port of again) {
      const c = d.evtchn.get(port);
      if (c !== undefined) this.setPending(d, c.notifyVcpu, port, from);
    }
    return 0;
  }

  /** EVTCHNOP_set_priority: FIFO only (the 2-level ops have no set_priority: -ENOSYS). */
  setPriority(d: Domain, a: EvtchnSetPriority): number {
    const c = d.evtchn.get(a.port >>> 0);
    if (c === undefined) return -EINVAL;
    if (d.evtchnFifo === null) return -ENOSYS;
    return d.evtchnFifo.setPriority(a.port >>> 0, c.notifyVcpu, a.priority >>> 0);
  }

  bindVcpu(d: Domain, a: EvtchnBindVcpu): number {
    const vcpu = a.vcpu >>> 0;
    if (vcpu >= d.vcpus.length) return -ENOENT;
    const c = d.evtchn.get(a.port >>> 0);
    if (c === undefined || c.xenNotify !== null) return -EINVAL;
    switch (c.state) {
      case 'virq':
        if (!virqIsGlobal(c.virq)) return -EINVAL;
        c.notifyVcpu = vcpu;
        return 0;
      case 'unbound':
      case 'interdomain':
        c.notifyVcpu = vcpu;
        return 0;
      default:
        return -EINVAL;
    }
  }

  // ---- Xen-internal -----------------------------------------------------------------------

  /**
   * evtchn_2l_set_pending: set the pending bit (stop if it was set: no new edge); unless the
   * port is masked, set its word in the vCPU's evtchn_pending_sel and, if that bit was clear,
   * mark events pending on the vCPU.
   */
  setPending(d: Domain, vcpu: number, port: number, from: Pcpu | null, srcDomid: number | null = null, srcPort: number | null = null): void {
    const si = d.sharedInfo;
    const src = srcDomid ?? d.domid;
    const sport = srcPort ?? port;
    const fifo = d.evtchnFifo;
    if (fifo !== null) {
      const wasPending = fifo.isPending(port);
      const r = fifo.setPending(port, vcpu);
      if (r.mark) this.markEventsPending(d.vcpus[vcpu]!, from);
      // evtchn_fifo_set_pending: "if ( !was_pending ) evtchn_check_pollers(d, port)".
      if (!wasPending && r.outcome !== 'noword') this.hv.poll.checkPollers(d, port, from);
      this.trace(src, sport, d.domid, port, r.mark ? 'kicked' : r.outcome === 'masked' ? 'masked' : 'pending');
      return;
    }
    if (si.testAndSetPending(port)) {
      this.trace(src, sport, d.domid, port, 'pending');
      return;
    }
    // evtchn_2l_set_pending: a newly pending port, masked or not, is checked against pollers.
    if (si.isMasked(port)) {
      this.trace(src, sport, d.domid, port, 'masked');
      this.hv.poll.checkPollers(d, port, from);
      return;
    }
    if (!si.testAndSetPendingSel(vcpu, Math.floor(port / BITS_PER_EVTCHN_WORD))) this.markEventsPending(d.vcpus[vcpu]!, from);
    this.trace(src, sport, d.domid, port, 'kicked');
    this.hv.poll.checkPollers(d, port, from);
  }

  /** vcpu_mark_events_pending: on the 0→1 edge of evtchn_upcall_pending, the vCPU takes an upcall. */
  private markEventsPending(v: Vcpu, from: Pcpu | null): void {
    if (v.domain.sharedInfo.testAndSetUpcallPending(v.id)) return;
    // vcpu_kick → vcpu_unblock: a vCPU polling in Xen returns to take the upcall.
    this.hv.poll.unblock(v, from);
    this.hv.intr.kickUpcall(v, from);
  }

  /**
   * alloc_unbound_xen_event_channel: a port of `d` that `remoteDomid` may bind and whose
   * incoming notifications Xen consumes with `notify` (ioreq servers use one per vCPU).
   */
  allocXenPort(d: Domain, vcpu: number, remoteDomid: number, notify: XenNotify): number {
    const port = d.evtchn.freePort();
    if (port < 0) return port;
    const c = d.evtchn.get(port)!;
    c.state = 'unbound';
    c.remoteDomid = remoteDomid;
    c.notifyVcpu = vcpu;
    c.xenNotify = notify;
    return port;
  }

  /** free_xen_event_channel. */
  freeXenPort(d: Domain, port: number): void {
    if (d.evtchn.get(port)?.xenNotify === null) throw new Error(`d${d.domid} port ${port} is not Xen-attached (model bug)`);
    this.closePort(d, port);
  }

  /** notify_via_xen_event_channel: Xen signals the peer of one of its ports (dropped while unbound). */
  notifyViaXenPort(d: Domain, port: number, from: Pcpu | null): void {
    const c = d.evtchn.get(port);
    if (c === undefined || c.xenNotify === null) throw new Error(`d${d.domid} port ${port} is not Xen-attached (model bug)`);
    if (c.state === 'interdomain') this.deliverTo(d, port, c, from);
    else this.trace(d.domid, port, null, null, 'dropped');
  }

  /** send_guest_vcpu_virq / send_guest_global_virq: raise a VIRQ if the domain bound it. */
  raiseVirq(d: Domain, virq: number, vcpu = 0): void {
    const port = d.evtchn.virqPorts[vcpu]?.[virq] ?? 0;
    if (port === 0) return;
    this.setPending(d, d.evtchn.get(port)!.notifyVcpu, port, null);
  }

  /** evtchn_destroy: close every port of a dying domain, Xen-attached ones included. */
  closeAll(d: Domain): void {
    for (const p of d.evtchn.ports()) if (d.evtchn.get(p)!.state !== 'reserved') this.closePort(d, p);
  }

  private trace(
    domid: number,
    port: number,
    remoteDomid: number | null,
    remotePort: number | null,
    outcome: 'kicked' | 'pending' | 'masked' | 'dropped' | 'xen',
  ): void {
    const t = this.hv.env.trace;
    if (t.enabled(TP_NOTIFY)) t.emit(TP_NOTIFY, { domid, port, remoteDomid, remotePort, outcome });
  }
}
