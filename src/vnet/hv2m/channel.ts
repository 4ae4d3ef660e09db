import type { Env, ProcessGenerator } from '../../sim/index.js';
import { GSO_NONE, GSO_TCPV4, Packet, csumToNetif, type MacAddr, type PacketBuffer, type PacketFrag } from '../../net/index.js';
import {
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTST_okay,
  NETIF_RSP_ERROR,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  PAGE_SIZE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_GSO_TYPE_TCPV4,
  netifExtraInfoCodec,
  type NetifRxRequest,
  type NetifRxResponse,
} from '../../xen/abi/index.js';
import type { BackRing, GnttabCopy, Vcpu } from '../../xen/index.js';
import { gnttabBatchCopy, type XenGuest } from '../../xen/guest/index.js';
import { checksumSetup } from '../pv/checksum-setup.js';
import { TP_FRAME_STEP, TP_RX_DELIVER, frameHeaders } from '../trace-points.js';
import type { Hv2mCosts } from './costs.js';
import type { ChannelEnd } from './handshake.js';
import { PeerChannelBase, type ChannelLink } from './peer-channel.js';

export { ETHERTYPE_HV2M_FENCE, FENCE_LEN, parseFence } from './fence.js';
export type { ChannelEndReason } from './peer-module.js';
export type { ChannelLink } from './peer-channel.js';

/** Slots one frame may use (xennet_get_responses' MAX_SKB_FRAGS + 1 for 4 KiB pages), besides the GSO extra. */
export const HV2M_MAX_SLOTS = 18;

/** The module's counters, over all its channels. */
export interface Hv2mStats {
  /** Frames the hook diverted to a channel, and those it found the per-peer queue full for (dropped, counted). */
  diverted: number;
  queueDrops: number;
  /** Frames pushed into a peer's buffers, their bytes, the buffers (slots) they filled, the copy ops and hypercalls. */
  txFrames: number;
  txBytes: number;
  txSlots: number;
  txCopyOps: number;
  txHypercalls: number;
  /** Frames whose copy Xen refused (the peer's grant bad or revoked): answered with an error, lost. */
  txCopyErrors: number;
  /** Frames not in this guest's memory (nothing a copy can name): dropped. */
  txForeign: number;
  /** Notifications sent to a peer (responses produced; buffers posted), and events taken. */
  txNotify: number;
  rxNotify: number;
  events: number;
  /** Times the sender found no posted buffer for the frame at the head of a queue. */
  noBuffers: number;
  /** Frames handed up to the stack, their bytes and slots. */
  rxFrames: number;
  rxBytes: number;
  rxSlots: number;
  /** Frames the peer answered with an error status (its copy failed): dropped. */
  rxErrors: number;
  /** Completions that break the protocol (unknown or repeated id, length past the buffer, an endless chain, a bad index): dropped, and the channel closed. */
  rxBad: number;
  /** Fences sent over the ordinary NIC, and fences seen arriving on it. */
  fencesSent: number;
  fencesSeen: number;
  /** Frames that were waiting for a channel when it went and left through the ordinary NIC instead, in order. */
  fellBack: number;
  /** Channels opened (both halves up), closed, closed because the peer broke the protocol, and closed by the watchdog. */
  opened: number;
  closed: number;
  faults: number;
  watchdogFires: number;
}

export function emptyHv2mStats(): Hv2mStats {
  return {
    diverted: 0,
    queueDrops: 0,
    txFrames: 0,
    txBytes: 0,
    txSlots: 0,
    txCopyOps: 0,
    txHypercalls: 0,
    txCopyErrors: 0,
    txForeign: 0,
    txNotify: 0,
    rxNotify: 0,
    events: 0,
    noBuffers: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxSlots: 0,
    rxErrors: 0,
    rxBad: 0,
    fencesSent: 0,
    fencesSeen: 0,
    fellBack: 0,
    opened: 0,
    closed: 0,
    faults: 0,
    watchdogFires: 0,
  };
}

/** Data-plane options of a channel. */
export interface ChannelOptions {
  /** Largest number of GNTTABOP_copy ops per hypercall (B in DESIGN.md). */
  batchOps: number;
  /** Frames the per-peer queue holds (frames diverted while no buffer is posted, or while the channel goes). */
  queueLen: number;
}

/**
 * One HV²M channel's data plane over a connected ChannelEnd (DESIGN.md "Data plane"):
 *
 * **Sender**: frames the hook diverted wait in a bounded per-peer queue; a pump on the
 * guest's vCPU takes the peer's posted `{id, gref}` requests (one per page of frame, one more
 * for the GSO extra), builds one GNTTABOP_copy op per piece that crosses no page boundary on
 * either side — from its own frames into the peer's write-granted buffers — and issues up to
 * `batchOps` of them per hypercall: Xen does the only copy, on this vCPU, charged to this
 * domain. Then it writes netif RX responses (flags: checksum, extra_info and the GSO extra,
 * more_data chaining), pushes them and notifies only when the peer's rsp_event asks; with no
 * buffers it sets req_event and waits for the peer's notification (xenvif_rx_ring_slots_available).
 *
 * **Receiver**: netfront's RX code with its buffers bound to ids: each completion's id must
 * be one posted and not yet completed, its length within the page, a chain at most
 * HV2M_MAX_SLOTS long and wholly produced; the grant is ended (refused if the peer mapped it)
 * and the page handed up as the frame's fragment without a copy; a fresh page is posted in its
 * place. A completion that breaks these rules drops the frame, counts it and ends the channel.
 *
 * **Switching without reordering** and the in-order teardown are PeerChannelBase's (shared
 * with the shmem baseline): the fence on the ordinary NIC, the receiver taking nothing off its
 * ring until the fence arrived, the watchdog, and Closing → drain → release → Closed → the
 * held frames on the ordinary NIC.
 */
export class Hv2mChannel extends PeerChannelBase<ChannelEnd, Hv2mStats> {
  private polled = 0;
  private refilling = false;
  private readonly freeIds: number[] = [];
  /** The id posted at each ring slot (the extra slot's buffer is found by its place, as netfront does). */
  private readonly idAt: number[] = new Array<number>(256).fill(-1);
  private reqProdAtConnect = 0;
  private sentSinceConnect = 0;

  constructor(
    env: Env,
    xg: XenGuest,
    v: Vcpu,
    end: ChannelEnd,
    link: ChannelLink,
    peerMac: MacAddr,
    private readonly costs: Hv2mCosts,
    private readonly opts: ChannelOptions,
    stats: Hv2mStats,
  ) {
    super(env, xg, v, end, link, peerMac, costs, opts.queueLen, stats, 'hv2m');
  }

  private adopted = false;

  /** Takes over the buffers ChannelEnd.open posted (id i at ring slot i), once, before the first use of the receive half. */
  private adoptPosted(): void {
    if (this.adopted) return;
    this.adopted = true;
    for (const id of this.end.posted.keys()) this.idAt[id & 255] = id;
    for (let id = 255; id >= 0; id--) if (!this.end.posted.has(id)) this.freeIds.push(id);
  }

  protected connectedData(): void {
    this.adoptPosted();
    this.reqProdAtConnect = this.end.tx!.sring.reqProd;
  }

  protected sentSomething(): boolean {
    return this.sentSinceConnect > 0;
  }

  protected headCanGo(): boolean {
    const r = this.end.tx;
    return r !== null && this.available(r, this.slotsFor(this.queue.peek()!)) === true;
  }

  protected rxBacklog(): number {
    const n = this.end.rx?.unconsumedResponses() ?? 0;
    return typeof n === 'number' ? n : 0;
  }

  // ---- sender --------------------------------------------------------------------------------

  /** Slots a frame takes in the peer's ring: its pages, and the GSO extra. */
  private slotsFor(pkt: Packet): number {
    return Math.max(1, Math.ceil(pkt.length / PAGE_SIZE)) + (pkt.gsoType !== GSO_NONE ? 1 : 0);
  }

  /** Enough posted requests for `needed` slots, or else ask for an event on the next one and look again; 'bad' for a broken req_prod. */
  private available(r: BackRing<NetifRxRequest, NetifRxResponse>, needed: number): boolean | 'bad' {
    for (;;) {
      const prod = r.requestProd();
      if (typeof prod !== 'number') return 'bad';
      if ((prod - r.reqCons) >>> 0 >= needed) return true;
      r.sring.reqEvent = (prod + 1) >>> 0;
      if (r.sring.reqProd === prod) return false;
    }
  }

  protected *pump(): ProcessGenerator<void> {
    const c = this.costs;
    const domid = this.xg.domid;
    while (this.pushing && this.queue.length > 0 && !this.dead) {
      const r = this.end.tx;
      if (r === null) break;
      const ops: GnttabCopy[] = [];
      const batch: { pkt: Packet; slots: { id: number; len: number; op0: number; op1: number }[]; gso: boolean }[] = [];
      let slotsTotal = 0;
      let bad = false;
      while (this.queue.length > 0 && ops.length < this.opts.batchOps) {
        const pkt = this.queue.peek()!;
        const needed = this.slotsFor(pkt);
        const ok = this.available(r, needed);
        if (ok === 'bad') {
          bad = true;
          break;
        }
        if (!ok) break;
        this.queue.shift();
        const frags = pkt.fragments();
        if (frags === null || frags.some((f) => f.buf.domid !== domid)) {
          this.stats.txForeign++;
          pkt.release();
          continue;
        }
        const gso = pkt.gsoType !== GSO_NONE;
        const slots: { id: number; gref: number; len: number; op0: number; op1: number }[] = [];
        const next = (): { id: number; gref: number; len: number; op0: number; op1: number } => {
          const req = r.consumeRequest();
          const s = { id: req.id, gref: req.gref, len: 0, op0: ops.length, op1: ops.length };
          slots.push(s);
          if (gso && slots.length === 1) r.consumeRequest(); // the extra's slot: its buffer stays unused
          return s;
        };
        let cur: { id: number; gref: number; len: number; op0: number; op1: number } | null = null;
        for (const f of frags) {
          let done = 0;
          while (done < f.len) {
            if (cur === null || cur.len === PAGE_SIZE) cur = next();
            const at = f.buf.offset + f.bufOffset + done;
            const n = Math.min(f.len - done, PAGE_SIZE - (at % PAGE_SIZE), PAGE_SIZE - cur.len);
            ops.push({
              source: { u: f.buf.gfn + Math.floor(at / PAGE_SIZE), domid: DOMID_SELF, offset: at % PAGE_SIZE },
              dest: { u: cur.gref, domid: this.peer, offset: cur.len },
              len: n,
              flags: GNTCOPY_dest_gref,
            });
            cur.len += n;
            cur.op1 = ops.length;
            done += n;
          }
        }
        if (slots.length === 0) next();
        slotsTotal += slots.length + (gso ? 1 : 0);
        batch.push({ pkt, slots, gso });
      }
      if (bad) {
        for (const b of batch) b.pkt.release();
        this.misbehaved('the peer’s request producer index is past its ring');
        break;
      }
      if (batch.length === 0) {
        this.stats.noBuffers++;
        this.stalled();
        break;
      }
      this.progressAt = this.env.now;
      yield this.v.exec(c.txPacket * batch.length + c.txSlot * slotsTotal, 'softirq');
      if (ops.length > 0) {
        this.stats.txCopyOps += ops.length;
        this.stats.txHypercalls++;
        yield* gnttabBatchCopy(this.xg, this.v, ops, c.eagainStep);
      }
      if (this.end.tx !== r) {
        for (const b of batch) b.pkt.release();
        break;
      }
      const tr = this.env.trace;
      const followed: { len: number; frame: Uint8Array }[] | null = tr.enabled(TP_FRAME_STEP) ? [] : null;
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
          r.putResponse({ id: s.id, offset: 0, flags, status: ok ? s.len : NETIF_RSP_ERROR });
          if (i === 0 && b.gso)
            r.putResponseAs(netifExtraInfoCodec, {
              type: XEN_NETIF_EXTRA_TYPE_GSO,
              flags: 0,
              gso: { size: b.pkt.gsoSize, type: XEN_NETIF_GSO_TYPE_TCPV4, pad: 0, features: 0 },
            });
        }
        if (ok) {
          if (followed !== null) followed.push({ len: b.pkt.length, frame: frameHeaders(b.pkt.data) });
          if (tr.enabled(TP_FRAME_STEP))
            tr.emit(TP_FRAME_STEP, {
              path: 'hv2m',
              domid,
              vcpu: this.v.name,
              step: 'hv2m grant copy into the peer, RX response',
              len: b.pkt.length,
              frame: b.pkt.data,
            });
          this.stats.txFrames++;
          this.stats.txBytes += b.pkt.length;
          this.stats.txSlots += b.slots.length + (b.gso ? 1 : 0);
          this.sentSinceConnect++;
        } else this.stats.txCopyErrors++;
        b.pkt.release();
      }
      if (r.pushResponsesAndCheckNotify() && this.end.txPort > 0) {
        this.stats.txNotify++;
        yield* this.xg.evtchn.notify(this.v, this.end.txPort);
        // The notification tells the peer of every frame of the batch.
        if (followed !== null)
          for (const f of followed) tr.emit(TP_FRAME_STEP, { path: 'hv2m', domid, vcpu: this.v.name, step: 'hv2m notify', ...f });
      }
    }
  }

  /** The peer has taken something off its ring since connect (it re-posted). */
  protected peerOpened(): boolean {
    const r = this.end.tx;
    return r === null || r.sring.reqProd !== this.reqProdAtConnect;
  }

  // ---- receiver ------------------------------------------------------------------------------

  /**
   * One frame of the receive poll: its first completion, the GSO extra if flagged (that
   * slot's buffer is posted again as it is), then its data slots while more_data, each
   * checked, its grant ended and its page handed up in place.
   */
  protected poll(): Packet | undefined {
    this.adoptPosted();
    for (;;) {
      const r = this.end.rx;
      if (r === null || !this.rxOpen || this.faultReason !== null) return undefined;
      const prod = r.responseProd();
      if (typeof prod !== 'number') {
        this.stats.rxBad++;
        this.misbehaved('its response producer index is past my ring');
        return undefined;
      }
      const cons = r.rspCons;
      if (cons === prod) return undefined;
      const first = r.copyResponse(cons);
      const hasExtra = (first.flags & NETRXF_extra_info) !== 0;
      let bad: string | null = null;
      let failed = false;
      let gsoSize = 0;
      let slots = 0;
      const frags: PacketFrag[] = [];
      const ids = new Set<number>();
      const take: number[] = [];
      let next = (cons + 1) >>> 0;
      if (hasExtra) {
        if (next === prod) bad = 'a GSO frame without its extra';
        else {
          const extra = r.copyResponseAs(next, netifExtraInfoCodec);
          if ('gso' in extra && extra.gso.type === XEN_NETIF_GSO_TYPE_TCPV4 && extra.gso.size > 0) gsoSize = extra.gso.size;
          else bad = 'a bad GSO extra';
          this.recycleAt(next);
          next = (next + 1) >>> 0;
        }
      }
      let rsp: NetifRxResponse = first;
      while (bad === null) {
        slots++;
        const p = this.end.posted.get(rsp.id);
        if (p === undefined || ids.has(rsp.id)) bad = `completion for buffer id ${rsp.id}, not one posted and outstanding`;
        else if (rsp.status >= 0 && (rsp.offset < 0 || rsp.offset + rsp.status > PAGE_SIZE))
          bad = `completion of ${rsp.status} bytes at offset ${rsp.offset} past its ${PAGE_SIZE}-byte buffer`;
        else {
          ids.add(rsp.id);
          take.push(rsp.id);
          if (rsp.status < 0) failed = true;
          else frags.push({ buf: p.buf, bufOffset: rsp.offset, len: rsp.status });
        }
        if (bad !== null || (rsp.flags & NETRXF_more_data) === 0) break;
        if (slots >= HV2M_MAX_SLOTS) {
          bad = `a more_data chain longer than ${HV2M_MAX_SLOTS} slots`;
          break;
        }
        if (next === prod) {
          bad = 'a more_data chain that runs past the produced completions';
          break;
        }
        rsp = r.copyResponse(next);
        next = (next + 1) >>> 0;
      }
      r.rspCons = next;
      this.stats.rxSlots += slots + (hasExtra ? 1 : 0);
      this.v.exec(this.costs.rxPacket + this.costs.rxSlot * slots, 'softirq');
      // Every buffer this frame named comes back from the peer: grant ended, page ours again.
      const mine: PacketFrag[] = [];
      for (const id of take) {
        const p = this.end.posted.get(id)!;
        this.end.posted.delete(id);
        if (!this.xg.gnttab.endAccess(p.gref)) {
          // The peer mapped the buffer (it may write it after delivery): never handed up; the grant waits for the close.
          bad ??= `buffer ${id} still mapped by the peer`;
          this.end.deferGrant(p.gref, () => p.buf.put());
          continue;
        }
        this.freeIds.push(id);
        const f = frags.find((x) => x.buf === p.buf);
        if (f !== undefined) mine.push(f);
        else p.buf.put();
      }
      this.polled += slots;
      if (this.polled >= 64) this.refillSoon();
      if (bad !== null) {
        for (const f of mine) f.buf.put();
        this.stats.rxBad++;
        this.misbehaved(bad);
        return undefined;
      }
      if (failed || mine.length === 0) {
        for (const f of mine) f.buf.put();
        this.stats.rxErrors++;
        continue;
      }
      const pkt = Packet.fromFrags(mine);
      if (!checksumSetup(pkt, (first.flags & NETRXF_csum_blank) !== 0, (first.flags & NETRXF_data_validated) !== 0)) {
        pkt.release();
        this.stats.rxErrors++;
        continue;
      }
      if (gsoSize > 0) {
        pkt.gsoType = GSO_TCPV4;
        pkt.gsoSize = gsoSize;
      }
      this.stats.rxFrames++;
      this.stats.rxBytes += pkt.length;
      const tr = this.env.trace;
      if (tr.enabled(TP_RX_DELIVER))
        tr.emit(TP_RX_DELIVER, {
          path: 'hv2m',
          domid: this.xg.domid,
          dev: `hv2m-d${this.peer}`,
          len: pkt.length,
          vcpu: this.v.name,
          frame: pkt.data,
        });
      return pkt;
    }
  }

  /** The extra slot's buffer (unused by the peer, still granted) goes back on the ring as it is. */
  private recycleAt(idx: number): void {
    const id = this.idAt[idx & 255]!;
    const p = id >= 0 ? this.end.posted.get(id) : undefined;
    if (p === undefined) return; // a hostile peer's extra in an unposted slot: nothing to recycle
    this.end.posted.delete(id);
    this.pending.push({ id, buf: p.buf, gref: p.gref });
  }

  private readonly pending: { id: number; buf: PacketBuffer; gref: number }[] = [];

  /** Extra slots' pages waiting to be posted again are still granted: they go with the rest. */
  protected override beforeRelease(): void {
    for (const e of this.pending.splice(0)) this.end.posted.set(e.id, { buf: e.buf, gref: e.gref });
  }

  protected complete(): void {
    const r = this.end.rx;
    if (r === null) return;
    this.refillSoon();
    const more = r.finalCheckForResponses();
    if (typeof more !== 'number' || more > 0) {
      if (this.rxOpen) this.link.upper()?.napiSchedule(this.napi);
    } else this.drained();
  }

  private refillSoon(): void {
    this.polled = 0;
    if (this.refilling) return;
    this.refilling = true;
    this.env.process(
      (function* (self: Hv2mChannel): ProcessGenerator<void> {
        yield* self.refill();
        self.refilling = false;
      })(this),
      `d${this.xg.domid} hv2m refill d${this.peer}`,
    );
  }

  /** Posts a fresh page, granted writable to the peer, for every buffer completed; pushes and notifies if the peer asked. */
  private *refill(): ProcessGenerator<void> {
    const r = this.end.rx;
    if (r === null || this.faultReason !== null) return;
    this.adoptPosted();
    let n = 0;
    while (!r.full() && (this.pending.length > 0 || (this.freeIds.length > 0 && this.end.posted.size < this.end.rxBuffers))) {
      let e = this.pending.pop();
      if (e === undefined) {
        const buf = this.link.memory.alloc(PAGE_SIZE);
        const gref = this.xg.gnttab.grantAccess(this.peer, buf.gfn, false);
        if (gref < 0) {
          buf.put();
          break;
        }
        e = { id: this.freeIds.pop()!, buf, gref };
      }
      this.end.posted.set(e.id, { buf: e.buf, gref: e.gref });
      this.idAt[r.reqProdPvt & 255] = e.id;
      r.putRequest({ id: e.id, gref: e.gref });
      n++;
    }
    if (n === 0) return;
    if (r.pushRequestsAndCheckNotify() && this.end.rxPort > 0) {
      this.stats.rxNotify++;
      yield* this.xg.evtchn.notify(this.v, this.end.rxPort);
    }
  }
}
