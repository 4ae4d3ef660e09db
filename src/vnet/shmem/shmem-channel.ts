import type { Env, ProcessGenerator } from '../../sim/index.js';
import {
  CSUM_NONE,
  CSUM_PARTIAL,
  GSO_NONE,
  GSO_TCPV4,
  Packet,
  completeChecksum,
  csumToNetif,
  fragmentIpv4,
  gsoSegment,
  type MacAddr,
} from '../../net/index.js';
import type { Vcpu } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { PeerChannelBase, type ChannelLink } from '../hv2m/index.js';
import { checksumSetup } from '../pv/checksum-setup.js';
import { TP_FRAME_STEP, TP_RX_DELIVER } from '../trace-points.js';
import type { ShmemCosts } from './costs.js';
import {
  FIFO_CONS,
  FIFO_CONS_EVENT,
  FIFO_PROD,
  FIFO_PROD_EVENT,
  REC_CSUM_BLANK,
  REC_DATA_VALIDATED,
  REC_GSO_TCPV4,
  REC_HEADER,
  checkRecord,
  eventDue,
  readBytes,
  readHeader,
  recordBytes,
  used,
  writeRecord,
  type FifoView,
} from './fifo.js';
import type { ShmemEnd } from './shmem-end.js';

/** The shmem module's counters, over all its channels. */
export interface ShmemStats {
  /** Frames the hook diverted, and those it found the per-peer queue full for (dropped, counted). */
  diverted: number;
  queueDrops: number;
  /** Frames copied into a peer's FIFO, their bytes; memcpys the sender made (one per frame) and their bytes. */
  txFrames: number;
  txBytes: number;
  txCopies: number;
  txCopyBytes: number;
  /** Times the frame at the head of a queue found the peer's FIFO too full and waited (back-pressure). */
  fifoFull: number;
  /** Frames too big for the FIFO cut in software first (GSO segments / IP fragments made), and too-big frames with DF dropped. */
  segmented: number;
  tooBig: number;
  /** Notifications sent (records produced; space freed), and events taken. */
  txNotify: number;
  rxNotify: number;
  events: number;
  /** Frames copied out of my FIFO and handed up, their bytes; memcpys the receiver made and their bytes. */
  rxFrames: number;
  rxBytes: number;
  rxCopies: number;
  rxCopyBytes: number;
  /** Frames refused after the copy (a checksum state that cannot be set up): dropped. */
  rxErrors: number;
  /** Records or indices that break the protocol (an impossible index, a bad header): dropped, and the channel closed. */
  rxBad: number;
  fencesSent: number;
  fencesSeen: number;
  fellBack: number;
  opened: number;
  closed: number;
  faults: number;
  watchdogFires: number;
}

export function emptyShmemStats(): ShmemStats {
  return {
    diverted: 0,
    queueDrops: 0,
    txFrames: 0,
    txBytes: 0,
    txCopies: 0,
    txCopyBytes: 0,
    fifoFull: 0,
    segmented: 0,
    tooBig: 0,
    txNotify: 0,
    rxNotify: 0,
    events: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxCopies: 0,
    rxCopyBytes: 0,
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

export interface ShmemChannelOptions {
  /** Frames the per-peer queue holds. */
  queueLen: number;
}

/**
 * One shmem channel's data plane over a connected ShmemEnd (DESIGN.md path 4, XenLoop-style):
 *
 * **Sender**: frames the hook diverted wait in a bounded per-peer queue; a pump on the
 * guest's vCPU checks the peer's consumer index for space, copies each frame that fits —
 * record header, then its bytes — into the peer's FIFO pages it mapped (a memcpy on its own
 * vCPU: the first copy), publishes the producer index, and notifies only when the receiver's
 * prod_event asks. A FIFO without room for the head frame is back-pressure, never loss: the
 * frame stays queued (so its socket's send buffer stays charged and the socket blocks), the
 * sender sets cons_event for the room it needs and waits for the receiver's event. A frame
 * that could never fit (bigger than the FIFO) is cut in software first: a TCP GSO frame into
 * its segments (skb_gso_segment), anything else into IP fragments of the FIFO's largest record.
 *
 * **Receiver**: its NAPI poll reads the producer index (it must be within the FIFO), copies
 * each record's header out once and checks it (length, flags, wholly produced), copies the
 * frame out into a fresh packet buffer of its own (the second memcpy, on its vCPU), publishes
 * the consumer index and hands the packet up; the sender is notified when its cons_event asks.
 * An index or header that breaks these rules drops what is left, counts it and ends the channel.
 *
 * Switching and teardown are PeerChannelBase's, shared with Hv2mChannel (same fence frame,
 * same Closing → drain → release → Closed → flush order, same watchdog): only the data plane differs.
 */
export class ShmemChannel extends PeerChannelBase<ShmemEnd, ShmemStats> {
  /** My private producer index into the peer's FIFO, and the one last published. */
  private txProd = 0;
  private txPublished = 0;
  /** My private consumer index of my own FIFO, and the one last checked for the sender's event. */
  private rxCons = 0;
  private rxChecked = 0;
  private spaceNotifying = false;

  constructor(
    env: Env,
    xg: XenGuest,
    v: Vcpu,
    end: ShmemEnd,
    link: ChannelLink,
    peerMac: MacAddr,
    private readonly costs: ShmemCosts,
    opts: ShmemChannelOptions,
    stats: ShmemStats,
  ) {
    super(env, xg, v, end, link, peerMac, costs, opts.queueLen, stats, 'shmem');
  }

  protected connectedData(): void {}

  /** The peer has consumed something of what I produced since connect. */
  protected peerOpened(): boolean {
    const f = this.end.tx;
    return f === null || f.desc.getU32(FIFO_CONS) !== 0;
  }

  protected sentSomething(): boolean {
    return this.txProd !== 0;
  }

  protected headCanGo(): boolean {
    const f = this.end.tx;
    const room = f === null ? null : this.room(f);
    return f !== null && room !== null && room >= Math.min(f.size, recordBytes(this.queue.peek()!.length));
  }

  protected rxBacklog(): number {
    const f = this.end.rx;
    return f === null ? 0 : used(f.desc.getU32(FIFO_PROD), this.rxCons);
  }

  /** Free bytes in the peer's FIFO now, or null if its consumer index is impossible. */
  private room(f: FifoView): number | null {
    const u = used(this.txProd, f.desc.getU32(FIFO_CONS));
    return u > f.size ? null : f.size - u;
  }

  /**
   * A head frame that can never fit the FIFO, cut in software into pieces that do (its CPU
   * cost returned): TCP GSO → its MSS segments (skb_gso_segment, as for a device without
   * TSO); otherwise IP fragments as large as one record can be (*ours*: the FIFO acts as a
   * device whose MTU is its largest record, so a 64 KiB datagram crosses a 64 KiB FIFO in two
   * fragments, not in 45 at the NIC's MTU); a datagram with DF is dropped, as ip_fragment
   * does. The pieces replace it at the head, in order.
   */
  private split(pkt: Packet, fifoSize: number): number {
    this.queue.shift();
    let parts: Packet[];
    let ns: number;
    if (pkt.gsoType === GSO_TCPV4) {
      parts = gsoSegment(pkt, true, this.link.memory);
      ns = parts.length * this.costs.gsoSegment;
    } else {
      const d = pkt.data;
      if ((d[pkt.l3 + 6]! & 0x40) !== 0) {
        this.stats.tooBig++;
        pkt.release();
        return 0;
      }
      ns = 0;
      if (pkt.csum === CSUM_PARTIAL) {
        // skb_checksum_help before fragmenting: the fragments cannot carry a partial checksum.
        completeChecksum(d, pkt.csumStart, d.length, pkt.csumStart + pkt.csumOffset, d[pkt.l3 + 9] === 17);
        pkt.csum = CSUM_NONE;
        ns += Math.round((d.length - pkt.csumStart) * this.costs.csumPerByte);
      }
      parts = fragmentIpv4(pkt, fifoSize - REC_HEADER - pkt.l3, this.link.memory);
      ns += (parts.length - 1) * this.costs.txFragment;
    }
    this.stats.segmented += parts.length;
    for (let i = parts.length - 1; i >= 0; i--) this.queue.unshift(parts[i]!);
    return ns;
  }

  protected *pump(): ProcessGenerator<void> {
    const c = this.costs;
    while (this.pushing && this.queue.length > 0 && !this.dead) {
      const f = this.end.tx;
      if (f === null) break;
      const head = this.queue.peek()!;
      if (recordBytes(head.length) > f.size) {
        const ns = this.split(head, f.size);
        if (ns > 0) yield this.v.exec(ns, 'softirq');
        continue;
      }
      let free = this.room(f);
      if (free === null) {
        this.misbehaved('its consumer index is past my producer index');
        break;
      }
      if (free < recordBytes(head.length)) {
        // Ask for an event once the receiver has freed enough, then look again (no lost wake-up).
        f.desc.setU32(FIFO_CONS_EVENT, (this.txProd + recordBytes(head.length) - f.size) >>> 0);
        free = this.room(f);
        if (free === null || free < recordBytes(head.length)) {
          this.stats.fifoFull++;
          this.stalled();
          break;
        }
      }
      const batch: Packet[] = [];
      let bytes = 0;
      while (this.queue.length > 0) {
        const p = this.queue.peek()!;
        const need = recordBytes(p.length);
        if (need > f.size || need > free) break;
        this.queue.shift();
        free -= need;
        bytes += p.length;
        batch.push(p);
      }
      this.progressAt = this.env.now;
      yield this.v.exec(c.txPacket * batch.length + Math.round(bytes * c.memcpyPerByte), 'softirq');
      if (this.end.tx !== f || this.dead) {
        // Torn down under me: the frames go back, in order, for the fallback.
        for (let i = batch.length - 1; i >= 0; i--) this.queue.unshift(batch[i]!);
        break;
      }
      for (const p of batch) {
        const { csumBlank, dataValidated } = csumToNetif(p.csum);
        let flags = 0;
        if (csumBlank) flags |= REC_CSUM_BLANK;
        if (dataValidated) flags |= REC_DATA_VALIDATED;
        if (p.gsoType !== GSO_NONE) flags |= REC_GSO_TCPV4;
        writeRecord(f, this.txProd, { len: p.length, flags, gsoSize: p.gsoType !== GSO_NONE ? p.gsoSize : 0 }, p.data);
        this.txProd = (this.txProd + recordBytes(p.length)) >>> 0;
        this.stats.txFrames++;
        this.stats.txBytes += p.length;
        this.stats.txCopies++;
        this.stats.txCopyBytes += p.length;
        const tr = this.env.trace;
        if (tr.enabled(TP_FRAME_STEP))
          tr.emit(TP_FRAME_STEP, {
            path: 'shmem',
            domid: this.xg.domid,
            vcpu: this.v.name,
            step: 'shmem copy into the FIFO',
            len: p.length,
            frame: p.data,
          });
        p.release();
      }
      // The records are written before the index that publishes them (wmb).
      const old = this.txPublished;
      f.desc.setU32(FIFO_PROD, this.txProd);
      this.txPublished = this.txProd;
      if (eventDue(this.txProd, old, f.desc.getU32(FIFO_PROD_EVENT)) && this.end.txPort > 0) {
        this.stats.txNotify++;
        yield* this.xg.evtchn.notify(this.v, this.end.txPort);
      }
    }
  }

  // ---- receiver ------------------------------------------------------------------------------

  private bad(why: string): undefined {
    this.stats.rxBad++;
    this.misbehaved(why);
    return undefined;
  }

  /** One record out of my FIFO: indices and header checked, the frame copied into a fresh buffer of mine and handed up. */
  protected poll(): Packet | undefined {
    for (;;) {
      const f = this.end.rx;
      if (f === null || !this.rxOpen || this.faultReason !== null) return undefined;
      const prod = f.desc.getU32(FIFO_PROD);
      const avail = used(prod, this.rxCons);
      if (avail === 0) return undefined;
      if (avail > f.size) return this.bad(`its producer index is ${avail} bytes past my consumer index, in a FIFO of ${f.size}`);
      const h = readHeader(f, this.rxCons);
      const why = checkRecord(h, avail, f.size);
      if (why !== null) return this.bad(why);
      const pkt = Packet.alloc(this.link.memory, h.len);
      readBytes(f, this.rxCons, pkt.data);
      this.rxCons = (this.rxCons + recordBytes(h.len)) >>> 0;
      f.desc.setU32(FIFO_CONS, this.rxCons);
      this.stats.rxCopies++;
      this.stats.rxCopyBytes += h.len;
      this.v.exec(this.costs.rxPacket + Math.round(h.len * this.costs.memcpyPerByte), 'softirq');
      this.spaceSoon();
      if (!checksumSetup(pkt, (h.flags & REC_CSUM_BLANK) !== 0, (h.flags & REC_DATA_VALIDATED) !== 0)) {
        pkt.release();
        this.stats.rxErrors++;
        continue;
      }
      if ((h.flags & REC_GSO_TCPV4) !== 0) {
        pkt.gsoType = GSO_TCPV4;
        pkt.gsoSize = h.gsoSize;
      }
      this.stats.rxFrames++;
      this.stats.rxBytes += pkt.length;
      const tr = this.env.trace;
      if (tr.enabled(TP_RX_DELIVER))
        tr.emit(TP_RX_DELIVER, {
          path: 'shmem',
          domid: this.xg.domid,
          dev: `shmem-d${this.peer}`,
          len: pkt.length,
          vcpu: this.v.name,
          frame: pkt.data,
        });
      return pkt;
    }
  }

  /** napi_complete: ask for an event on the next record, then look once more (the final check of ring.h). */
  protected complete(): void {
    const f = this.end.rx;
    if (f === null) return;
    f.desc.setU32(FIFO_PROD_EVENT, (this.rxCons + 1) >>> 0);
    if (f.desc.getU32(FIFO_PROD) !== this.rxCons && this.faultReason === null) {
      if (this.rxOpen) this.link.upper()?.napiSchedule(this.napi);
    } else this.drained();
  }

  /** Tells the sender its room came, if its cons_event asks (on my vCPU, after the poll). */
  private spaceSoon(): void {
    if (this.spaceNotifying) return;
    this.spaceNotifying = true;
    this.env.process(
      (function* (self: ShmemChannel): ProcessGenerator<void> {
        const f = self.end.rx;
        self.spaceNotifying = false;
        if (f === null || self.end.rxPort <= 0) return;
        const old = self.rxChecked;
        self.rxChecked = self.rxCons;
        if (eventDue(self.rxCons, old, f.desc.getU32(FIFO_CONS_EVENT))) {
          self.stats.rxNotify++;
          yield* self.xg.evtchn.notify(self.v, self.end.rxPort);
        }
      })(this),
      `d${this.xg.domid} shmem space d${this.peer}`,
    );
  }
}
