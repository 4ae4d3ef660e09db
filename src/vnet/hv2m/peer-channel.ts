import { Deque, SimEvent, type Env, type ProcessGenerator, type Time, type Timer } from '../../sim/index.js';
import type { DeviceUpper, Interface, MacAddr, Napi, Packet, PacketMemory } from '../../net/index.js';
import { XenbusStateClosed, XenbusStateClosing, XenbusStateUnknown } from '../../xen/abi/index.js';
import type { Vcpu } from '../../xen/index.js';
import type { XenGuest } from '../../xen/guest/index.js';
import { TP_TX_START } from '../trace-points.js';
import { makeFence } from './fence.js';
import type { ChannelHooks } from './handshake.js';
import type { ChannelEndReason, PeerChannel } from './peer-module.js';

/** What a channel needs of the guest's ordinary NIC and its stack. */
export interface ChannelLink {
  readonly mac: MacAddr;
  /** The stack's side of the ordinary NIC (whose receive softirq polls the channel), once it took the device. */
  upper(): DeviceUpper | null;
  /** The ordinary NIC's interface (fences and frames falling back go into its transmit queue), once the stack took it. */
  iface(): Interface | null;
  readonly memory: PacketMemory;
}

/** The control plane of a channel end, as the shared data-plane machinery sees it (hv2m's ChannelEnd, shmem's ShmemEnd). */
export interface PeerEnd {
  readonly peer: number;
  /** My send half (the peer's ring or FIFO mapped), null once released or before connect. */
  readonly tx: object | null;
  /** My receive half, null once released. */
  readonly rx: object | null;
  readonly rxPort: number;
  readonly txPort: number;
  /** The peer's port, as published (named in my fence). */
  readonly peerPort: number;
  readonly peerStateNow: number;
  readonly pendingGrants: number;
  readonly connected: boolean;
  hooks: ChannelHooks;
  /** Teardown step one: state Closing, my send half stops. */
  stopPushing(): ProcessGenerator<void>;
  /** Teardown step two: unmap, close ports, Closed, end grants (returns those still pending). */
  release(): ProcessGenerator<number>;
  /** Drops the other-end watch (once every grant is ended). */
  forget(): ProcessGenerator<void>;
}

/** The counters the shared machinery keeps (each data plane adds its own). */
export interface PeerChannelStats {
  diverted: number;
  queueDrops: number;
  events: number;
  rxBad: number;
  fencesSent: number;
  fencesSeen: number;
  fellBack: number;
  opened: number;
  closed: number;
  faults: number;
  watchdogFires: number;
}

/** The shared machinery's bounds (hv2m.fenceRetry, hv2m.watchdog). */
export interface PeerChannelCosts {
  fenceRetry: Time;
  watchdog: Time;
}

/**
 * What every channel of the module does the same way, whatever moves the bytes (issue 11:
 * hv2m and the shmem baseline differ only in the data path):
 *
 * - the bounded per-peer queue the hook feeds, and the pump started on the guest's vCPU;
 * - **switching without reordering** *(ours)*: when the channel comes up, frames sent earlier
 *   may still be on the ordinary path; the sender sends a fence on the ordinary NIC behind them
 *   and starts pushing; the receiver takes nothing off the channel until the fence arrived (or
 *   the channel is going). A fence is sent again after `fenceRetry` while the peer has taken
 *   nothing;
 * - the **watchdog**: frames waiting and no progress for `watchdog` → the peer is taken as dead;
 * - **teardown in order**: new frames are held, the sender stops (Closing), drains its own
 *   receive half once the peer stopped too, releases (Closed), and sends the held frames on the
 *   ordinary NIC only once the peer is Closed (it drained what was pushed to it) or gone;
 * - a peer that breaks the protocol ends the channel (`misbehaved`), never an exception.
 *
 * A data plane supplies the pump, the receive poll and four looks at its own state.
 */
export abstract class PeerChannelBase<E extends PeerEnd, S extends PeerChannelStats> implements PeerChannel {
  readonly queue = new Deque<Packet>();
  diverting = false;
  rxOpen = false;
  readonly napi: Napi;
  onEnd: (reason: ChannelEndReason, why: string) => void = () => undefined;
  onProgress: () => void = () => undefined;
  protected pushing = false;
  protected pumping = false;
  protected shut = false;
  protected faultReason: string | null = null;
  protected progressAt = 0;
  protected readonly watchdog: Timer;
  private pumpIdle: SimEvent<void> | null = null;
  private shutDone: SimEvent<void> | null = null;
  private readonly fenceTimer: Timer;
  private peerWaiter: { cond: (s: number) => boolean; ev: SimEvent<void> } | null = null;
  private drainWaiter: SimEvent<void> | null = null;

  constructor(
    protected readonly env: Env,
    protected readonly xg: XenGuest,
    protected readonly v: Vcpu,
    readonly end: E,
    protected readonly link: ChannelLink,
    /** The peer's MAC, bound by Dom0 (the Ethernet destination of diverted frames and fences). */
    readonly peerMac: MacAddr,
    private readonly bounds: PeerChannelCosts,
    private readonly queueLen: number,
    readonly stats: S,
    /** The path's name (trace points, process names). */
    protected readonly pathName: string,
  ) {
    this.napi = { poll: () => this.poll(), complete: () => this.complete() };
    this.fenceTimer = env.timer(() => this.fenceRetry());
    this.watchdog = env.timer(() => this.watchdogFired());
    end.hooks = {
      rxEvent: () => this.rxEvent(),
      txEvent: () => this.txEvent(),
      connected: () => this.onConnected(),
      peerState: (s) => this.peerState(s),
    };
  }

  // ---- what a data plane supplies -------------------------------------------------------

  /** Sends what it can of the queue; returns when it cannot go on (calls nothing of the base's at its end). */
  protected abstract pump(): ProcessGenerator<void>;
  /** The next received frame, or undefined. */
  protected abstract poll(): Packet | undefined;
  /** napi_complete; call `drained()` when nothing is left to take. */
  protected abstract complete(): void;
  /** Called once when the send half came up (before the fence is sent). */
  protected abstract connectedData(): void;
  /** The peer has taken something off my send half since connect (so it passed my fence). */
  protected abstract peerOpened(): boolean;
  /** Something was pushed since connect (a fence retry is worth sending). */
  protected abstract sentSomething(): boolean;
  /** The frame at the head of the queue could go now (the watchdog's last look). */
  protected abstract headCanGo(): boolean;
  /** Frames (or records) produced into my receive half and not yet taken; 0 if none or its index is broken. */
  protected abstract rxBacklog(): number;

  // ---- state ----------------------------------------------------------------------------

  get peer(): number {
    return this.end.peer;
  }

  /** Why the channel was ended for misbehaviour, if it was. */
  get fault(): string | null {
    return this.faultReason;
  }

  /** Both halves up and pushing. */
  get connected(): boolean {
    return this.end.connected && this.pushing;
  }

  /** Torn down on both sides and every grant ended. */
  get done(): boolean {
    return this.shut && !this.diverting && this.end.pendingGrants === 0;
  }

  /** This guest was destroyed: its kernel's timers and work stop with it. */
  protected get dead(): boolean {
    return this.v.domain.dying;
  }

  // ---- control plane events -------------------------------------------------------------

  private onConnected(): void {
    if (this.shut) return;
    this.connectedData();
    this.diverting = true;
    this.pushing = true;
    this.stats.opened++;
    this.progressAt = this.env.now;
    this.sendFence();
    this.fenceTimer.setIn(this.bounds.fenceRetry);
    // If my own receive half got its peer's fence before my send half came up, it is already open.
    if (this.rxOpen) this.link.upper()?.napiSchedule(this.napi);
    this.kick();
    this.onProgress();
  }

  private peerState(s: number): void {
    const w = this.peerWaiter;
    if (w !== null && w.cond(s)) {
      this.peerWaiter = null;
      w.ev.succeed();
    }
    if (!this.shut && (s === XenbusStateClosing || s === XenbusStateClosed || s <= XenbusStateUnknown) && this.end.tx !== null)
      this.onEnd('peer-closing', `peer d${this.peer} closing`);
  }

  private rxEvent(): void {
    this.stats.events++;
    if (this.end.rx === null || !this.rxOpen) return;
    this.link.upper()?.napiSchedule(this.napi);
  }

  private txEvent(): void {
    this.stats.events++;
    this.kick();
  }

  // ---- sender ---------------------------------------------------------------------------

  /** The hook's hand-off: the frame (Ethernet header written) joins the queue, or is dropped and counted when it is full. */
  enqueue(pkt: Packet): void {
    if (this.queue.length >= this.queueLen) {
      this.stats.queueDrops++;
      pkt.release();
      return;
    }
    this.stats.diverted++;
    this.queue.push(pkt);
    const tr = this.env.trace;
    if (tr.enabled(TP_TX_START))
      tr.emit(TP_TX_START, {
        path: this.pathName,
        domid: this.xg.domid,
        dev: `${this.pathName}-d${this.peer}`,
        len: pkt.length,
        vcpu: this.v.name,
        frame: pkt.data,
      });
    this.kick();
  }

  protected kick(): void {
    if (!this.pushing || this.pumping || this.queue.length === 0) return;
    this.pumping = true;
    this.env.process(this.pumpThenIdle(), `d${this.xg.domid} ${this.pathName} push d${this.peer}`);
  }

  private *pumpThenIdle(): ProcessGenerator<void> {
    yield* this.pump();
    this.pumping = false;
    const w = this.pumpIdle;
    this.pumpIdle = null;
    w?.succeed();
    // Frames that came while the last batch was in flight.
    if (this.pushing && this.queue.length > 0 && !this.watchdog.armed) this.kick();
  }

  /** No room for the head frame: wait for the peer, and let the watchdog judge if it never comes. */
  protected stalled(): void {
    if (!this.watchdog.armed) this.watchdog.setIn(this.bounds.watchdog);
  }

  private watchdogFired(): void {
    if (this.dead || this.shut || this.queue.length === 0) return;
    if (this.env.now - this.progressAt < this.bounds.watchdog) {
      this.watchdog.setAt(this.progressAt + this.bounds.watchdog);
      return;
    }
    // One more look: room may have come without an event.
    if (this.end.tx !== null && this.pushing && this.headCanGo()) {
      this.progressAt = this.env.now;
      this.kick();
      return;
    }
    this.stats.watchdogFires++;
    this.onEnd('watchdog', `peer d${this.peer}: no room made for ${this.bounds.watchdog} ns with ${this.queue.length} frames waiting`);
  }

  // ---- fences ---------------------------------------------------------------------------

  private fenceOut = false;

  private sendFence(): void {
    const iface = this.link.iface();
    if (iface === null) return;
    this.fenceOut = true;
    this.stats.fencesSent++;
    iface.txq.enqueue(makeFence(this.link.memory, this.peerMac, this.link.mac, this.xg.domid, this.end.peerPort));
  }

  /** The stack took the ordinary NIC: a fence that could not go when the channel came up goes now. */
  linkUp(): void {
    if (this.diverting && !this.shut && !this.fenceOut) this.sendFence();
  }

  private fenceRetry(): void {
    if (this.dead || this.shut || !this.pushing || this.end.tx === null || this.peerOpened()) return;
    if (this.sentSomething()) this.sendFence();
    this.fenceTimer.setIn(this.bounds.fenceRetry);
  }

  /** A fence arrived on the ordinary NIC from this channel's peer: every frame it sent before is in. */
  fenceSeen(port: number): void {
    if (port !== this.end.rxPort || this.rxOpen) return;
    this.stats.fencesSeen++;
    this.rxOpen = true;
    if (this.end.rx !== null) this.link.upper()?.napiSchedule(this.napi);
    this.onProgress();
  }

  // ---- receiver -------------------------------------------------------------------------

  protected misbehaved(why: string): void {
    if (this.faultReason !== null) return;
    this.faultReason = why;
    this.stats.faults++;
    this.onEnd('fault', `peer d${this.peer}: ${why}`);
  }

  /** The receive half is empty: a drain waiting for it may go on. */
  protected drained(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.succeed();
  }

  // ---- teardown -------------------------------------------------------------------------

  private *untilPeer(cond: (s: number) => boolean): ProcessGenerator<boolean> {
    if (cond(this.end.peerStateNow)) return true;
    const ev = new SimEvent<void>(this.env);
    this.peerWaiter = { cond, ev };
    yield this.env.anyOf([ev, this.env.timeout(this.bounds.watchdog)]);
    this.peerWaiter = null;
    return ev.triggered;
  }

  /** Hands up what the peer pushed (the fence is taken as passed: nothing more comes on the ordinary path first). */
  private *drain(): ProcessGenerator<void> {
    if (this.end.rx === null || this.faultReason !== null) return;
    this.rxOpen = true;
    if (this.rxBacklog() === 0) return;
    const ev = new SimEvent<void>(this.env);
    this.drainWaiter = ev;
    this.link.upper()?.napiSchedule(this.napi);
    yield this.env.anyOf([ev, this.env.timeout(this.bounds.watchdog)]);
    this.drainWaiter = null;
  }

  /**
   * Ends the channel. `graceful`: the in-order protocol described above (the peer is alive and
   * plays along, or its node is gone; each wait is bounded by the watchdog). Otherwise (a peer
   * that broke the protocol or went silent): stop, release, fall back at once. Either way the
   * frames held meanwhile leave through the ordinary NIC, in order, and every grant given to
   * the peer is ended (or deferred until the peer lets go).
   */
  *shutdown(graceful: boolean): ProcessGenerator<void> {
    if (this.shut) {
      if (this.shutDone !== null && !this.shutDone.triggered) yield this.shutDone;
      return;
    }
    this.shut = true;
    this.shutDone = new SimEvent<void>(this.env);
    this.pushing = false;
    this.fenceTimer.cancel();
    this.watchdog.cancel();
    if (this.pumping) {
      const ev = new SimEvent<void>(this.env);
      this.pumpIdle = ev;
      yield ev;
    }
    const gone = (s: number): boolean => s <= XenbusStateUnknown;
    if (graceful && this.end.tx !== null) {
      yield* this.end.stopPushing();
      yield* this.untilPeer((s) => s >= XenbusStateClosing || gone(s));
      yield* this.drain();
    }
    const wasUp = this.end.tx !== null;
    this.beforeRelease();
    yield* this.end.release();
    if (graceful && wasUp) yield* this.untilPeer((s) => s === XenbusStateClosed || gone(s));
    this.diverting = false;
    this.stats.closed++;
    const iface = this.link.iface();
    for (let p = this.queue.shift(); p !== undefined; p = this.queue.shift()) {
      this.stats.fellBack++;
      if (iface === null) p.release();
      else iface.txq.enqueue(p);
    }
    // Every grant ended: nothing more to hear from the peer. (Otherwise the watch ends them when it lets go.)
    if (this.end.pendingGrants === 0) yield* this.end.forget();
    this.shutDone.succeed();
  }

  /** Just before the end releases: a data plane puts back what it holds of the receive half (still granted). */
  protected beforeRelease(): void {}
}
