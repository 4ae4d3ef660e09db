import type { ProcessGenerator } from '../../sim/index.js';
import {
  ENOSPC,
  NETIF_RX_RING_ENTRY_SIZE,
  NETIF_TX_RING_ENTRY_SIZE,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  GRANT_ENTRIES_PER_FRAME_V1,
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialising,
  XenbusStateInitWait,
  netifRxRequestCodec,
  netifRxResponseCodec,
  netifTxRequestCodec,
  netifTxResponseCodec,
} from '../../xen/abi/index.js';
import { FrontRing, guestFramePage, type Vcpu } from '../../xen/index.js';
import { XenbusDevice, xenbusDevFatal, xenbusSwitchState, xenbusUnwatchOtherend, xenbusWatchOtherend, xsErrno } from '../../xen/guest/index.js';
import type { PathKernel } from '../path.js';
import type { Netfront } from './netfront.js';

/**
 * Deliberate mistakes a test frontend makes in its handshake (a hostile or broken guest):
 * keys it leaves out of, or writes differently into, the transaction talk_to_netback writes.
 */
export interface FrontendFaults {
  omitKeys?: readonly string[];
  keys?: Readonly<Record<string, string>>;
}

/** Linux's ENODEV (include/uapi/asm-generic/errno-base.h): xennet_connect's answer to a backend without rx-copy. */
const ENODEV = 19;

/** The xenbus `scanf "%u"` of a value: a number, or null. */
function scanU(s: string | null): number | null {
  if (s === null) return null;
  const m = /^\s*(\d+)/.exec(s);
  return m === null ? null : Number.parseInt(m[1]!, 10);
}

/**
 * Linux 3.18's xen-netfront xenbus side (drivers/net/xen-netfront.c) in the guest, one
 * queue: netback_changed reacts to the backend's state; on InitWait, xennet_connect reads
 * the backend's features (no feature-rx-copy: "backend does not support copying receive
 * path", -ENODEV, no connection), talk_to_netback sets up the rings (setup_netfront: a page
 * each, SHARED_RING_INIT, granted to the backend), the event channel(s) (split when the
 * backend offers feature-split-event-channels, as setup_netfront_split), reserves the grant
 * refs for both rings' buffers, and writes tx-ring-ref, rx-ring-ref, event-channel[-tx/-rx],
 * request-rx-copy, feature-rx-notify, feature-sg, feature-gso-tcpv4 in one transaction;
 * then the frontend goes straight to Connected. A backend going Closing (or Closed unseen)
 * closes the frontend (xenbus_frontend_closed). Not modelled: multi-queue (one queue),
 * IPv6 offloads (the stack has no IPv6, so feature-gso-tcpv6 / feature-ipv6-csum-offload are
 * not written).
 */
export class NetfrontDevice {
  dev: XenbusDevice | null = null;
  /** Why xennet_connect failed, or null. */
  connectError: { err: number; what: string } | null = null;
  private ringGfns: number[] = [];
  private ringRefs: number[] = [];
  private ports: number[] = [];
  private readonly v: Vcpu;
  onChange: () => void = () => undefined;

  constructor(
    private readonly guest: PathKernel,
    readonly devid: number,
    readonly nf: Netfront,
    private readonly faults: FrontendFaults = {},
    private readonly noCsumOffload = false,
  ) {
    this.v = guest.domain.vcpus[0]!;
  }

  get state(): number {
    return this.dev?.state ?? XenbusStateInitialising;
  }

  /** netfront_probe: the device and the watch on the backend's state. */
  *probe(): ProcessGenerator<number> {
    const xb = this.guest.xenbus;
    const home = `/local/domain/${this.guest.domain.domid}`;
    const node = `device/vif/${this.devid}`;
    const be = yield* xb.readText(`${home}/${node}/backend`);
    const beId = yield* xb.readText(`${home}/${node}/backend-id`);
    if (!be.ok || !beId.ok || scanU(beId.value) === null) return -ENODEV;
    this.dev = new XenbusDevice(xb, this.guest.domain.domid, node, be.value, scanU(beId.value)!);
    return yield* xenbusWatchOtherend(this.dev, (state) => this.backendChanged(state));
  }

  /** netback_changed (3.18). */
  private *backendChanged(state: number): ProcessGenerator<void> {
    const dev = this.dev!;
    switch (state) {
      case XenbusStateInitWait:
        if (dev.state !== XenbusStateInitialising) break;
        if ((yield* this.connect()) !== 0) break;
        yield* xenbusSwitchState(dev, XenbusStateConnected);
        break;
      case XenbusStateClosed:
      case XenbusStateClosing:
        // xenbus_frontend_closed (a Closed backend whose Closing was missed counts as Closing).
        if (dev.state !== XenbusStateClosed) yield* xenbusSwitchState(dev, XenbusStateClosed);
        break;
      default:
        break;
    }
    this.onChange();
  }

  private *readBackend(key: string): ProcessGenerator<number> {
    const r = yield* this.guest.xenbus.readText(`${this.dev!.otherend}/${key}`);
    return r.ok ? (scanU(r.value) ?? 0) : 0;
  }

  /** xennet_connect + talk_to_netback; 0 or a negative errno (after xenbus_dev_fatal where Linux reports one). */
  private *connect(): ProcessGenerator<number> {
    const dev = this.dev!;
    const xg = this.guest.kernel;
    if ((yield* this.readBackend('feature-rx-copy')) === 0) {
      this.connectError = { err: -ENODEV, what: 'backend does not support copying receive path' };
      return -ENODEV;
    }
    const sg = (yield* this.readBackend('feature-sg')) !== 0;
    const gso = (yield* this.readBackend('feature-gso-tcpv4')) !== 0;
    const split = (yield* this.readBackend('feature-split-event-channels')) !== 0;
    // The grant refs for both rings' buffers and the ring pages (gnttab_alloc_grant_references).
    const need = NET_TX_RING_SIZE + NET_RX_RING_SIZE + 2;
    if (xg.gnttab.available < need) {
      const rc = yield* xg.gnttab.expand(this.v, Math.ceil((need - xg.gnttab.available) / GRANT_ENTRIES_PER_FRAME_V1));
      if (rc !== 0 || xg.gnttab.available < need) return yield* this.fatal(-ENOSPC, 'allocating grant references');
    }
    // setup_netfront: a page for each ring, initialised and granted to the backend.
    for (let i = 0; i < 2; i++) {
      const gfn = xg.frames.alloc();
      if (gfn === null) return yield* this.fatal(-ENOSPC, 'allocating shared ring page');
      this.ringGfns.push(gfn);
      const ref = xg.gnttab.grantAccess(dev.otherendId, gfn, false);
      if (ref < 0) return yield* this.fatal(ref, 'granting access to ring page');
      this.ringRefs.push(ref);
    }
    const tx = FrontRing.init(guestFramePage(xg.mem, this.ringGfns[0]!), netifTxRequestCodec, netifTxResponseCodec, NETIF_TX_RING_ENTRY_SIZE);
    const rx = FrontRing.init(guestFramePage(xg.mem, this.ringGfns[1]!), netifRxRequestCodec, netifRxResponseCodec, NETIF_RX_RING_ENTRY_SIZE);
    const nf = this.nf;
    let txPort: number;
    let rxPort: number;
    if (split) {
      txPort = yield* xg.evtchn.allocUnbound(this.v, dev.otherendId);
      rxPort = txPort < 0 ? txPort : yield* xg.evtchn.allocUnbound(this.v, dev.otherendId);
      if (txPort >= 0) this.ports.push(txPort);
      if (rxPort >= 0) this.ports.push(rxPort);
      if (txPort < 0 || rxPort < 0) return yield* this.fatal(txPort < 0 ? txPort : rxPort, 'allocating event channels');
      yield* xg.evtchn.bindHandler(this.v, txPort, () => nf.txInterrupt());
      yield* xg.evtchn.bindHandler(this.v, rxPort, () => nf.rxInterrupt());
    } else {
      txPort = yield* xg.evtchn.allocUnbound(this.v, dev.otherendId);
      if (txPort < 0) return yield* this.fatal(txPort, 'allocating event channel');
      this.ports.push(txPort);
      rxPort = txPort;
      // xennet_interrupt: TX completions, then RX.
      yield* xg.evtchn.bindHandler(this.v, txPort, function* () {
        yield* nf.txInterrupt();
        nf.rxInterrupt();
      });
    }
    const txRefs: number[] = [];
    const rxRefs: number[] = [];
    for (let i = 0; i < NET_TX_RING_SIZE; i++) txRefs.push(xg.gnttab.claimRef());
    for (let i = 0; i < NET_RX_RING_SIZE; i++) rxRefs.push(xg.gnttab.claimRef());
    nf.reserveRefs(txRefs, rxRefs);
    // talk_to_netback's transaction.
    const keys: [string, string][] = [
      ['tx-ring-ref', String(this.ringRefs[0])],
      ['rx-ring-ref', String(this.ringRefs[1])],
      ...(split
        ? ([
            ['event-channel-tx', String(txPort)],
            ['event-channel-rx', String(rxPort)],
          ] as [string, string][])
        : ([['event-channel', String(txPort)]] as [string, string][])),
      ['request-rx-copy', '1'],
      ['feature-rx-notify', '1'],
      ['feature-sg', '1'],
      ['feature-gso-tcpv4', '1'],
      ...(this.noCsumOffload ? ([['feature-no-csum-offload', '1']] as [string, string][]) : []),
    ];
    const omit = new Set(this.faults.omitKeys ?? []);
    const extra = this.faults.keys ?? {};
    const written = keys.filter(([k]) => !omit.has(k)).map(([k, val]): [string, string] => [k, extra[k] ?? val]);
    for (const [k, val] of Object.entries(extra)) if (!written.some(([w]) => w === k)) written.push([k, val]);
    const xb = this.guest.xenbus;
    for (;;) {
      const t = yield* xb.transactionStart();
      if (!t.ok) return yield* this.fatal(xsErrno(t.error), 'starting transaction');
      for (const [k, val] of written) {
        const w = yield* xb.write(`${dev.nodename}/${k}`, val, t.value);
        if (!w.ok) {
          yield* xb.transactionEnd(t.value, false);
          return yield* this.fatal(xsErrno(w.error), `writing ${k}`);
        }
      }
      const e = yield* xb.transactionEnd(t.value, true);
      if (e.ok) break;
      if (e.error !== 'EAGAIN') return yield* this.fatal(xsErrno(e.error), 'completing transaction');
    }
    yield* nf.connect({ tx, rx, txPort, rxPort, backendId: dev.otherendId, sg, gsoTcpv4: gso });
    return 0;
  }

  private *fatal(err: number, what: string): ProcessGenerator<number> {
    this.connectError = { err, what };
    yield* xenbusDevFatal(this.dev!, err, what);
    return err;
  }

  /**
   * xennet_remove → xennet_disconnect_backend: carrier off, the buffers' grants ended and
   * their pages freed, the channels unbound, the rings' grants ended and pages freed, the
   * refs returned, the watch removed. Returns the grants that could not be ended (in use).
   */
  *remove(): ProcessGenerator<number> {
    const xg = this.guest.kernel;
    const { refs, leaked } = this.nf.disconnect();
    for (const r of refs) xg.gnttab.freeRef(r);
    for (const p of this.ports.splice(0)) yield* xg.evtchn.close(this.v, p);
    let stuck = leaked;
    for (let i = 0; i < this.ringRefs.length; i++) {
      if (xg.gnttab.endAccess(this.ringRefs[i]!)) xg.frames.free(this.ringGfns[i]!);
      else stuck++;
    }
    this.ringRefs = [];
    this.ringGfns = [];
    if (this.dev !== null) yield* xenbusUnwatchOtherend(this.dev);
    return stuck;
  }

  /**
   * netfront_resume → xennet_disconnect_backend for a guest that is about to resume on another
   * host (live migration): the old connection's state is let go without a word to the old host
   * — its event channels died with the old domain and its xenstore connection with it — so
   * packets still in the rings are dropped, the buffers' and rings' grants ended and their
   * pages freed. Returns the grants that could not be ended (the backend still had them: it
   * must be gone first). Runs before the kernel re-homes (it uses the old host's grant table).
   */
  abandon(): number {
    const xg = this.guest.kernel;
    const { refs, leaked } = this.nf.disconnect();
    for (const r of refs) xg.gnttab.freeRef(r);
    this.ports = [];
    let stuck = leaked;
    for (let i = 0; i < this.ringRefs.length; i++) {
      if (xg.gnttab.endAccess(this.ringRefs[i]!)) xg.frames.free(this.ringGfns[i]!);
      else stuck++;
    }
    this.ringRefs = [];
    this.ringGfns = [];
    return stuck;
  }

  /** Whether the frontend has closed (Closing or Closed). */
  get closed(): boolean {
    return this.state === XenbusStateClosed || this.state === XenbusStateClosing;
  }
}
