import { Deque, type Env, type ProcessGenerator } from '../../sim/index.js';
import {
  GSO_NONE,
  GSO_TCPV4,
  NO_OFFLOADS,
  Packet,
  csumToNetif,
  type DeviceFeatures,
  type DeviceUpper,
  type MacAddr,
  type Napi,
  type NetDevice,
  type PacketBuffer,
  type PacketFrag,
  type PacketMemory,
} from '../../net/index.js';
import {
  NETIF_RSP_NULL,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  netifExtraInfoCodec,
  type NetifRxRequest,
  type NetifRxResponse,
  type NetifTxRequest,
  type NetifTxResponse,
} from '../../xen/abi/index.js';
import type { FrontRing, Vcpu } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { TP_FRAME_STEP, TP_RX_DELIVER, TP_TX_START, frameHeaders } from '../trace-points.js';
import { checksumSetup } from './checksum-setup.js';
import type { PvCosts } from './costs.js';

/** MAX_SKB_FRAGS for 4 KiB pages (65536 / PAGE_SIZE + 1): xennet_start_xmit's limit is MAX_SKB_FRAGS + 1 slots. */
export const MAX_SKB_FRAGS = 17;
/** netfront_tx_slot_available: the queue stops while fewer than MAX_SKB_FRAGS + 2 slots are free. */
const TX_STOP_FREE = MAX_SKB_FRAGS + 2;

/** What netfront counts (ethtool -S and netdev stats, reduced). */
export interface NetfrontStats {
  txPackets: number;
  txBytes: number;
  txSlots: number;
  /** Packets dropped by xennet_start_xmit (no carrier, too many slots, not in guest memory). */
  txDropped: number;
  /** Times the queue was stopped (netif_tx_stop_queue) and woken. */
  txStops: number;
  txWakes: number;
  /** TX responses with an error status. */
  txErrors: number;
  rxPackets: number;
  rxBytes: number;
  rxSlots: number;
  rxErrors: number;
  /** Event-channel notifications sent to the backend, by ring. */
  txNotify: number;
  rxNotify: number;
  /** Interrupts taken from the backend. */
  irqs: number;
  /** Payload bytes netfront itself copied (always 0: it grants the stack's own pages). */
  copiedBytes: number;
}

/** One TX slot in flight: its id's grant and the packet it is part of. */
interface TxSlot {
  gref: number;
  pkt: TxPacket | null;
}

interface TxPacket {
  pkt: Packet;
  /** Slots of this packet not yet answered. */
  left: number;
}

interface RxSlot {
  buf: PacketBuffer;
  gref: number;
}

/** The rings and ports a connected netfront uses (set up by the xenbus side, netfront-xenbus.ts). */
export interface NetfrontRings {
  tx: FrontRing<NetifTxRequest, NetifTxResponse>;
  rx: FrontRing<NetifRxRequest, NetifRxResponse>;
  /** Ports for TX and RX notifications (the same port without split event channels). */
  txPort: number;
  rxPort: number;
  backendId: number;
  /** What the backend offered. */
  sg: boolean;
  gsoTcpv4: boolean;
}

/**
 * Linux 3.18's xen-netfront data path (drivers/net/xen-netfront.c), one queue: a NetDevice in
 * the guest whose TX grants the pages the stack's packets already live in (read-only, one
 * slot per page piece, the GSO extra-info slot after the first, NETTXF_csum_blank /
 * data_validated from the packet's checksum state), and whose RX ring keeps NET_RX_RING_SIZE
 * (256) pages of the guest posted to the backend with write grants (xennet_alloc_rx_buffers
 * with rx_target at its maximum), taken back by the NAPI poll (xennet_poll). The guest never
 * copies payload: the backend's grant copies fill and drain its pages.
 */
export class Netfront implements NetDevice {
  readonly mtu = 1500;
  features: DeviceFeatures = NO_OFFLOADS;
  readonly stats: NetfrontStats = {
    txPackets: 0,
    txBytes: 0,
    txSlots: 0,
    txDropped: 0,
    txStops: 0,
    txWakes: 0,
    txErrors: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxSlots: 0,
    rxErrors: 0,
    txNotify: 0,
    rxNotify: 0,
    irqs: 0,
    copiedBytes: 0,
  };
  readonly napi: Napi;
  private upper: DeviceUpper | null = null;
  private r: NetfrontRings | null = null;
  /** netif_carrier_ok. */
  carrier = false;
  private stopped = false;
  private readonly txSlots: TxSlot[] = [];
  private readonly txFreeIds: number[] = [];
  private readonly rxSlots: (RxSlot | null)[] = new Array<RxSlot | null>(NET_RX_RING_SIZE).fill(null);
  /** Grant refs reserved for the rings' buffers (gnttab_alloc_grant_references, gref_tx_head / gref_rx_head). */
  private readonly txRefs: number[] = [];
  private readonly rxRefs: number[] = [];
  /** Buffers from extra-info slots, to post again (xennet_move_rx_slot). */
  private readonly rxRecycle: RxSlot[] = [];
  /** Accepted packets waiting for the guest CPU to write their requests, and the slots they reserve. */
  private readonly pipeline = new Deque<{ pkt: Packet; slots: number }>();
  private reserved = 0;
  private pumping = false;
  private polled = 0;

  constructor(
    private readonly env: Env,
    readonly name: string,
    readonly mac: MacAddr,
    private readonly xg: XenGuest,
    private readonly vcpu: Vcpu,
    private readonly costs: PvCosts,
    /** The guest's packet memory: the pages posted for RX come from it. */
    private readonly memory: PacketMemory,
  ) {
    for (let id = 0; id < NET_TX_RING_SIZE; id++) {
      this.txSlots.push({ gref: -1, pkt: null });
      this.txFreeIds.push(NET_TX_RING_SIZE - 1 - id);
    }
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
    // Connected before the stack took the device: the poll can run now, and the ring may wait for buffers.
    if (this.r !== null) {
      this.refillSoon();
      // xennet_open: responses that came before the device was up (their event found no NAPI) are polled now.
      const n = this.r.rx.unconsumedResponses();
      if (typeof n !== 'number' || n > 0) upper.napiSchedule(this.napi);
    }
  }

  get rings(): NetfrontRings | null {
    return this.r;
  }

  /** Slots of the TX ring not yet answered (what a full ring stops on). */
  get txInFlight(): number {
    return this.r === null ? 0 : NET_TX_RING_SIZE - this.r.tx.freeRequests();
  }

  /** RX buffers posted to the backend now. */
  get rxPosted(): number {
    return this.rxSlots.reduce((n, s) => n + (s === null ? 0 : 1), 0);
  }

  /** @internal The xenbus side reserves the grant refs before it connects (3.18: setup_netfront's gnttab_alloc_grant_references). */
  reserveRefs(tx: number[], rx: number[]): void {
    this.txRefs.push(...tx);
    this.rxRefs.push(...rx);
  }

  /**
   * xennet_connect's data-path half: the rings are set up; features follow what the backend
   * offered (xennet_fix_features: SG without feature-sg is dropped, TSO without
   * feature-gso-tcpv4), the carrier goes on and the RX ring is filled.
   */
  *connect(r: NetfrontRings): ProcessGenerator<void> {
    this.r = r;
    this.features = { ...NO_OFFLOADS, txCsum: true, rxCsum: true, sg: r.sg, tso: r.sg && r.gsoTcpv4, lro: true };
    this.carrier = true;
    yield* this.allocRxBuffers();
    // xennet_connect: notify_remote_via_irq on the TX (and RX) channel, so a backend that
    // missed requests looks again.
    yield* this.notify(r.txPort, 'tx');
    if (r.rxPort !== r.txPort) yield* this.notify(r.rxPort, 'rx');
  }

  // ---- TX ------------------------------------------------------------------------------------

  /** Slots a packet needs: one per page piece of each fragment, plus the GSO extra (xennet_count_skb_frag_slots). */
  private slotsFor(frags: readonly PacketFrag[], gso: boolean): number {
    let n = gso ? 1 : 0;
    for (const f of frags) {
      const start = f.buf.offset + f.bufOffset;
      n += Math.ceil(((start % PAGE_SIZE) + f.len) / PAGE_SIZE);
    }
    return n;
  }

  /**
   * xennet_start_xmit: without carrier, or a packet of more than MAX_SKB_FRAGS + 1 slots
   * (3.18 would skb_linearize it, a copy this model refuses to hide), the packet is dropped
   * and counted. A stopped queue or a ring without room refuses it (netif_tx_stop_queue);
   * the stack waits for wake(). Otherwise the packet's requests are written on the guest CPU
   * (pump) in order.
   */
  xmit(pkt: Packet): boolean {
    const r = this.r;
    const frags = pkt.fragments();
    const gso = pkt.gsoType !== GSO_NONE;
    if (r === null || !this.carrier || frags === null || frags.some((f) => f.buf.domid !== this.xg.domid)) {
      this.stats.txDropped++;
      pkt.release();
      return true;
    }
    const slots = this.slotsFor(frags, gso);
    if (slots - (gso ? 1 : 0) > MAX_SKB_FRAGS + 1 || (slots - (gso ? 1 : 0) > 1 && !r.sg)) {
      this.stats.txDropped++;
      pkt.release();
      return true;
    }
    if (this.stopped || r.tx.freeRequests() - this.reserved < slots) {
      if (!this.stopped) this.stats.txStops++;
      this.stopped = true;
      return false;
    }
    this.reserved += slots;
    this.pipeline.push({ pkt, slots });
    const tr = this.env.trace;
    if (tr.enabled(TP_TX_START))
      tr.emit(TP_TX_START, { path: 'pv', domid: this.xg.domid, dev: this.name, len: pkt.length, vcpu: this.vcpu.name, frame: pkt.data });
    if (r.tx.freeRequests() - this.reserved < TX_STOP_FREE) {
      this.stopped = true;
      this.stats.txStops++;
    }
    if (!this.pumping) {
      this.pumping = true;
      this.env.process(this.pump(), `${this.name}:xmit`);
    }
    return true;
  }

  /** The guest CPU writing each accepted packet's requests, pushing them and notifying when the ring asks. */
  private *pump(): ProcessGenerator<void> {
    const c = this.costs;
    for (;;) {
      const e = this.pipeline.shift();
      const r = this.r;
      if (e === undefined || r === null) break;
      yield this.vcpu.exec(c.frontTxPacket + c.frontTxSlot * e.slots, 'softirq');
      this.reserved -= e.slots;
      if (this.r !== r || !this.carrier) {
        this.stats.txDropped++;
        e.pkt.release();
        continue;
      }
      this.writeTx(r, e.pkt, e.slots);
      const tr = this.env.trace;
      if (tr.enabled(TP_FRAME_STEP))
        tr.emit(TP_FRAME_STEP, {
          path: 'pv',
          domid: this.xg.domid,
          vcpu: this.vcpu.name,
          step: 'netfront TX requests',
          len: e.pkt.length,
          frame: e.pkt.data,
        });
      if (r.tx.pushRequestsAndCheckNotify()) {
        // The backend may answer (and the packet go) before the notify returns: its headers, kept.
        const followed = tr.enabled(TP_FRAME_STEP) ? { len: e.pkt.length, frame: frameHeaders(e.pkt.data) } : null;
        yield* this.notify(r.txPort, 'tx');
        if (followed !== null)
          tr.emit(TP_FRAME_STEP, { path: 'pv', domid: this.xg.domid, vcpu: this.vcpu.name, step: 'netfront TX notify', ...followed });
      }
      // xennet_start_xmit calls xennet_tx_buf_gc after the push.
      yield* this.txGc();
    }
    this.pumping = false;
  }

  /** The requests of one packet: first slot (size = whole packet), the GSO extra, then the rest with more_data chaining. */
  private writeTx(r: NetfrontRings, pkt: Packet, slots: number): void {
    const tp: TxPacket = { pkt, left: 0 };
    const pieces: { gfn: number; offset: number; len: number }[] = [];
    for (const f of pkt.fragments()!) {
      let at = f.buf.offset + f.bufOffset;
      let left = f.len;
      while (left > 0) {
        const off = at % PAGE_SIZE;
        const n = Math.min(left, PAGE_SIZE - off);
        pieces.push({ gfn: f.buf.gfn + Math.floor(at / PAGE_SIZE), offset: off, len: n });
        at += n;
        left -= n;
      }
    }
    const { csumBlank, dataValidated } = csumToNetif(pkt.csum);
    const gso = pkt.gsoType === GSO_TCPV4;
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      const id = this.txFreeIds.pop()!;
      const gref = this.txRefs.pop()!;
      this.xg.gnttab.grantAccessRef(gref, r.backendId, p.gfn, true);
      this.txSlots[id] = { gref, pkt: tp };
      tp.left++;
      let flags = i + 1 < pieces.length ? NETTXF_more_data : 0;
      if (i === 0) {
        if (csumBlank) flags |= NETTXF_csum_blank;
        if (dataValidated) flags |= NETTXF_data_validated;
        if (gso) flags |= NETTXF_extra_info;
      }
      r.tx.putRequest({ gref, offset: p.offset, flags, id, size: i === 0 ? pkt.length : p.len });
      if (i === 0 && gso) {
        r.tx.putRequestAs(netifExtraInfoCodec, {
          type: XEN_NETIF_EXTRA_TYPE_GSO,
          flags: 0,
          gso: { size: pkt.gsoSize, type: XEN_NETIF_GSO_TYPE_TCPV4, pad: 0, features: 0 },
        });
      }
    }
    this.stats.txPackets++;
    this.stats.txBytes += pkt.length;
    this.stats.txSlots += slots;
  }

  /**
   * xennet_tx_buf_gc: takes every TX response (skipping the NULL ones of extra slots), ends
   * its grant (the backend has finished with it: a grant still in use is Linux's BUG(), here
   * a counted error), frees the id and the packet once all its slots are answered; then asks
   * for an event half-way through what is outstanding (rsp_event = prod + (req_prod − prod)/2
   * + 1) and looks again; finally xennet_maybe_wake_tx.
   */
  *txGc(): ProcessGenerator<void> {
    const r = this.r;
    if (r === null) return;
    const c = this.costs;
    let prod: number;
    do {
      const p = r.tx.responseProd();
      if (typeof p !== 'number') {
        this.stats.txErrors++;
        return;
      }
      prod = p;
      let n = 0;
      for (let cons = r.tx.rspCons; cons !== prod; cons = (cons + 1) >>> 0) {
        const rsp = r.tx.copyResponse(cons);
        if (rsp.status === NETIF_RSP_NULL) continue;
        n++;
        if (rsp.status < 0) this.stats.txErrors++;
        const slot = this.txSlots[rsp.id];
        if (slot === undefined || slot.pkt === null) {
          this.stats.txErrors++;
          continue;
        }
        if (!this.xg.gnttab.endAccessRef(slot.gref)) this.stats.txErrors++;
        this.txRefs.push(slot.gref);
        const tp = slot.pkt;
        this.txSlots[rsp.id] = { gref: -1, pkt: null };
        this.txFreeIds.push(rsp.id);
        if (--tp.left === 0) tp.pkt.release();
      }
      r.tx.rspCons = prod;
      if (n > 0) yield this.vcpu.exec(c.frontTxResponse * n, 'irq');
      r.tx.sring.rspEvent = (prod + ((r.tx.sring.reqProd - prod) >>> 1) + 1) >>> 0;
    } while (prod !== r.tx.sring.rspProd);
    this.maybeWakeTx(r);
  }

  private maybeWakeTx(r: NetfrontRings): void {
    if (this.stopped && r.tx.freeRequests() - this.reserved >= TX_STOP_FREE) {
      this.stopped = false;
      this.stats.txWakes++;
      this.upper?.wake();
    }
  }

  // ---- interrupts ----------------------------------------------------------------------------

  /** xennet_tx_interrupt (split channels) or the TX half of xennet_interrupt. */
  *txInterrupt(): ProcessGenerator<void> {
    this.stats.irqs++;
    yield* this.txGc();
  }

  /** xennet_rx_interrupt: schedule the NAPI poll if responses wait. */
  rxInterrupt(): void {
    this.stats.irqs++;
    const r = this.r;
    if (r === null || !this.carrier) return;
    const n = r.rx.unconsumedResponses();
    if (typeof n !== 'number' || n > 0) this.upper?.napiSchedule(this.napi);
  }

  // ---- RX ------------------------------------------------------------------------------------

  /**
   * One packet of xennet_poll (xennet_get_responses, xennet_get_extras, xennet_fill_frags):
   * its first response, a GSO extra if flagged (that slot's buffer goes back to the ring), then
   * its data slots while more_data, each grant ended and its page handed up as a fragment of
   * the packet, in place. A bad response (negative status, offset + size past the page, a
   * chain that runs off the produced responses) drops the packet and counts it.
   */
  private poll(): Packet | undefined {
    const r = this.r;
    if (r === null) return undefined;
    for (;;) {
      const prod = r.rx.responseProd();
      if (typeof prod !== 'number') {
        this.stats.rxErrors++;
        return undefined;
      }
      const cons = r.rx.rspCons;
      if (cons === prod) return undefined;
      const first = r.rx.copyResponse(cons);
      const hasExtra = (first.flags & NETRXF_extra_info) !== 0;
      // The data slots: cons, then (after the extra's slot when there is one) one by one.
      const next = (i: number): number => (i + (hasExtra && i === cons ? 2 : 1)) >>> 0;
      let err = false;
      let gsoSize = 0;
      let slots = 0;
      const frags: PacketFrag[] = [];
      let rsp: NetifRxResponse = first;
      if (hasExtra) {
        const xi = (cons + 1) >>> 0;
        if (xi === prod) return undefined; // the extra is not there yet ("Missing extra info")
        const extra = r.rx.copyResponseAs(xi, netifExtraInfoCodec);
        if ('gso' in extra && extra.gso.type === XEN_NETIF_GSO_TYPE_TCPV4 && extra.gso.size > 0) gsoSize = extra.gso.size;
        else err = true;
        // xennet_move_rx_slot: the extra's page (unused, still granted) goes back to the ring as it is.
        const s = this.takeRx(xi, false);
        if (s !== null) this.rxRecycle.push(s);
      }
      let idx = cons;
      let end = -1;
      for (;;) {
        slots++;
        const s = this.takeRx(idx);
        if (s === null || rsp.status < 0 || rsp.offset + rsp.status > PAGE_SIZE) {
          err = true;
          if (s !== null) s.buf.put();
        } else frags.push({ buf: s.buf, bufOffset: rsp.offset, len: rsp.status });
        if ((rsp.flags & NETRXF_more_data) === 0) break;
        const n = next(idx);
        if (n === prod) {
          err = true; // "Need more slots"
          end = n;
          break;
        }
        idx = n;
        rsp = r.rx.copyResponse(idx);
      }
      r.rx.rspCons = end >= 0 ? end : next(idx);
      this.stats.rxSlots += slots;
      this.polled += slots;
      this.vcpu.exec(this.costs.frontRxPacket + this.costs.frontRxSlot * slots, 'softirq');
      if (this.polled >= NET_RX_RING_SIZE / 4) this.refillSoon();
      if (err || frags.length === 0) {
        for (const f of frags) f.buf.put();
        this.stats.rxErrors++;
        continue;
      }
      const pkt = Packet.fromFrags(frags);
      if (!checksumSetup(pkt, (first.flags & NETRXF_csum_blank) !== 0, (first.flags & NETRXF_data_validated) !== 0)) {
        pkt.release();
        this.stats.rxErrors++;
        continue;
      }
      if (gsoSize > 0) {
        pkt.gsoType = GSO_TCPV4;
        pkt.gsoSize = gsoSize;
      }
      this.stats.rxPackets++;
      this.stats.rxBytes += pkt.length;
      const tr = this.env.trace;
      if (tr.enabled(TP_RX_DELIVER))
        tr.emit(TP_RX_DELIVER, { path: 'pv', domid: this.xg.domid, dev: this.name, len: pkt.length, vcpu: this.vcpu.name, frame: pkt.data });
      return pkt;
    }
  }

  /** The buffer posted at ring index `idx`, its grant ended unless `end` is false (the backend is done with it). */
  private takeRx(idx: number, end = true): RxSlot | null {
    const i = idx & (NET_RX_RING_SIZE - 1);
    const s = this.rxSlots[i] ?? null;
    this.rxSlots[i] = null;
    if (s === null || !end) return s;
    if (!this.xg.gnttab.endAccessRef(s.gref)) {
      // Still in use by the backend (Linux BUG()s): the page cannot be reused; leak it, counted.
      this.stats.rxErrors++;
      return null;
    }
    this.rxRefs.push(s.gref);
    return s;
  }

  /** napi_complete, the refill, then RING_FINAL_CHECK_FOR_RESPONSES: poll again if more came. */
  private complete(): void {
    const r = this.r;
    if (r === null) return;
    this.refillSoon();
    const more = r.rx.finalCheckForResponses();
    if (typeof more !== 'number' || more > 0) this.upper?.napiSchedule(this.napi);
  }

  private refilling = false;
  private refillSoon(): void {
    this.polled = 0;
    if (this.refilling) return;
    this.refilling = true;
    this.env.process(
      (function* (self: Netfront): ProcessGenerator<void> {
        yield* self.allocRxBuffers();
        self.refilling = false;
      })(this),
      `${this.name}:refill`,
    );
  }

  /**
   * xennet_alloc_rx_buffers: posts a page of the guest's memory, granted writable to the
   * backend, in every free RX slot, then pushes and notifies if the backend asked (it sets
   * req_event when it waits for buffers; feature-rx-notify).
   */
  private *allocRxBuffers(): ProcessGenerator<void> {
    const r = this.r;
    if (r === null || !this.carrier) return;
    let n = 0;
    while (r.rx.freeRequests() > 0) {
      const idx = r.rx.reqProdPvt;
      let s = this.rxRecycle.pop() ?? null;
      if (s === null) {
        const buf = this.memory.alloc(PAGE_SIZE);
        const gref = this.rxRefs.pop()!;
        this.xg.gnttab.grantAccessRef(gref, r.backendId, buf.gfn, false);
        s = { buf, gref };
      }
      this.rxSlots[idx & (NET_RX_RING_SIZE - 1)] = s;
      r.rx.putRequest({ id: idx & (NET_RX_RING_SIZE - 1), gref: s.gref });
      n++;
    }
    if (n === 0) return;
    if (r.rx.pushRequestsAndCheckNotify()) yield* this.notify(r.rxPort, 'rx');
  }

  private *notify(port: number, which: 'tx' | 'rx'): ProcessGenerator<void> {
    if (which === 'tx') this.stats.txNotify++;
    else this.stats.rxNotify++;
    yield* this.xg.evtchn.notify(this.vcpu, port);
  }

  // ---- teardown ------------------------------------------------------------------------------

  /**
   * xennet_disconnect_backend's data-path half (xennet_release_tx_bufs, xennet_release_rx_bufs):
   * carrier off, every outstanding TX packet freed and every posted RX page taken back, their
   * grants ended and refs returned. Returns the refs (for the xenbus side to free).
   */
  disconnect(): { refs: number[]; leaked: number } {
    this.carrier = false;
    this.r = null;
    let leaked = 0;
    for (let e = this.pipeline.shift(); e !== undefined; e = this.pipeline.shift()) e.pkt.release();
    this.reserved = 0;
    for (let id = 0; id < this.txSlots.length; id++) {
      const s = this.txSlots[id]!;
      if (s.pkt === null) continue;
      if (!this.xg.gnttab.endAccessRef(s.gref)) leaked++;
      else this.txRefs.push(s.gref);
      this.txSlots[id] = { gref: -1, pkt: null };
      this.txFreeIds.push(id);
      if (--s.pkt.left === 0) s.pkt.pkt.release();
    }
    for (let i = 0; i < this.rxSlots.length; i++) {
      const s = this.rxSlots[i];
      if (s === null || s === undefined) continue;
      this.rxSlots[i] = null;
      if (!this.xg.gnttab.endAccessRef(s.gref)) leaked++;
      else {
        this.rxRefs.push(s.gref);
        s.buf.put();
      }
    }
    for (const s of this.rxRecycle.splice(0)) {
      if (!this.xg.gnttab.endAccessRef(s.gref)) leaked++;
      else {
        this.rxRefs.push(s.gref);
        s.buf.put();
      }
    }
    const refs = [...this.txRefs.splice(0), ...this.rxRefs.splice(0)];
    if (this.stopped) {
      this.stopped = false;
    }
    return { refs, leaked };
  }
}
