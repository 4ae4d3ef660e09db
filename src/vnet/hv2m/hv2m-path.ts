import type { Env, ProcessGenerator } from '../../sim/index.js';
import { DeviceWrapper, type DeviceUpper, type Interface, type Packet } from '../../net/index.js';
import type { AttachedNic, IoPath, NicSpec, PathHost, PathKernel } from '../path.js';
import { PvPath, type PvNic } from '../pv/index.js';
import { HV2M_MAX_SLOTS, type ChannelLink, type Hv2mChannel, type Hv2mStats } from './channel.js';
import type { PeerChannel, PeerModule } from './peer-module.js';
import { hv2mCosts } from './costs.js';
import { Hv2mModule, type Hv2mModuleOptions } from './module.js';

/** Options of an `hv2m` NIC (NicSpec.options). */
export interface Hv2mOptions {
  /** GNTTABOP_copy ops per hypercall at most (default 64). */
  batchOps: number;
  /** Frames a per-peer queue holds (default 256). */
  queueLen: number;
  /** Buffers posted to each peer (default 256, the netif RX ring's size; at least HV2M_MAX_SLOTS + 1 so a 64 KiB frame fits). */
  rxBuffers: number;
  /** Options of the ordinary pv NIC beneath (see the pv path). */
  pv: Record<string, unknown>;
}

const DEFAULTS: Omit<Hv2mOptions, 'pv'> = { batchOps: 64, queueLen: 256, rxBuffers: 256 };

/** An hv2m NIC's options checked: unknown keys and values out of range are errors naming them. */
export function parseHv2mOptions(o: Readonly<Record<string, unknown>>, where: string): Hv2mOptions {
  const errs: string[] = [];
  const out: Hv2mOptions = { ...DEFAULTS, pv: {} };
  const int = (k: 'batchOps' | 'queueLen' | 'rxBuffers', v: unknown, lo: number, hi: number): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
      errs.push(`${k}: expected an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
    else out[k] = v;
  };
  for (const [k, v] of Object.entries(o)) {
    if (k === 'batchOps') int(k, v, 1, 1024);
    else if (k === 'queueLen') int(k, v, 1, 100_000);
    else if (k === 'rxBuffers') int(k, v, HV2M_MAX_SLOTS + 1, 256);
    else if (k === 'pv') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        errs.push(`pv: expected the options of the pv NIC beneath (an object), got ${JSON.stringify(v)}`);
      else out.pv = v as Record<string, unknown>;
    } else errs.push(`${k}: not an option of the hv2m path (batchOps, queueLen, rxBuffers, pv)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid hv2m options:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out;
}

/**
 * The guest's ordinary NIC as the stack sees it once the module is loaded: the same device
 * (frames, features, MTU), with the module seeing each frame it receives (fences) and the
 * stack's receive side shared with the module's channels, whose frames arrive on this
 * interface as if the NIC had received them (what XenLoop does with netif_rx on the NIC).
 */
export class Hv2mDevice extends DeviceWrapper {
  constructor(
    inner: PvNic['device'],
    private readonly seen: (pkt: Packet) => void,
    /** The stack took the device. */
    private readonly attached: () => void = () => undefined,
  ) {
    super(inner);
  }

  override attach(upper: DeviceUpper): void {
    super.attach(upper);
    this.attached();
  }

  get stackUpper(): DeviceUpper | null {
    return this.upper;
  }

  protected override onReceive(pkt: Packet): void {
    this.seen(pkt);
  }
}

/**
 * One attached NIC of a channel path (hv2m, shmem): the pv NIC beneath (the ordinary NIC and
 * the fallback), the module and its hook. Its counters are the pv NIC's and the module's
 * (prefixed with the path's name).
 */
export class PeerNic<C extends PeerChannel, S extends { txFrames: number }> implements AttachedNic {
  constructor(
    readonly pv: PvNic,
    readonly device: Hv2mDevice,
    readonly module: PeerModule<C, S>,
    private readonly unhook: () => void,
    private readonly env: Env,
    private readonly bound: number,
    private readonly prefix: string,
  ) {}

  stats(): Record<string, number> {
    const out = this.pv.stats();
    for (const [k, v] of Object.entries(this.module.stats)) if (typeof v === 'number') out[`${this.prefix}.${k}`] = v;
    return out;
  }

  /** Dom0 lists at least one peer for this guest, and every peer it lists has a connected channel open both ways (or was barred). */
  get settled(): boolean {
    const m = this.module;
    if (m.table.peers.size === 0) return false;
    for (const p of m.table.peers.values()) {
      if (m.barred.has(p.domid)) continue;
      const ch = m.channels.get(p.domid);
      if (ch === undefined || !ch.connected || !ch.rxOpen) return false;
    }
    return true;
  }

  divertedFrames(): number {
    return this.module.stats.txFrames;
  }

  /** Waits until settled, at most the watchdog's time (hv2m.watchdog) from now (a guest with no peer never settles: false). */
  *ready(): ProcessGenerator<boolean> {
    if (this.settled) return true;
    const ev = this.env.event<void>();
    const l = (): void => {
      if (this.settled && !ev.triggered) ev.succeed();
    };
    this.module.listeners.add(l);
    yield this.env.anyOf([ev, this.env.timeout(this.bound)]);
    this.module.listeners.delete(l);
    return this.settled;
  }

  /**
   * Module unload: the guest stops announcing itself, every channel is ended in order (frames
   * held meanwhile sent on the NIC) and the hook is removed; the pv NIC stays. What a guest does
   * before it migrates (DESIGN.md "Teardown").
   */
  *unloadModule(): ProcessGenerator<void> {
    if (this.unloaded) return;
    this.unloaded = true;
    yield* this.module.unload();
    const m = this.module;
    const chans = [...m.channels.values()];
    for (const ch of chans) yield* ch.shutdown(true);
    this.unhook();
  }

  private unloaded = false;

  /** Module unload, then the pv NIC detached. */
  *detach(): ProcessGenerator<void> {
    yield* this.unloadModule();
    yield* this.pv.detach();
  }
}

/** One attached hv2m NIC. */
export class Hv2mNic extends PeerNic<Hv2mChannel, Hv2mStats> {
  declare readonly module: Hv2mModule;
}

/**
 * HV²M (DESIGN.md "HV²M, as this project specifies it"): the guest's ordinary NIC is a pv NIC
 * (netfront, through Dom0 — the fallback for every peer without a channel), and the hv2m
 * module sits on the guest's stack: it announces the guest to hv2m-discoveryd, opens a
 * channel with every co-resident peer Dom0 lists for it, and its post-routing hook pushes the
 * frames for connected peers through them — one grant copy by Xen on the sender's vCPU.
 *
 * *(ours)* A diverted flow keeps its shape: TCP builds segments for the route's device, and
 * netfront offers scatter-gather, checksum offload and 64 KiB TSO — exactly HV²M's own limits
 * (frames up to 64 KiB as GSO, checksum flags carried) — so switching a peer between the
 * channel and the NIC never changes a segment's size or checksum state, and no route
 * re-validation is needed. With a fallback NIC of smaller limits Linux would re-run
 * sk_setup_caps on the next dst check; this build's fallback is always pv. A UDP datagram
 * larger than the MTU is seen whole by the hook (fragmentation comes after it) and crosses
 * the channel unfragmented as one frame of up to 64 KiB; on the NIC it is fragmented as usual.
 */
export class Hv2mPath implements IoPath {
  readonly name = 'hv2m';
  readonly description =
    'HV²M: a pv NIC plus guest-to-guest channels; the sender pushes each frame into a buffer the receiver posted with one GNTTABOP_copy (Xen on the sender’s vCPU), no Dom0';

  *attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): ProcessGenerator<AttachedNic> {
    const where = `${guest.domain.name}: vif ${devid}`;
    const opts = parseHv2mOptions(nic.options, where);
    const mopts: Hv2mModuleOptions = {
      rxBuffers: opts.rxBuffers,
      batchOps: opts.batchOps,
      queueLen: opts.queueLen,
      eagainStep: host.profile.ns('guest.gnttab.eagainRetryStep'),
    };
    return yield* attachPeerNic(
      host,
      guest,
      nic,
      devid,
      where,
      opts.pv,
      'hv2m',
      (link) => new Hv2mModule(host.env, guest.kernel, guest.xenbus, guest.domain.vcpus[0]!, link, hv2mCosts(host.profile), mopts),
      (pv, device, module, unhook) => new Hv2mNic(pv, device, module, unhook, host.env, host.profile.ns('hv2m.watchdog'), 'hv2m'),
    );
  }
}

/**
 * Attaches a channel path's NIC (hv2m, shmem): the pv NIC beneath, the device wrapper the
 * stack takes, the module (made by `makeModule` over the NIC's link) with its post-routing
 * hook, then loads the module (it announces the guest to hv2m-discoveryd).
 */
export function* attachPeerNic<C extends PeerChannel, S extends { txFrames: number }, M extends PeerModule<C, S>, N extends PeerNic<C, S>>(
  host: PathHost,
  guest: PathKernel,
  nic: NicSpec,
  devid: number,
  where: string,
  pvOptions: Record<string, unknown>,
  label: string,
  makeModule: (link: ChannelLink) => M,
  makeNic: (pv: PvNic, device: Hv2mDevice, module: M, unhook: () => void) => N,
): ProcessGenerator<N> {
  const pv = (yield* new PvPath().attach(host, guest, { ...nic, path: 'pv', options: pvOptions }, devid)) as PvNic;
  let iface: Interface | null = null;
  let module: M | null = null;
  const device = new Hv2mDevice(
    pv.device,
    (p) => module?.received(p),
    () => module?.linkUp(),
  );
  const link: ChannelLink = {
    mac: pv.device.mac,
    upper: () => device.stackUpper,
    iface: () => (iface ??= guest.stack.interfaces.find((i) => i.dev === device) ?? null),
    memory: guest.memory,
  };
  const m = makeModule(link);
  module = m;
  m.device = device;
  const unhook = guest.stack.hooks.postRouting.add(m.hook);
  const ok = yield* m.load();
  if (!ok) throw new Error(`${where}: the ${label} module could not announce itself or watch its peer list in XenStore`);
  return makeNic(pv, device, m, unhook);
}
