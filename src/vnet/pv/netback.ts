import { Deque, type Env, type KernelThread, type ProcessGenerator } from '../../sim/index.js';
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
  type PacketFrag,
} from '../../net/index.js';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTST_okay,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
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
import { RingError, type BackRing, type GnttabCopy, type Vcpu } from '../../xen/index.js';
import { gnttabBatchCopy, type XenGuest } from '../../xen/guest/index.js';
import { PacketMemoryExhausted, type GuestPacketMemory } from '../packet-memory.js';
import { checksumSetup } from './checksum-setup.js';
import { takeTxRequests } from './tx-requests.js';
import { TP_FRAME_STEP, frameHeaders } from '../trace-points.js';
import type { PvCosts } from './costs.js';

/** XENVIF_NAPI_WEIGHT: packets one xenvif_poll may build. */
export const XENVIF_NAPI_WEIGHT = 64;
/**
 * XENVIF_RX_QUEUE_BYTES (common.h, Linux 3.18: XEN_NETIF_RX_RING_SIZE / 2 pages, 512 KiB): the
 * bound on the internal guest-Rx queue, in bytes, from f48da8b14d04 ("xen-netback: fix
 * unlimited guest Rx internal queue and carrier flapping", 3.18): a frame is queued, and the
 * host's transmit queue stops once the queue holds more than this; it wakes below it.
 */
export const XENVIF_RX_QUEUE_BYTES = (NET_RX_RING_SIZE / 2) * PAGE_SIZE;

/** What the vif counts (its netdev stats and netback's own). */
export interface VifStats {
  /** Frames from the guest handed to the bridge, and their bytes. */
  txFrames: number;
  txBytes: number;
  txSlots: number;
  /** Frames from the guest dropped with NETIF_RSP_ERROR (bad grant, too many slots, size errors). */
  txErrors: number;
  /** xenvif_fatal_tx_err: the frontend misbehaved and the vif was disabled. */
  fatalErrors: number;
  /** Frames copied into the guest, their bytes and slots. */
  rxFrames: number;
  rxBytes: number;
  rxSlots: number;
  /** Frames for the guest dropped (no carrier, the vif disabled). */
  rxDropped: number;
  /** Frames for the guest dropped because their bytes are neither in Dom0's pages nor in a granted page: nothing a grant copy can name (a device that DMAs must use Dom0's packet memory). */
  rxForeign: number;
  rxErrors: number;
  /** GNTTABOP_copy ops issued for TX and RX. */
  txCopyOps: number;
  rxCopyOps: number;
  /** Notifications sent to the frontend, by ring; interrupts taken from it. */
  txNotify: number;
  rxNotify: number;
  irqs: number;
  /** xenvif_poll rounds. */
  txPolls: number;
}

/** The frontend's rings as Dom0 mapped them, and the ports bound to it. */
export interface VifRings {
  tx: BackRing<NetifTxRequest, NetifTxResponse>;
  rx: BackRing<NetifRxRequest, NetifRxResponse>;
  txPort: number;
  rxPort: number;
  /** What the frontend asked for (read_xenbus_vif_flags). */
  canSg: boolean;
  gsoTcpv4: boolean;
  ipCsum: boolean;
}

/** One packet xenvif_tx_build_gops took from the ring, waiting for its copies. */
interface TxBuilt {
  pkt: Packet;
  /** Requests to answer in order, and whether each is followed by an extra slot (a NULL response). */
  reqs: { id: number; extras: number }[];
  op0: number;
  op1: number;
  csumBlank: boolean;
  dataValidated: boolean;
  gsoSize: number;
}

/**
 * Linux 3.18's xen-netback (drivers/net/xen-netback/netback.c, interface.c), one queue: the
 * vif `vif<domid>.<devid>`, a NetDevice of Dom0's kernel on a bridge.
 *
 * TX (guest → Dom0): the TX event's handler (xenvif_tx_interrupt) schedules the queue's NAPI
 * poll (xenvif_poll → xenvif_tx_action) in Dom0's softirq on the vCPU that took the event:
 * xenvif_tx_build_gops takes up to XENVIF_NAPI_WEIGHT packets off the ring, each request
 * copied out once and checked as 3.18 checks it, and one batched GNTTABOP_copy brings them
 * into Dom0 buffers; the packets then go up to the bridge through the same NAPI context.
 * Deviation from 3.18 (stated): 3.18 grant-copies only the first XEN_NETBACK_TX_COPY_LEN
 * (128) bytes and grant-maps the rest, unmapped later by the dealloc kthread; this model
 * grant-copies whole frames (as netback did before 3.15), so there is no dealloc thread, the
 * responses go out once the copy is done, and TX costs a copy per slot instead of a map and
 * unmap per page.
 *
 * RX (Dom0 → guest): xenvif_start_xmit queues the frame and kicks the queue's guest-RX
 * kthread (xenvif_kthread_guest_rx on a Dom0 vCPU), whose xenvif_rx_action copies queued
 * frames into the pages the frontend posted with one batched GNTTABOP_copy, writes the
 * responses (GSO extra after the first, more_data chaining) and notifies per the ring rule.
 */
export class Vif implements NetDevice {
  readonly mtu = 1500;
  /** fe:ff:ff:ff:ff:ff, as xenvif_alloc gives every vif. */
  readonly mac: MacAddr = 0xfe_ff_ff_ff_ff_ff;
  features: DeviceFeatures = NO_OFFLOADS;
  readonly stats: VifStats = {
    txFrames: 0,
    txBytes: 0,
    txSlots: 0,
    txErrors: 0,
    fatalErrors: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxSlots: 0,
    rxDropped: 0,
    rxForeign: 0,
    rxErrors: 0,
    txCopyOps: 0,
    rxCopyOps: 0,
    txNotify: 0,
    rxNotify: 0,
    irqs: 0,
    txPolls: 0,
  };
  /** Why the vif was disabled (xenvif_fatal_tx_err's netdev_err message), or null. */
  fatal: string | null = null;
  readonly napi: Napi;
  private upper: DeviceUpper | null = null;
  private r: VifRings | null = null;
  /** vif->disabled, and the carrier (netif_carrier_ok). */
  disabled = false;
  carrier = false;
  /** Frames built by xenvif_tx_action, going up through the NAPI poll. */
  private readonly up = new Deque<Packet>();
  private txRunning = false;
  /** queue->rx_queue, and rx_last_skb_slots. */
  private readonly rxQueue = new Deque<Packet>();
  /** queue->rx_queue_len: bytes queued. */
  private rxQueueBytes = 0;
  private rxLastSlots = 0;
  private rxStopped = false;
  private thread: KernelThread | null = null;
  private threadVcpu: Vcpu | null = null;
  private stopping = false;
  /** Told when the carrier goes off (the bridge port follows it). */
  onCarrierOff: () => void = () => undefined;

  constructor(
    private readonly env: Env,
    readonly name: string,
    readonly frontendId: number,
    private readonly dom0: XenGuest,
    private readonly dom0Mem: GuestPacketMemory,
    private readonly costs: PvCosts,
  ) {
    this.napi = { poll: () => this.up.shift(), complete: () => undefined };
  }

  attach(upper: DeviceUpper): void {
    this.upper = upper;
  }

  get rings(): VifRings | null {
    return this.r;
  }

  /** Frames waiting for the guest's RX ring. */
  get rxQueued(): number {
    return this.rxQueue.length;
  }

  /**
   * xenvif_connect's data-path half: rings mapped and ports bound by the xenbus side; the
   * features follow the frontend's requests (xenvif_fix_features); the guest-RX kthread runs.
   */
  connect(r: VifRings, thread: KernelThread, threadVcpu: Vcpu): void {
    this.r = r;
    this.features = { ...NO_OFFLOADS, txCsum: r.ipCsum, sg: r.canSg, tso: r.canSg && r.gsoTcpv4, rxCsum: true, lro: true };
    this.thread = thread;
    this.threadVcpu = threadVcpu;
    this.carrier = true;
    this.stopping = false;
    this.env.process(this.guestRxThread(thread, threadVcpu), thread.name);
  }

  // ---- events from the frontend --------------------------------------------------------------

  /** xenvif_tx_interrupt: schedule the TX NAPI poll on the vCPU that took the event. */
  txInterrupt(v: Vcpu): void {
    this.stats.irqs++;
    if (this.r === null || this.txRunning || this.disabled) return;
    this.txRunning = true;
    this.env.process(this.txPoll(v), `${this.name}:napi`);
  }

  /** xenvif_rx_interrupt: the frontend posted buffers; wake the guest-RX kthread. */
  rxInterrupt(): void {
    this.stats.irqs++;
    this.thread?.wake();
  }

  /** xenvif_interrupt (one channel for both rings). */
  interrupt(v: Vcpu): void {
    this.txInterrupt(v);
    this.thread?.wake();
  }

  /** xenvif_fatal_tx_err: log, disable the vif; queue 0's kthread turns the carrier off. */
  private fatalTxErr(message: string): void {
    if (this.fatal === null) this.fatal = message;
    this.stats.fatalErrors++;
    this.disabled = true;
    this.thread?.wake();
  }

  // ---- TX: guest → Dom0 (xenvif_poll) --------------------------------------------------------

  /**
   * xenvif_poll: xenvif_tx_action up to the NAPI weight, the frames up to the bridge; fewer
   * than the weight → napi_complete and xenvif_napi_schedule_or_enable_events
   * (RING_FINAL_CHECK_FOR_REQUESTS), else poll again.
   */
  private *txPoll(v: Vcpu): ProcessGenerator<void> {
    for (;;) {
      const r = this.r;
      if (r === null || this.disabled) break;
      this.stats.txPolls++;
      const done = yield* this.txAction(r, v, XENVIF_NAPI_WEIGHT);
      if (this.up.length > 0) this.upper?.napiSchedule(this.napi);
      if (done >= XENVIF_NAPI_WEIGHT) continue;
      if (this.r !== r || this.disabled) break;
      const more = r.tx.finalCheckForRequests();
      if (more instanceof RingError) {
        this.fatalTxErr(`Impossible number of requests. req_prod ${more.prod}, req_cons ${r.tx.reqCons}, size ${NET_TX_RING_SIZE}`);
        break;
      }
      if (more === 0) break;
    }
    this.txRunning = false;
  }

  /** xenvif_tx_err: an ERROR response for each request of a dropped packet (NULL for its extras), and req_cons past them. */
  private txErr(r: VifRings, reqs: { id: number; extras: number }[], end: number): void {
    r.tx.reqCons = end;
    for (const q of reqs) this.makeTxResponse(r, q.id, NETIF_RSP_ERROR, q.extras);
    this.stats.txErrors++;
  }

  /** make_tx_response: the response in the next slot, and a NULL one for each extra-info slot that followed the request. */
  private makeTxResponse(r: VifRings, id: number, status: number, extras: number): void {
    r.tx.putResponse({ id, status });
    for (let i = 0; i < extras; i++) r.tx.putResponse({ id: 0, status: NETIF_RSP_NULL });
  }

  /**
   * xenvif_tx_build_gops + gnttab_batch_copy + xenvif_tx_check_gop + xenvif_tx_submit, whole
   * frames copied (see the class comment). Returns the packets taken.
   */
  private *txAction(r: VifRings, v: Vcpu, budget: number): ProcessGenerator<number> {
    const built: TxBuilt[] = [];
    const ops: GnttabCopy[] = [];
    let slotsTaken = 0;
    let taken = 0;
    const fid = this.frontendId;
    while (built.length < budget && !this.disabled) {
      const n = r.tx.unconsumedRequests();
      if (n instanceof RingError) {
        this.fatalTxErr(`Impossible number of requests. req_prod ${n.prod}, req_cons ${r.tx.reqCons}, size ${NET_TX_RING_SIZE}`);
        break;
      }
      if (n === 0) break;
      taken++;
      const t = takeTxRequests(r.tx, n);
      if (t.kind === 'fatal') {
        this.fatalTxErr(t.message);
        break;
      }
      slotsTaken += t.slots;
      if (t.kind === 'drop') {
        this.txErr(r, t.reqs, t.end);
        continue;
      }
      const { txreq, first, frags, reqs, end, gsoSize } = t;
      r.tx.reqCons = end;
      let pkt: Packet;
      try {
        pkt = Packet.alloc(this.dom0Mem, txreq.size);
      } catch (e) {
        if (!(e instanceof PacketMemoryExhausted)) throw e;
        // "Can't allocate a skb in start_xmit": dropped with an error.
        for (const q of reqs) this.makeTxResponse(r, q.id, NETIF_RSP_ERROR, q.extras);
        this.stats.txErrors++;
        break;
      }
      const buf = pkt.buf!;
      const op0 = ops.length;
      let at = 0;
      for (const q of [first, ...frags]) {
        let done = 0;
        while (done < q.size) {
          const dst = buf.offset + at;
          const n = Math.min(q.size - done, PAGE_SIZE - (dst % PAGE_SIZE));
          ops.push({
            source: { u: q.gref, domid: fid, offset: q.offset + done },
            dest: { u: buf.gfn + Math.floor(dst / PAGE_SIZE), domid: DOMID_SELF, offset: dst % PAGE_SIZE },
            len: n,
            flags: GNTCOPY_source_gref,
          });
          done += n;
          at += n;
        }
      }
      built.push({
        pkt,
        reqs,
        op0,
        op1: ops.length,
        csumBlank: (txreq.flags & NETTXF_csum_blank) !== 0,
        dataValidated: (txreq.flags & NETTXF_data_validated) !== 0,
        gsoSize,
      });
    }
    const c = this.costs;
    if (taken > 0) yield v.exec(c.backTxPacket * taken + c.backTxSlot * slotsTaken, 'softirq');
    if (ops.length > 0) {
      this.stats.txCopyOps += ops.length;
      yield* gnttabBatchCopy(this.dom0, v, ops, c.eagainStep);
    }
    if (this.r !== r) {
      for (const b of built) b.pkt.release();
      return built.length;
    }
    for (const b of built) {
      let ok = true;
      for (let i = b.op0; i < b.op1; i++) if (ops[i]!.status !== GNTST_okay) ok = false;
      // xenvif_tx_check_gop: a failed copy ("Grant copy of header failed") answers ERROR and drops the frame.
      if (ok && !checksumSetup(b.pkt, b.csumBlank, b.dataValidated)) ok = false;
      for (const q of b.reqs) this.makeTxResponse(r, q.id, ok ? NETIF_RSP_OKAY : NETIF_RSP_ERROR, q.extras);
      if (!ok) {
        this.stats.txErrors++;
        b.pkt.release();
        continue;
      }
      if (b.gsoSize > 0) {
        b.pkt.gsoType = GSO_TCPV4;
        b.pkt.gsoSize = b.gsoSize;
      }
      this.stats.txFrames++;
      this.stats.txBytes += b.pkt.length;
      this.stats.txSlots += b.reqs.length;
      const tr = this.env.trace;
      if (tr.enabled(TP_FRAME_STEP))
        tr.emit(TP_FRAME_STEP, {
          path: 'pv',
          domid: this.dom0.domid,
          vcpu: v.name,
          step: 'netback TX grant copy into Dom0',
          len: b.pkt.length,
          frame: b.pkt.data,
        });
      this.up.push(b.pkt);
    }
    if (r.tx.pushResponsesAndCheckNotify()) {
      this.stats.txNotify++;
      yield* this.dom0.evtchn.notify(v, r.txPort);
    }
    return built.length;
  }

  // ---- RX: Dom0 → guest (xenvif_start_xmit, xenvif_kthread_guest_rx) ------------------------

  /**
   * xenvif_start_xmit: without a connected, enabled queue (xenvif_schedulable) the frame is
   * dropped and counted; otherwise it joins the queue's rx_queue and the kthread is kicked.
   * Once the queue holds more than XENVIF_RX_QUEUE_BYTES the device refuses further frames
   * (netif_tx_stop_queue) until the kthread has drained it below that.
   */
  xmit(pkt: Packet): boolean {
    if (this.r === null || this.disabled || !this.carrier) {
      this.stats.rxDropped++;
      pkt.release();
      return true;
    }
    // The host's queue was stopped (xenvif_rx_queue_tail): the qdisc keeps the frame until the kthread wakes it.
    if (this.rxStopped) return false;
    this.rxQueue.push(pkt);
    this.rxQueueBytes += pkt.length;
    if (this.rxQueueBytes > XENVIF_RX_QUEUE_BYTES) this.rxStopped = true;
    this.thread?.wake();
    return true;
  }

  /** Slots a frame needs in the guest's RX ring: its pages, plus the GSO extra if the frontend takes GSO (xenvif_rx_action's max_slots_needed). */
  private rxSlotsFor(r: VifRings, pkt: Packet): number {
    return Math.max(1, Math.ceil(pkt.length / PAGE_SIZE)) + (pkt.gsoType !== GSO_NONE && r.gsoTcpv4 ? 1 : 0);
  }

  /**
   * xenvif_rx_ring_slots_available: enough posted requests, or else ask the frontend for an
   * event on its next one (req_event = req_prod + 1) and look again.
   */
  private rxSlotsAvailable(r: VifRings, needed: number): boolean {
    for (;;) {
      const prod = r.rx.sring.reqProd;
      if ((prod - r.rx.reqCons) >>> 0 >= needed) return true;
      r.rx.sring.reqEvent = (prod + 1) >>> 0;
      if (r.rx.sring.reqProd === prod) return false;
    }
  }

  /** rx_work_todo. */
  private rxWorkTodo(r: VifRings): boolean {
    const head = this.rxQueue.peek();
    if (head === undefined) return false;
    return this.rxSlotsAvailable(r, Math.max(this.rxLastSlots, 1));
  }

  /**
   * xenvif_kthread_guest_rx: sleep until there is work (frames and the slots for them), the
   * vif is disabled (queue 0 turns the carrier off) or the thread is stopped.
   */
  private *guestRxThread(kt: KernelThread, v: Vcpu): ProcessGenerator<void> {
    for (;;) {
      const r = this.r;
      if (this.stopping || r === null) break;
      if (this.disabled && this.carrier) {
        // xenvif_carrier_off: the bridge sees the port's carrier go; frames queued for the guest are purged.
        this.carrier = false;
        this.onCarrierOff();
        for (let p = this.rxQueue.shift(); p !== undefined; p = this.rxQueue.shift()) {
          this.stats.rxDropped++;
          p.release();
        }
        this.rxQueueBytes = 0;
        continue;
      }
      if (!this.disabled && this.rxWorkTodo(r)) {
        yield* this.rxAction(r, kt, v);
        if (this.rxStopped && this.rxQueueBytes < XENVIF_RX_QUEUE_BYTES) {
          this.rxStopped = false;
          this.upper?.wake();
        }
        continue;
      }
      const w = kt.sleep();
      if (w !== null) yield w;
    }
  }

  /**
   * xenvif_rx_action: for each queued frame that fits the posted requests, consume one
   * request per page of data (data packed into whole pages, as xenvif_gop_frag_copy fills
   * each buffer up to MAX_BUFFER_OFFSET) and one for the GSO extra after the first, with one
   * copy op per piece that crosses neither a source nor a destination page; one batched
   * GNTTABOP_copy on the kthread's vCPU; then the responses (checksum flags, extra_info and
   * the extra, more_data on all but the last; every response ERROR if a copy failed) and
   * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY.
   */
  private *rxAction(r: VifRings, kt: KernelThread, v: Vcpu): ProcessGenerator<void> {
    const ops: GnttabCopy[] = [];
    const batch: { pkt: Packet; slots: { id: number; len: number; op0: number; op1: number }[]; extraId: number; gso: boolean }[] = [];
    const domid = this.dom0.domid;
    let slotsTotal = 0;
    while (this.rxQueue.length > 0 && batch.length < NET_TX_RING_SIZE) {
      const pkt = this.rxQueue.peek()!;
      const needed = this.rxSlotsFor(r, pkt);
      if (!this.rxSlotsAvailable(r, needed)) {
        this.rxLastSlots = needed;
        break;
      }
      this.rxLastSlots = 0;
      this.rxQueue.shift();
      this.rxQueueBytes -= pkt.length;
      const frags = pkt.fragments();
      if (frags === null || frags.some((f) => f.buf.domid !== domid && f.buf.grant === null)) {
        // Not in Dom0's memory nor in a granted page: nothing a grant copy can name.
        this.stats.rxForeign++;
        pkt.release();
        continue;
      }
      const gso = pkt.gsoType !== GSO_NONE && r.gsoTcpv4;
      const slots: { id: number; len: number; op0: number; op1: number }[] = [];
      let extraId = -1;
      let cur: { id: number; gref: number; len: number; op0: number; op1: number } | null = null;
      const nextBuffer = (): { id: number; gref: number; len: number; op0: number; op1: number } => {
        const req = r.rx.consumeRequest();
        const s = { id: req.id, gref: req.gref, len: 0, op0: ops.length, op1: ops.length };
        slots.push(s);
        if (gso && slots.length === 1) extraId = r.rx.consumeRequest().id;
        return s;
      };
      for (const f of frags)
        this.copyFrag(
          f,
          r,
          () => (cur = nextBuffer()),
          () => cur,
          ops,
        );
      if (slots.length === 0) nextBuffer();
      slotsTotal += slots.length + (gso ? 1 : 0);
      batch.push({ pkt, slots, extraId, gso });
    }
    if (batch.length === 0) return;
    const followed: { len: number; frame: Uint8Array }[] | null = this.env.trace.enabled(TP_FRAME_STEP) ? [] : null;
    const c = this.costs;
    yield kt.exec(c.backRxPacket * batch.length + c.backRxSlot * slotsTotal);
    if (ops.length > 0) {
      this.stats.rxCopyOps += ops.length;
      yield* gnttabBatchCopy(this.dom0, v, ops, c.eagainStep);
    }
    if (this.r !== r) {
      for (const b of batch) b.pkt.release();
      return;
    }
    for (const b of batch) {
      let ok = true;
      for (const s of b.slots) for (let i = s.op0; i < s.op1; i++) if (ops[i]!.status !== GNTST_okay) ok = false;
      const { csumBlank, dataValidated } = csumToNetif(b.pkt.csum);
      for (let i = 0; i < b.slots.length; i++) {
        const s = b.slots[i]!;
        let flags = i + 1 < b.slots.length ? NETRXF_more_data : 0;
        if (i === 0) {
          if (csumBlank) flags |= NETRXF_csum_blank;
          if (dataValidated) flags |= NETRXF_data_validated;
          if (b.gso) flags |= NETRXF_extra_info;
        }
        const rsp: NetifRxResponse = { id: s.id, offset: 0, flags, status: ok ? s.len : NETIF_RSP_ERROR };
        r.rx.putResponse(rsp);
        if (i === 0 && b.gso) {
          r.rx.putResponseAs(netifExtraInfoCodec, {
            type: XEN_NETIF_EXTRA_TYPE_GSO,
            flags: 0,
            gso: { size: b.pkt.gsoSize, type: XEN_NETIF_GSO_TYPE_TCPV4, pad: 0, features: 0 },
          });
        }
      }
      if (ok) {
        const tr = this.env.trace;
        if (tr.enabled(TP_FRAME_STEP))
          tr.emit(TP_FRAME_STEP, {
            path: 'pv',
            domid,
            vcpu: v.name,
            step: 'netback RX grant copy into the guest, RX response',
            len: b.pkt.length,
            frame: b.pkt.data,
          });
        followed?.push({ len: b.pkt.length, frame: frameHeaders(b.pkt.data) });
        this.stats.rxFrames++;
        this.stats.rxBytes += b.pkt.length;
        this.stats.rxSlots += b.slots.length + (b.gso ? 1 : 0);
      } else this.stats.rxErrors++;
      b.pkt.release();
    }
    if (r.rx.pushResponsesAndCheckNotify()) {
      this.stats.rxNotify++;
      yield* this.dom0.evtchn.notify(v, r.rxPort);
      // The notification tells the guest of every frame of the batch.
      if (followed !== null)
        for (const f of followed) this.env.trace.emit(TP_FRAME_STEP, { path: 'pv', domid, vcpu: v.name, step: 'netback RX notify', ...f });
    }
  }

  /** The copy ops that move one fragment into the guest's buffers, splitting at source and destination page boundaries. */
  private copyFrag(
    f: PacketFrag,
    _r: VifRings,
    next: () => { gref: number; len: number; op1: number },
    current: () => { gref: number; len: number; op1: number } | null,
    ops: GnttabCopy[],
  ): void {
    let done = 0;
    while (done < f.len) {
      let d = current();
      if (d === null || d.len === PAGE_SIZE) d = next();
      const at = f.buf.offset + f.bufOffset + done;
      const n = Math.min(f.len - done, PAGE_SIZE - (at % PAGE_SIZE), PAGE_SIZE - d.len);
      const g = f.buf.grant;
      ops.push({
        source:
          g !== null
            ? { u: g.ref, domid: g.domid, offset: at % PAGE_SIZE }
            : { u: f.buf.gfn + Math.floor(at / PAGE_SIZE), domid: DOMID_SELF, offset: at % PAGE_SIZE },
        dest: { u: d.gref, domid: this.frontendId, offset: d.len },
        len: n,
        flags: GNTCOPY_dest_gref | (g !== null ? GNTCOPY_source_gref : 0),
      });
      d.len += n;
      d.op1 = ops.length;
      done += n;
    }
  }

  // ---- teardown ------------------------------------------------------------------------------

  /** xenvif_disconnect's data-path half: carrier off, the kthread stopped, queued frames freed. Returns the rings to unmap. */
  disconnect(): VifRings | null {
    const r = this.r;
    this.r = null;
    this.carrier = false;
    this.stopping = true;
    this.thread?.wake();
    this.thread = null;
    for (let p = this.rxQueue.shift(); p !== undefined; p = this.rxQueue.shift()) p.release();
    this.rxQueueBytes = 0;
    for (let p = this.up.shift(); p !== undefined; p = this.up.shift()) p.release();
    return r;
  }

  /** @internal the kthread's vCPU (for tests). */
  get rxThreadVcpu(): Vcpu | null {
    return this.threadVcpu;
  }
}
