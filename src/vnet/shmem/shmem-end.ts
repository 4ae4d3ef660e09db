import type { ProcessGenerator } from '../../sim/index.js';
import {
  PAGE_SIZE,
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateUnknown,
} from '../../xen/abi/index.js';
import { concatPages, guestFramePage, type Vcpu, type XenbusClient } from '../../xen/index.js';
import {
  XENBUS_MAX_RING_GRANTS,
  XenbusDevice,
  xenbusMapRingValloc,
  xenbusSwitchState,
  xenbusUnmapRingVfree,
  xenbusUnwatchOtherend,
  xenbusWatchOtherend,
  type MappedRing,
  type XenGuest,
} from '../../xen/guest/index.js';
import type { ChannelHooks } from '../hv2m/index.js';
import { FIFO_CONS, FIFO_CONS_EVENT, FIFO_GREFS, FIFO_MAX_PAGES, FIFO_PAGES, FIFO_PROD, FIFO_PROD_EVENT, type FifoView } from './fifo.js';

/** Where a guest publishes its side of the shmem channel with `peer` (*ours*, beside hv2m's `data/hv2m/peer/…`). */
export function shmemNode(self: number, peer: number): string {
  return `/local/domain/${self}/data/shmem/peer/${peer}`;
}

const NO_HOOKS: ChannelHooks = { rxEvent: () => undefined, txEvent: () => undefined, connected: () => undefined, peerState: () => undefined };

/**
 * One guest's end of a shmem channel: the control plane. As **receiver** it allocates its
 * incoming FIFO — a descriptor page and `pages` data pages of its own RAM — grants all of
 * them to the peer with write access, writes the data pages' refs into the descriptor (as
 * XenLoop does), allocates an unbound port, and publishes `fifo-ref` and `event-channel` with
 * state Initialised under `data/shmem/peer/<domid>/`. As **sender** it maps the peer's
 * descriptor and data pages (GNTTABOP_map_grant_ref through xenbus_map_ring_valloc, at most
 * XENBUS_MAX_RING_GRANTS per call), binds the peer's port and goes Connected.
 *
 * *(ours)*: XenLoop's listener (lower guest id) creates both FIFOs and the connector maps
 * them; here each end creates the FIFO it receives on and maps the one it sends on — the
 * same two FIFOs, each in the receiver's memory, and the same symmetric handshake as
 * hv2m's ChannelEnd, so the teardown order is the same too: stopPushing (Closing), release
 * (unmap, close ports, Closed), grants the peer still maps ended once it let go.
 */
export class ShmemEnd {
  readonly dev: XenbusDevice;
  /** Receiver half: my FIFO (the peer's records come here), and my port. */
  rx: FifoView | null = null;
  rxPort = -1;
  /** Sender half: the peer's FIFO mapped, and the port bound to the peer's. */
  tx: FifoView | null = null;
  txPort = -1;
  peerPort = -1;
  error: string | null = null;
  onStateChange: () => void = () => undefined;
  hooks: ChannelHooks = NO_HOOKS;
  peerStateNow = XenbusStateUnknown;
  stopped = false;
  private own: { gfn: number; ref: number }[] = [];
  private mapped: MappedRing[] = [];
  private released = false;
  private finished = false;
  private readonly deferred: { gref: number; done: () => void }[] = [];

  constructor(
    private readonly xg: XenGuest,
    xb: XenbusClient,
    private readonly v: Vcpu,
    readonly peer: number,
    /** Data pages of my FIFO (a power of two up to FIFO_MAX_PAGES). */
    readonly pages: number,
    private readonly eagainStep: number,
  ) {
    const self = xg.domid;
    this.dev = new XenbusDevice(xb, self, shmemNode(self, peer), shmemNode(peer, self), peer);
  }

  get connected(): boolean {
    return this.dev.state === XenbusStateConnected && this.tx !== null;
  }

  get pendingGrants(): number {
    return this.deferred.length;
  }

  /** @internal my FIFO's frames: descriptor first (tests scan them). */
  get ownFrames(): readonly number[] {
    return this.own.map((o) => o.gfn);
  }

  private fail(why: string): void {
    this.error ??= why;
    this.onStateChange();
  }

  *open(): ProcessGenerator<void> {
    const xb = this.dev.xb;
    const n = this.dev.nodename;
    const xg = this.xg;
    // Refs for every page, growing the grant table if it must; claimed below with no yield since the check.
    const grown = yield* xg.gnttab.ensureFree(this.v, this.pages + 1);
    if (grown !== 0) return this.fail(`cannot grow the grant table for ${this.pages + 1} refs (${grown})`);
    for (let i = 0; i <= this.pages; i++) {
      const gfn = xg.frames.alloc();
      if (gfn === null) return this.fail('no frame for the FIFO');
      const ref = xg.gnttab.grantAccess(this.peer, gfn, false);
      if (ref < 0) {
        xg.frames.free(gfn);
        return this.fail(`no grant ref for the FIFO (${ref})`);
      }
      this.own.push({ gfn, ref });
    }
    const desc = guestFramePage(xg.mem, this.own[0]!.gfn);
    desc.setU32(FIFO_PROD, 0);
    desc.setU32(FIFO_CONS, 0);
    desc.setU32(FIFO_PROD_EVENT, 1);
    desc.setU32(FIFO_CONS_EVENT, 1);
    desc.setU32(FIFO_PAGES, this.pages);
    for (let i = 0; i < this.pages; i++) desc.setU32(FIFO_GREFS + 4 * i, this.own[i + 1]!.ref);
    const data = concatPages(this.own.slice(1).map((o) => guestFramePage(xg.mem, o.gfn)));
    this.rx = { desc, data, size: this.pages * PAGE_SIZE };
    this.rxPort = yield* xg.evtchn.allocUnbound(this.v, this.peer);
    if (this.rxPort < 0) return this.fail(`cannot allocate an unbound port for d${this.peer} (${this.rxPort})`);
    yield* xg.evtchn.bindHandler(this.v, this.rxPort, () => this.hooks.rxEvent());
    const mk = yield* xb.mkdir(n);
    const perms = yield* xb.setPerms(n, [`n${xg.domid}`, `r${this.peer}`]);
    if (!mk.ok || !perms.ok) return this.fail(`cannot create ${n}`);
    yield* xb.write(`${n}/fifo-ref`, String(this.own[0]!.ref));
    yield* xb.write(`${n}/event-channel`, String(this.rxPort));
    yield* xb.write(`${n}/state`, String(XenbusStateInitialising));
    const sw = yield* xenbusSwitchState(this.dev, XenbusStateInitialised);
    if (sw < 0) return this.fail(`cannot switch ${n} to Initialised (${sw})`);
    const rc = yield* xenbusWatchOtherend(this.dev, (state) => this.otherendChanged(state));
    if (rc < 0) this.fail(`cannot watch ${this.dev.otherend} (${rc})`);
  }

  private *otherendChanged(state: number): ProcessGenerator<void> {
    this.peerStateNow = state;
    if (this.tx !== null || this.stopped || this.released) this.hooks.peerState(state);
    if (this.released) {
      if (state < 0 || state === XenbusStateUnknown || state === XenbusStateClosed || state === XenbusStateClosing) this.endDeferred();
      if (this.deferred.length === 0) this.finish();
      return;
    }
    if (this.tx !== null || this.error !== null || this.stopped) {
      if (state === XenbusStateClosed || state < 0) this.onStateChange();
      return;
    }
    if (state !== XenbusStateInitialised && state !== XenbusStateConnected) return;
    const xb = this.dev.xb;
    const o = this.dev.otherend;
    const ref = yield* xb.readText(`${o}/fifo-ref`);
    const port = yield* xb.readText(`${o}/event-channel`);
    const refN = ref.ok ? Number(ref.value) : NaN;
    const portN = port.ok ? Number(port.value) : NaN;
    if (!Number.isInteger(refN) || !Number.isInteger(portN) || refN < 0 || portN <= 0)
      return this.fail(`peer d${this.peer}: bad fifo-ref/event-channel`);
    const d = yield* xenbusMapRingValloc(this.dev, this.xg, this.v, [refN], this.eagainStep);
    if (d.ring === undefined) return this.fail(`peer d${this.peer}: cannot map its FIFO descriptor (${d.rc})`);
    this.mapped.push(d.ring);
    // The page count and refs are read once, into private copies: the peer may rewrite its page later.
    const pages = d.ring.page.getU32(FIFO_PAGES);
    if (pages < 1 || pages > FIFO_MAX_PAGES || (pages & (pages - 1)) !== 0)
      return yield* this.badMap(`peer d${this.peer}: its FIFO claims ${pages} data pages (expected a power of two up to ${FIFO_MAX_PAGES})`);
    const refs: number[] = [];
    for (let i = 0; i < pages; i++) refs.push(d.ring.page.getU32(FIFO_GREFS + 4 * i));
    const dataPages = [];
    for (let i = 0; i < pages; i += XENBUS_MAX_RING_GRANTS) {
      const m = yield* xenbusMapRingValloc(this.dev, this.xg, this.v, refs.slice(i, i + XENBUS_MAX_RING_GRANTS), this.eagainStep);
      if (m.ring === undefined) return yield* this.badMap(`peer d${this.peer}: cannot map its FIFO data pages (${m.rc})`);
      this.mapped.push(m.ring);
      dataPages.push(...m.ring.pages);
    }
    const p = yield* this.xg.evtchn.bindInterdomain(this.v, this.peer, portN, () => this.hooks.txEvent());
    if (p < 0) return yield* this.badMap(`peer d${this.peer}: cannot bind its port ${portN} (${p})`);
    this.txPort = p;
    this.peerPort = portN;
    this.tx = { desc: d.ring.page, data: concatPages(dataPages), size: pages * PAGE_SIZE };
    yield* xenbusSwitchState(this.dev, XenbusStateConnected);
    this.hooks.connected();
    this.onStateChange();
  }

  private *badMap(why: string): ProcessGenerator<void> {
    yield* this.unmapAll();
    this.fail(why);
  }

  private *unmapAll(): ProcessGenerator<void> {
    for (const m of this.mapped) yield* xenbusUnmapRingVfree(this.dev, this.xg, this.v, m);
    this.mapped = [];
  }

  /** Teardown step one: I stop producing into the peer's FIFO and say so (Closing); my receive half stays for the drain. */
  *stopPushing(): ProcessGenerator<void> {
    this.stopped = true;
    yield* xenbusSwitchState(this.dev, XenbusStateClosing);
  }

  /**
   * Teardown step two, after my FIFO was drained: unmap the peer's FIFO, close both ports,
   * state Closed; then end every grant I gave. One the peer still maps waits until the peer
   * says Closing/Closed or its node goes. Returns the grants still pending.
   */
  *release(): ProcessGenerator<number> {
    const xg = this.xg;
    this.released = true;
    yield* this.unmapAll();
    this.tx = null;
    for (const o of this.own) this.deferred.push({ gref: o.ref, done: () => xg.frames.free(o.gfn) });
    this.own = [];
    this.rx = null;
    if (this.txPort > 0) yield* xg.evtchn.close(this.v, this.txPort);
    if (this.rxPort > 0) yield* xg.evtchn.close(this.v, this.rxPort);
    this.txPort = this.rxPort = -1;
    yield* xenbusSwitchState(this.dev, XenbusStateClosed);
    const left = this.endDeferred();
    if (left === 0) this.finish();
    return left;
  }

  // The other-end watch stays (as ChannelEnd's after release): the teardown still waits for the peer's Closed.
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onStateChange();
  }

  /** Gives up on the other end: the watch goes. */
  *forget(): ProcessGenerator<void> {
    yield* xenbusUnwatchOtherend(this.dev);
  }

  /** Closed on this side, every grant ended. */
  get closed(): boolean {
    return this.finished;
  }

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
}
