import type { ProcessGenerator } from '../../sim/index.js';
import {
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateUnknown,
  xenbusStrstate,
  NETIF_RX_RING_ENTRY_SIZE,
  NETIF_TX_RING_ENTRY_SIZE,
  netifRxRequestCodec,
  netifRxResponseCodec,
  netifTxRequestCodec,
  netifTxResponseCodec,
} from '../../xen/abi/index.js';
import { BackRing, type Vcpu } from '../../xen/index.js';
import {
  XenbusDevice,
  xenbusDevFatal,
  xenbusMapRingValloc,
  xenbusSwitchState,
  xenbusUnmapRingVfree,
  xenbusUnwatchOtherend,
  xenbusWatchOtherend,
  xsErrno,
  type MappedRing,
} from '../../xen/guest/index.js';
import type { BridgePortHandle, PathDom0 } from '../path.js';
import type { PvCosts } from './costs.js';
import { Vif, type VifRings } from './netback.js';

/** What the backend offers (netback_probe's keys); tests may change it. */
export interface NetbackFeatures {
  sg: boolean;
  gsoTcpv4: boolean;
  splitEventChannels: boolean;
  /** multi-queue-max-queues (xenvif_max_queues: Dom0's online CPUs in 3.18). */
  maxQueues: number;
}

/** The xenbus `scanf "%u"` of a value: a number, or null when absent or unparsable. */
function scanU(s: string | null): number | null {
  if (s === null) return null;
  const m = /^\s*(\d+)/.exec(s);
  return m === null ? null : Number.parseInt(m[1]!, 10);
}

/**
 * Linux 3.18's xen-netback xenbus side (drivers/net/xen-netback/xenbus.c) in Dom0, for one
 * vif: netback_probe advertises the backend's features in one transaction and goes to
 * InitWait; frontend_changed follows the frontend's state; on Connected, connect reads
 * multi-queue-num-queues (more than offered: xenbus_dev_fatal), then connect_rings reads
 * tx-ring-ref/rx-ring-ref (missing: xenbus_dev_fatal "reading …/ring-ref"), the event
 * channel(s) (split first, then single; missing: xenbus_dev_fatal), request-rx-copy (absent
 * or 0: -EOPNOTSUPP, which 3.18 returns without an error node — the backend simply does not
 * connect), the frontend's features, maps both rings (xenbus_map_ring_valloc) and binds the
 * channel(s); the vif's carrier goes on and, hotplug-status being "connected", the backend
 * goes to Connected. A frontend going Closing/Closed closes the backend; Closed while
 * offline (xl network-detach) removes the device.
 */
export class NetbackDevice {
  readonly dev: XenbusDevice;
  readonly vif: Vif;
  /** Why connect failed (an errno and the step), or null. */
  connectError: { err: number; what: string } | null = null;
  removed = false;
  private tx: MappedRing | null = null;
  private rx: MappedRing | null = null;
  private ports: number[] = [];
  private port: BridgePortHandle | null = null;
  private readonly v: Vcpu;
  /** Called whenever this side's state or connection changes (the path's attach waits on it). */
  onChange: () => void = () => undefined;

  constructor(
    private readonly dom0: PathDom0,
    readonly frontendId: number,
    readonly devid: number,
    private readonly bridge: string,
    private readonly costs: PvCosts,
    readonly offered: NetbackFeatures,
  ) {
    const d0 = dom0.domain.domid;
    this.dev = new XenbusDevice(
      dom0.xenbus,
      d0,
      `/local/domain/${d0}/backend/vif/${frontendId}/${devid}`,
      `/local/domain/${frontendId}/device/vif/${devid}`,
      frontendId,
    );
    this.v = dom0.domain.vcpus[0]!;
    this.vif = new Vif(dom0.kernel.xen.env, `vif${frontendId}.${devid}`, frontendId, dom0.kernel, dom0.memory, costs);
  }

  get state(): number {
    return this.dev.state;
  }

  /** netback_probe: the feature keys (one transaction), InitWait, the watch on the frontend's state. */
  *probe(): ProcessGenerator<number> {
    const xb = this.dom0.xenbus;
    const n = this.dev.nodename;
    const f = this.offered;
    for (;;) {
      const t = yield* xb.transactionStart();
      if (!t.ok) {
        yield* xenbusDevFatal(this.dev, xsErrno(t.error), 'starting transaction');
        return xsErrno(t.error);
      }
      const keys: [string, string][] = [
        ['feature-sg', f.sg ? '1' : '0'],
        ['feature-gso-tcpv4', f.gsoTcpv4 ? '1' : '0'],
        ['feature-rx-copy', '1'],
        ['feature-rx-flip', '0'],
        ['feature-split-event-channels', f.splitEventChannels ? '1' : '0'],
        ['multi-queue-max-queues', String(f.maxQueues)],
      ];
      for (const [k, val] of keys) {
        const w = yield* xb.write(`${n}/${k}`, val, t.value);
        if (!w.ok) {
          yield* xb.transactionEnd(t.value, false);
          yield* xenbusDevFatal(this.dev, xsErrno(w.error), `writing ${k}`);
          return xsErrno(w.error);
        }
      }
      const e = yield* xb.transactionEnd(t.value, true);
      if (e.ok) break;
      if (e.error !== 'EAGAIN') {
        yield* xenbusDevFatal(this.dev, xsErrno(e.error), 'completing transaction');
        return xsErrno(e.error);
      }
    }
    // The vif-bridge hotplug script (run by udev for the new vif) reports success.
    yield* xb.write(`${n}/hotplug-status`, 'connected');
    yield* xenbusSwitchState(this.dev, XenbusStateInitWait);
    this.onChange();
    return yield* xenbusWatchOtherend(this.dev, (state) => this.frontendChanged(state));
  }

  /** frontend_changed (3.18). */
  private *frontendChanged(state: number): ProcessGenerator<void> {
    const dev = this.dev;
    if (this.removed) return;
    switch (state) {
      case XenbusStateInitialising:
        if (dev.state === XenbusStateClosed) yield* xenbusSwitchState(dev, XenbusStateInitWait);
        break;
      case XenbusStateConnected:
        if (dev.state === XenbusStateConnected || this.vif.rings !== null) break;
        yield* this.connect();
        break;
      case XenbusStateClosing:
        yield* this.disconnect();
        yield* xenbusSwitchState(dev, XenbusStateClosing);
        break;
      case XenbusStateClosed:
      case XenbusStateUnknown: {
        yield* this.disconnect();
        yield* xenbusSwitchState(dev, XenbusStateClosed);
        const online = yield* this.dom0.xenbus.readText(`${dev.nodename}/online`);
        if (state === XenbusStateUnknown || !online.ok || scanU(online.value) !== 1) yield* this.remove();
        break;
      }
      default:
        break;
    }
    this.onChange();
  }

  private *read(key: string): ProcessGenerator<string | null> {
    const r = yield* this.dom0.xenbus.readText(`${this.dev.otherend}/${key}`);
    return r.ok ? r.value : null;
  }

  /** connect + connect_rings (single queue). */
  private *connect(): ProcessGenerator<void> {
    const dev = this.dev;
    const fe = dev.otherend;
    const nq = scanU(yield* this.read('multi-queue-num-queues')) ?? 1;
    if (nq > this.offered.maxQueues) {
      return yield* this.fail(-EINVAL, `guest requested ${nq} queues, exceeding the maximum of ${this.offered.maxQueues}.`, true);
    }
    if (nq !== 1) return yield* this.fail(-EINVAL, `multi-queue (${nq} queues) is not modelled`, true);
    const txRef = scanU(yield* this.read('tx-ring-ref'));
    const rxRef = scanU(yield* this.read('rx-ring-ref'));
    if (txRef === null || rxRef === null) return yield* this.fail(-ENOENT, `reading ${fe}/ring-ref`, true);
    let txEv = scanU(yield* this.read('event-channel-tx'));
    let rxEv = scanU(yield* this.read('event-channel-rx'));
    if (txEv === null || rxEv === null) {
      txEv = scanU(yield* this.read('event-channel'));
      if (txEv === null) return yield* this.fail(-ENOENT, `reading ${fe}/event-channel(-tx/rx)`, true);
      rxEv = txEv;
    }
    // read_xenbus_vif_flags: request-rx-copy absent or 0 is -EOPNOTSUPP, returned without an error node.
    const rxCopy = scanU(yield* this.read('request-rx-copy')) ?? 0;
    if (rxCopy === 0) return yield* this.fail(-EOPNOTSUPP, 'request-rx-copy is not set (3.18 supports only the copying receive path)', false);
    const flag = function* (self: NetbackDevice, k: string): ProcessGenerator<boolean> {
      return (scanU(yield* self.read(k)) ?? 0) !== 0;
    };
    const canSg = yield* flag(this, 'feature-sg');
    const gsoTcpv4 = yield* flag(this, 'feature-gso-tcpv4');
    const noCsum = yield* flag(this, 'feature-no-csum-offload');
    // xenvif_connect: map the rings, bind the channel(s).
    const xg = this.dom0.kernel;
    const tx = yield* xenbusMapRingValloc(dev, xg, this.v, [txRef], this.costs.eagainStep);
    if (tx.ring === undefined) return yield* this.fail(tx.rc, `mapping shared-frames ${txRef}/${rxRef} port tx ${txEv} rx ${rxEv}`, false);
    this.tx = tx.ring;
    const rx = yield* xenbusMapRingValloc(dev, xg, this.v, [rxRef], this.costs.eagainStep);
    if (rx.ring === undefined) {
      yield* this.unmap();
      return yield* this.fail(rx.rc, `mapping shared-frames ${txRef}/${rxRef} port tx ${txEv} rx ${rxEv}`, false);
    }
    this.rx = rx.ring;
    const vif = this.vif;
    let txPort: number;
    let rxPort: number;
    if (txEv === rxEv) {
      txPort = yield* xg.evtchn.bindInterdomain(this.v, this.frontendId, txEv, (_p, v) => vif.interrupt(v));
      rxPort = txPort;
      if (txPort >= 0) this.ports.push(txPort);
    } else {
      txPort = yield* xg.evtchn.bindInterdomain(this.v, this.frontendId, txEv, (_p, v) => vif.txInterrupt(v));
      if (txPort >= 0) this.ports.push(txPort);
      rxPort = yield* xg.evtchn.bindInterdomain(this.v, this.frontendId, rxEv, () => vif.rxInterrupt());
      if (rxPort >= 0) this.ports.push(rxPort);
    }
    if (txPort < 0 || rxPort < 0) {
      yield* this.unbind();
      yield* this.unmap();
      return yield* this.fail(txPort < 0 ? txPort : rxPort, `binding event channels tx ${txEv} rx ${rxEv}`, true);
    }
    const rings: VifRings = {
      tx: BackRing.init(this.tx.page, netifTxRequestCodec, netifTxResponseCodec, NETIF_TX_RING_ENTRY_SIZE),
      rx: BackRing.init(this.rx.page, netifRxRequestCodec, netifRxResponseCodec, NETIF_RX_RING_ENTRY_SIZE),
      txPort,
      rxPort,
      canSg,
      gsoTcpv4,
      ipCsum: !noCsum,
    };
    // The guest-RX kthread: not bound in 3.18 (kthread_create); the model puts it on Dom0's
    // last vCPU, away from vCPU 0 where the event channels, the TX NAPI and the bridge run.
    const cpu = this.dom0.threads.length - 1;
    const kt = this.dom0.kthread(`${vif.name}-q0-guest-rx`, cpu);
    vif.connect(rings, kt, this.dom0.domain.vcpus[cpu]!);
    // The vif joins the bridge once its features are known (the hotplug script's brctl addif).
    this.port = this.dom0.addBridgePort(this.bridge, vif);
    vif.onCarrierOff = () => this.port?.setCarrier(false);
    const hp = yield* this.dom0.xenbus.readText(`${dev.nodename}/hotplug-status`);
    if (hp.ok && hp.value === 'connected') yield* xenbusSwitchState(dev, XenbusStateConnected);
  }

  private *fail(err: number, what: string, fatal: boolean): ProcessGenerator<void> {
    this.connectError = { err, what };
    if (fatal) yield* xenbusDevFatal(this.dev, err, what);
    this.onChange();
  }

  private *unbind(): ProcessGenerator<void> {
    for (const p of this.ports.splice(0)) yield* this.dom0.kernel.evtchn.close(this.v, p);
  }

  private *unmap(): ProcessGenerator<void> {
    const xg = this.dom0.kernel;
    if (this.tx !== null) yield* xenbusUnmapRingVfree(this.dev, xg, this.v, this.tx);
    if (this.rx !== null) yield* xenbusUnmapRingVfree(this.dev, xg, this.v, this.rx);
    this.tx = null;
    this.rx = null;
  }

  /** xenvif_disconnect: carrier off and off the bridge, kthread stopped, channels unbound, rings unmapped. */
  *disconnect(): ProcessGenerator<void> {
    this.vif.disconnect();
    this.port?.remove();
    this.port = null;
    yield* this.unbind();
    yield* this.unmap();
  }

  /** netback_remove: the device goes (its watch too). */
  *remove(): ProcessGenerator<void> {
    if (this.removed) return;
    yield* this.disconnect();
    yield* xenbusUnwatchOtherend(this.dev);
    this.removed = true;
    this.onChange();
  }

  /** The backend's state as a name, for messages. */
  get stateName(): string {
    return xenbusStrstate(this.dev.state);
  }

  /** Mapped ring pages right now (0 after a clean disconnect). */
  get mappedRings(): number {
    return (this.tx === null ? 0 : 1) + (this.rx === null ? 0 : 1);
  }

  /** XenbusStateClosing, re-exported for the path. */
  static readonly CLOSING = XenbusStateClosing;
}
