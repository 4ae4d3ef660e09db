import { SimEvent, type ProcessGenerator } from '../../sim/index.js';
import { mac } from '../../net/index.js';
import { XenbusStateClosed, XenbusStateClosing, XenbusStateConnected } from '../../xen/abi/index.js';
import type { AttachedNic, IoPath, NicSpec, PathHost, PathKernel } from '../path.js';
import { pvCosts } from './costs.js';
import { Netfront } from './netfront.js';
import { NetfrontDevice, type FrontendFaults } from './netfront-xenbus.js';
import { NetbackDevice, type NetbackFeatures } from './netback-xenbus.js';

/** Options of a `pv` NIC (NicSpec.options). */
export interface PvOptions {
  /** What netback offers (default: everything 3.18 offers; multi-queue-max-queues = Dom0's vCPUs). */
  backend?: Partial<NetbackFeatures>;
  /** The frontend writes feature-no-csum-offload=1 (default false: checksum offload on). */
  noCsumOffload?: boolean;
  /** A broken or hostile frontend's handshake (tests). */
  faults?: FrontendFaults;
}

/** A pv NIC's options checked: unknown keys and wrong types are errors naming them. */
export function parsePvOptions(o: Readonly<Record<string, unknown>>, where: string): PvOptions {
  const errs: string[] = [];
  const out: PvOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'noCsumOffload') {
      if (typeof v !== 'boolean') errs.push(`noCsumOffload: expected true or false, got ${JSON.stringify(v)}`);
      else out.noCsumOffload = v;
    } else if (k === 'backend') {
      const b = v as Record<string, unknown>;
      const be: Partial<NetbackFeatures> = {};
      for (const [bk, bv] of Object.entries(b ?? {})) {
        if (bk === 'maxQueues' && typeof bv === 'number' && Number.isInteger(bv) && bv >= 1) be.maxQueues = bv;
        else if ((bk === 'sg' || bk === 'gsoTcpv4' || bk === 'splitEventChannels') && typeof bv === 'boolean') be[bk] = bv;
        else
          errs.push(
            `backend.${bk}: expected sg/gsoTcpv4/splitEventChannels (true or false) or maxQueues (an integer >= 1), got ${JSON.stringify(bv)}`,
          );
      }
      out.backend = be;
    } else if (k === 'faults') {
      const f = (v ?? {}) as Record<string, unknown>;
      const omit = f.omitKeys ?? [];
      const keys = f.keys ?? {};
      const badKeys = Object.keys(f).filter((x) => x !== 'omitKeys' && x !== 'keys');
      if (!Array.isArray(omit) || omit.some((x) => typeof x !== 'string')) errs.push('faults.omitKeys: expected a list of XenStore key names');
      else if (typeof keys !== 'object' || keys === null || Object.values(keys).some((x) => typeof x !== 'string'))
        errs.push('faults.keys: expected an object of key names to string values');
      else if (badKeys.length > 0) errs.push(`faults.${badKeys[0]}: not a fault (omitKeys, keys)`);
      else out.faults = { omitKeys: omit as string[], keys: keys as Record<string, string> };
    } else errs.push(`${k}: not an option of the pv path (backend, noCsumOffload, faults)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid pv options:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out;
}

/** One attached pv NIC: both ends and the handshake's progress. */
export class PvNic implements AttachedNic {
  private waiter: { cond: () => boolean; ev: SimEvent<void> } | null = null;

  constructor(
    private readonly host: PathHost,
    private readonly guest: PathKernel,
    readonly devid: number,
    readonly front: NetfrontDevice,
    readonly back: NetbackDevice,
  ) {
    front.onChange = () => this.poke();
    back.onChange = () => this.poke();
  }

  get device(): Netfront {
    return this.front.nf;
  }

  /** Both ends Connected. */
  get connected(): boolean {
    return this.front.state === XenbusStateConnected && this.back.state === XenbusStateConnected && this.front.nf.carrier;
  }

  /** The handshake has ended, one way or the other. */
  get settled(): boolean {
    return (
      this.connected ||
      this.front.connectError !== null ||
      this.back.connectError !== null ||
      this.front.state >= XenbusStateClosing ||
      this.back.state >= XenbusStateClosing
    );
  }

  private poke(): void {
    const w = this.waiter;
    if (w !== null && w.cond()) {
      this.waiter = null;
      w.ev.succeed();
    }
  }

  /** Waits (in simulated time) until `cond` holds after one of the ends changed. */
  *until(cond: () => boolean): ProcessGenerator<void> {
    if (cond()) return;
    const ev = new SimEvent<void>(this.host.env);
    this.waiter = { cond, ev };
    yield ev;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.front.nf.stats) as [string, number][]) out[`front.${k}`] = v;
    for (const [k, v] of Object.entries(this.back.vif.stats) as [string, number][]) out[`back.${k}`] = v;
    return out;
  }

  /**
   * The guest is leaving this host by live migration (src/host/migration.ts), paused: the
   * toolstack takes the backend away at once (netback_remove: off the bridge, rings unmapped,
   * channels unbound — the bridge forgets the guest's MAC on that port), removes the vif's
   * directories, and the frontend lets go of the old connection (`NetfrontDevice.abandon`).
   * Returns the grants the frontend could not end. `domain`: the guest's domain on this host.
   */
  *abandon(domain: { domid: number; name: string }): ProcessGenerator<number> {
    if (!this.back.removed) yield* this.back.remove();
    this.host.toolstack.xs.rm(`/local/domain/${domain.domid}/device/vif/${this.devid}`);
    this.host.toolstack.xs.rm(`/local/domain/${this.back.dev.domid}/backend/vif/${domain.domid}/${this.devid}`);
    return this.front.abandon();
  }

  /**
   * xl network-detach: the toolstack sets the backend offline and Closing; the frontend closes,
   * the backend disconnects (rings unmapped, channels unbound, off the bridge) and is removed;
   * then the frontend device goes (grants ended, buffers freed) and the toolstack removes
   * both directories.
   */
  *detach(): ProcessGenerator<void> {
    const ts = this.host.toolstack;
    const b = this.back.dev.nodename;
    if (!this.back.removed) {
      ts.xs.write(`${b}/online`, '0');
      if (this.back.state === XenbusStateClosed) {
        // Already closed (a failed handshake): libxl does not wait; removing the directory
        // unregisters the backend device (netback_remove).
        yield* this.back.remove();
      } else {
        ts.xs.write(`${b}/state`, String(XenbusStateClosing));
        yield* this.until(() => this.back.removed);
      }
    }
    yield* this.front.remove();
    ts.removeVif(this.guest.domain, this.devid, this.back.dev.domid);
  }
}

/**
 * The PV split driver (DESIGN.md path 2): netfront in the guest, netback in Dom0 with the
 * vif on the bridge, after Linux 3.18. The toolstack writes the vif directories (libxl);
 * Dom0's backend probes and advertises its features; the guest's frontend connects; attach
 * returns once the handshake has ended — connected, or failed as Linux fails (the guest keeps
 * running with a device whose carrier is off).
 */
export class PvPath implements IoPath {
  readonly name = 'pv';
  readonly description = 'PV netfront/netback (Linux 3.18) through Dom0 and its bridge: two grant copies on Dom0 per frame';

  *attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): ProcessGenerator<AttachedNic> {
    const opts = parsePvOptions(nic.options, `${guest.domain.name}: vif ${devid}`);
    const costs = pvCosts(host.profile);
    host.toolstack.addVif(guest.domain, devid, { mac: nic.mac, bridge: nic.bridge, ip: nic.ip });
    const offered: NetbackFeatures = { sg: true, gsoTcpv4: true, splitEventChannels: true, maxQueues: host.dom0.threads.length, ...opts.backend };
    const back = new NetbackDevice(host.dom0, guest.domain.domid, devid, nic.bridge, costs, offered);
    const nf = new Netfront(host.env, `eth${devid}`, mac(nic.mac), guest.kernel, guest.domain.vcpus[0]!, costs, guest.memory);
    const front = new NetfrontDevice(guest, devid, nf, opts.faults ?? {}, opts.noCsumOffload ?? false);
    const pn = new PvNic(host, guest, devid, front, back);
    yield* back.probe();
    yield* front.probe();
    yield* pn.until(() => pn.settled);
    return pn;
  }
}
