import type { ProcessGenerator } from '../../sim/index.js';
import type { PacketBuffer, PacketMemory } from '../../net/index.js';
import {
  NETIF_RX_RING_ENTRY_SIZE,
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateUnknown,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  netifRxRequestCodec,
  netifRxResponseCodec,
  type NetifRxRequest,
  type NetifRxResponse,
} from '../../xen/abi/index.js';
import { BackRing, FrontRing, guestFramePage, type Vcpu, type XenbusClient } from '../../xen/index.js';
import {
  XenbusDevice,
  xenbusMapRingValloc,
  xenbusSwitchState,
  xenbusUnmapRingVfree,
  xenbusUnwatchOtherend,
  xenbusWatchOtherend,
  type MappedRing,
} from '../../xen/guest/index.js';
import type { XenGuest } from '../../xen/guest/index.js';

/** Where a guest publishes its side of the channel with `peer` (DESIGN.md: `data/hv2m/peer/<domid>/…`). */
export function channelNode(self: number, peer: number): string {
  return `/local/domain/${self}/data/hv2m/peer/${peer}`;
}

/** What the data plane (channel.ts) is told by its channel end's control plane. */
export interface ChannelHooks {
  /** An event on my receive port: the peer produced responses (or wants a look). */
  rxEvent(): void;
  /** An event on the port bound to the peer's: the peer posted buffers. */
  txEvent(): void;
  /** Both halves are up: I may push into the peer's ring. */
  connected(): void;
  /** The peer's XenbusState changed (or its node went: negative) while connected or closing. */
  peerState(state: number): void;
}

const NO_HOOKS: ChannelHooks = { rxEvent: () => undefined, txEvent: () => undefined, connected: () => undefined, peerState: () => undefined };

/** A channel end's setup. */
export interface ChannelEndOptions {
  /** RX buffers (one page each) posted to the peer at connect. */
  rxBuffers: number;
  eagainStep: number;
}

/**
 * One guest's end of an HV²M channel with one peer: the control plane only. As **receiver**
 * it owns a netif-RX control ring page, grants it to the peer (write: the peer writes
 * responses), allocates an unbound port for the peer, posts `rxBuffers` pages of its packet
 * memory granted to the peer with write access as `{id, gref}` requests, and publishes
 * `ring-ref` and `event-channel` with state Initialised; as **sender** it waits for the
 * peer's end to be Initialised, maps the peer's ring and binds the peer's port, and goes
 * Connected. Both ends do both (one ring per direction); *(ours)*: symmetric publication
 * instead of DESIGN.md's "lower domid listens" ordering — with a ring per direction neither
 * side has to wait for the other to publish, and the result is the same pair of rings.
 * `close()` is the teardown's revoke-and-close half: unmap the peer's ring, end every grant
 * given to the peer, close both ports, state Closed.
 */
export class ChannelEnd {
  readonly dev: XenbusDevice;
  /** Receiver half: my ring (the peer's responses come here), its page's grant, my port. */
  rx: FrontRing<NetifRxRequest, NetifRxResponse> | null = null;
  private ringGfn = -1;
  private ringRef = -1;
  rxPort = -1;
  readonly posted = new Map<number, { buf: PacketBuffer; gref: number }>();
  /** Sender half: the peer's ring mapped, and the port bound to the peer's. */
  tx: BackRing<NetifRxRequest, NetifRxResponse> | null = null;
  private mapped: MappedRing | null = null;
  txPort = -1;
  /** Why the handshake failed, if it did. */
  error: string | null = null;
  onStateChange: () => void = () => undefined;
  /** The data plane's view of the control plane's events (channel.ts sets it before open). */
  hooks: ChannelHooks = NO_HOOKS;

  constructor(
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    private readonly memory: PacketMemory,
    readonly peer: number,
    private readonly opts: ChannelEndOptions,
  ) {
    const self = xg.domid;
    this.dev = new XenbusDevice(xb, self, channelNode(self, peer), channelNode(peer, self), peer);
  }

  get connected(): boolean {
    return this.dev.state === XenbusStateConnected && this.tx !== null;
  }

  /** Publishes the receiver half and watches the peer's end. */
  *open(): ProcessGenerator<void> {
    const xb = this.dev.xb;
    const n = this.dev.nodename;
    const xg = this.xg;
    const gfn = xg.frames.alloc();
    if (gfn === null) return this.fail('no frame for the control ring');
    this.ringGfn = gfn;
    // Refs for the ring and every buffer, growing the grant table if it must, and claimed at
    // once with no yield since the check (get_free_entries in gnttab_alloc_grant_references):
    // channels opening together cannot take each other's refs in between.
    const grown = yield* xg.gnttab.ensureFree(this.v, this.opts.rxBuffers + 1);
    if (grown !== 0) return this.fail(`cannot grow the grant table for ${this.opts.rxBuffers + 1} refs (${grown})`);
    const refs: number[] = [];
    for (let i = 0; i <= this.opts.rxBuffers; i++) refs.push(xg.gnttab.claimRef());
    this.rx = FrontRing.init(guestFramePage(xg.mem, gfn), netifRxRequestCodec, netifRxResponseCodec, NETIF_RX_RING_ENTRY_SIZE);
    this.ringRef = refs.pop()!;
    xg.gnttab.grantAccessRef(this.ringRef, this.peer, gfn, false);
    this.rxPort = yield* xg.evtchn.allocUnbound(this.v, this.peer);
    if (this.rxPort < 0) {
      for (const r of refs) xg.gnttab.freeRef(r);
      return this.fail(`cannot allocate an unbound port for d${this.peer} (${this.rxPort})`);
    }
    yield* xg.evtchn.bindHandler(this.v, this.rxPort, () => this.hooks.rxEvent());
    for (let id = 0; id < this.opts.rxBuffers && !this.rx.full(); id++) {
      const buf = this.memory.alloc(4096);
      const gref = refs.pop()!;
      xg.gnttab.grantAccessRef(gref, this.peer, buf.gfn, false);
      this.posted.set(id, { buf, gref });
      this.rx.putRequest({ id, gref });
    }
    for (const r of refs) xg.gnttab.freeRef(r);
    this.rx.pushRequests();
    const mk = yield* xb.mkdir(n);
    const perms = yield* xb.setPerms(n, [`n${xg.domid}`, `r${this.peer}`]);
    if (!mk.ok || !perms.ok) return this.fail(`cannot create ${n}`);
    yield* xb.write(`${n}/ring-ref`, String(this.ringRef));
    yield* xb.write(`${n}/event-channel`, String(this.rxPort));
    // The node is the guest's own, not made by a toolstack: it starts its state at Initialising itself.
    yield* xb.write(`${n}/state`, String(XenbusStateInitialising));
    const sw = yield* xenbusSwitchState(this.dev, XenbusStateInitialised);
    if (sw < 0) return this.fail(`cannot switch ${n} to Initialised (${sw})`);
    const rc = yield* xenbusWatchOtherend(this.dev, (state) => this.otherendChanged(state));
    if (rc < 0) this.fail(`cannot watch ${this.dev.otherend} (${rc})`);
  }

  private fail(why: string): void {
    this.error ??= why;
    this.onStateChange();
  }

  /** The peer's state as last seen by the other-end watch (Unknown before). */
  peerStateNow = XenbusStateUnknown;

  /** Buffers posted at open. */
  get rxBuffers(): number {
    return this.opts.rxBuffers;
  }

  /** A grant to end with the others at teardown (a buffer the peer still maps). */
  deferGrant(gref: number, done: () => void): void {
    this.deferred.push({ gref, done });
  }

  private *otherendChanged(state: number): ProcessGenerator<void> {
    this.peerStateNow = state;
    if (this.tx !== null || this.released) this.hooks.peerState(state);
    if (this.released) {
      if ((state < 0 || state === XenbusStateUnknown || state === XenbusStateClosed) && this.endDeferred() === 0)
        yield* xenbusUnwatchOtherend(this.dev);
      return;
    }
    if (this.tx !== null || this.error !== null) {
      if (state === XenbusStateClosed || state < 0) this.onStateChange();
      return;
    }
    if (state !== XenbusStateInitialised && state !== XenbusStateConnected) return;
    const xb = this.dev.xb;
    const o = this.dev.otherend;
    const ref = yield* xb.readText(`${o}/ring-ref`);
    const port = yield* xb.readText(`${o}/event-channel`);
    const refN = ref.ok ? Number(ref.value) : NaN;
    const portN = port.ok ? Number(port.value) : NaN;
    if (!Number.isInteger(refN) || !Number.isInteger(portN) || refN < 0 || portN <= 0)
      return this.fail(`peer d${this.peer}: bad ring-ref/event-channel`);
    const m = yield* xenbusMapRingValloc(this.dev, this.xg, this.v, [refN], this.opts.eagainStep);
    if (m.ring === undefined) return this.fail(`peer d${this.peer}: cannot map its control ring (${m.rc})`);
    this.mapped = m.ring;
    const p = yield* this.xg.evtchn.bindInterdomain(this.v, this.peer, portN, () => this.hooks.txEvent());
    if (p < 0) return this.fail(`peer d${this.peer}: cannot bind its port ${portN} (${p})`);
    this.txPort = p;
    this.tx = BackRing.init(m.ring.page, netifRxRequestCodec, netifRxResponseCodec, NETIF_RX_RING_ENTRY_SIZE);
    this.peerPort = portN;
    yield* xenbusSwitchState(this.dev, XenbusStateConnected);
    this.hooks.connected();
    this.onStateChange();
  }

  /** The peer's port, as published (the sender's fence names it, so a stale fence is not taken for a new channel's). */
  peerPort = -1;

  /**
   * Data-plane teardown, step one: I stop pushing into the peer's ring and say so (Closing);
   * my receive half stays up so the peer's frames already pushed can be drained.
   */
  *stopPushing(): ProcessGenerator<void> {
    yield* xenbusSwitchState(this.dev, XenbusStateClosing);
  }

  private released = false;

  /**
   * Data-plane teardown, step two, after my ring was drained: unmap the peer's ring, close both
   * ports, state Closed ("I hold nothing of yours and took all you pushed"); then end every
   * grant I gave. A grant the peer still maps waits until the peer says Closed or its node
   * goes (the deferred list of gnttab_end_foreign_access, reduced). Returns the grants still
   * pending; the other-end watch stays until they are ended.
   */
  *release(): ProcessGenerator<number> {
    const xg = this.xg;
    this.released = true;
    if (this.mapped !== null) yield* xenbusUnmapRingVfree(this.dev, xg, this.v, this.mapped);
    this.mapped = null;
    this.tx = null;
    for (const { buf, gref } of this.posted.values()) this.deferred.push({ gref, done: () => buf.put() });
    this.posted.clear();
    if (this.ringRef >= 0) {
      const gfn = this.ringGfn;
      this.deferred.push({ gref: this.ringRef, done: () => xg.frames.free(gfn) });
    }
    this.ringRef = -1;
    this.rx = null;
    if (this.txPort > 0) yield* xg.evtchn.close(this.v, this.txPort);
    if (this.rxPort > 0) yield* xg.evtchn.close(this.v, this.rxPort);
    this.txPort = this.rxPort = -1;
    yield* xenbusSwitchState(this.dev, XenbusStateClosed);
    this.finished = true;
    return this.endDeferred();
  }

  /** Gives up on the other end: the watch goes (grants still mapped stay deferred; see pendingGrants). */
  *forget(): ProcessGenerator<void> {
    yield* xenbusUnwatchOtherend(this.dev);
  }

  /**
   * The whole teardown at once (no data to drain): stopPushing then release — unmap the peer's
   * ring, close both ports, Closed, end every grant given to the peer. A grant the peer still
   * maps cannot be ended yet (Xen refuses, as it would): it is ended when the peer's state
   * says it let go (Closed, or its node gone). Never blocks on the peer. Returns the grants
   * still pending at return.
   */
  *close(): ProcessGenerator<number> {
    yield* this.stopPushing();
    const busy = yield* this.release();
    if (busy === 0) yield* this.forget();
    this.onStateChange();
    return busy;
  }

  private finished = false;

  /** Grants given to the peer and not yet ended. */
  get pendingGrants(): number {
    return this.deferred.length;
  }

  /** Closed on this side, every grant ended. */
  get closed(): boolean {
    return this.finished && this.deferred.length === 0;
  }

  /** Grants whose end waits for the peer to stop using them (gnttab_end_foreign_access's deferred list, reduced). */
  private readonly deferred: { gref: number; done: () => void }[] = [];

  /** Tries to end the grants still in use; returns how many are still pending. */
  endDeferred(): number {
    const left: { gref: number; done: () => void }[] = [];
    for (const d of this.deferred) {
      if (this.xg.gnttab.endAccess(d.gref)) d.done();
      else left.push(d);
    }
    this.deferred.length = 0;
    this.deferred.push(...left);
    return left.length;
  }

  /** @internal the receiver's ring page (tests scan it). */
  get ringFrame(): number {
    return this.ringGfn;
  }
}
