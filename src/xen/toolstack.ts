import type { SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { __HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN } from './abi/index.js';
import type { Domain, DomainConfig } from './domain.js';
import { XenGuest } from './guest/xen-guest.js';
import { XenbusClient, type StoreLocation } from './guest/xenbus.js';
import type { Hypervisor } from './hypervisor.js';
import { XenStore } from './xenstore/store.js';
import { Xenstored, xenstoredCosts } from './xenstore/xenstored.js';
import type { XsConnection } from './xenstore/connection.js';

/**
 * Where the toolstack puts a guest's xenstore ring: one of libxc's HVM "special pages", which
 * sit just below 0xff000 in the MMIO hole (X86_HVM_END_SPECIAL_REGION) and are reserved in the
 * guest's memory map.
 */
export const XENSTORE_SPECIAL_GFN = 0xfeffc;

export class ToolstackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolstackError';
  }
}

/** A guest the toolstack built: its domain, its xenstore ring, and its /vm uuid. */
export interface GuestRecord {
  domain: Domain;
  store: StoreLocation;
  uuid: string;
}

/**
 * What xl/libxl and xenstored do around the hypervisor, in the model: boot Dom0's kernel and
 * xenstored, build guests (domain, xenstore ring page and event channel, HVM params, the
 * domain's XenStore home as libxl writes it, INTRODUCE so that @introduceDomain fires), and
 * tear them down (xenstored sees the domain die — VIRQ_DOM_EXC on Xen — and releases it, so
 * @releaseDomain fires, then the toolstack removes what it wrote). The toolstack's own
 * XenStore writes go through an in-process Dom0 connection, untimed: domain building is not
 * what the model measures. Guests' xenbus traffic and xenstored's work are timed.
 */
export class Toolstack {
  readonly xenstored: Xenstored;
  /** The toolstack's own (privileged) XenStore connection. */
  readonly xs: XsConnection;
  private readonly guests = new Map<number, GuestRecord>();
  /** Dom0's kernel xenbus, once connected (for backends such as netback). */
  dom0Xenbus: XenbusClient | null = null;

  private constructor(
    readonly hv: Hypervisor,
    readonly profile: Profile,
    readonly store: XenStore,
    readonly dom0: Domain,
    readonly dom0Kernel: XenGuest,
  ) {
    this.xs = store.connect(0);
    this.xenstored = new Xenstored(hv.env, store, dom0Kernel, dom0.vcpus[0]!, xenstoredCosts(profile));
    hv.onDomainReleased((d) => {
      if (d.domid !== 0) hv.env.process(this.released(d), `xenstored: release d${d.domid}`);
    });
  }

  /**
   * Creates Dom0, boots its kernel's Xen support, starts xenstored on Dom0's first vCPU and
   * connects Dom0's own kernel xenbus to it (as xenbus_backend does when xenstored runs in Dom0).
   */
  static *boot(
    hv: Hypervisor,
    profile: Profile,
    dom0: Omit<DomainConfig, 'kind'>,
    store = new XenStore({ domainExists: (id) => hv.domain(id) !== undefined }),
  ): Generator<SimEvent<unknown>, Toolstack, unknown> {
    const d0 = hv.createDomain({ ...dom0, kind: 'dom0' });
    const k0 = new XenGuest(hv, d0);
    const v0 = d0.vcpus[0]!;
    const rc = yield* k0.init(v0);
    if (rc !== 0) throw new ToolstackError(`Dom0 kernel: Xen setup failed (${rc})`);
    const ts = new Toolstack(hv, profile, store, d0, k0);
    ts.writeHome(d0, ts.uuidFor(d0), null);
    hv.env.process(ts.xenstored.run(), 'xenstored');
    // Dom0's kernel allocates its own ring page and a port for xenstored (xenbus_init, local domain).
    const gfn = k0.frames.alloc();
    if (gfn === null) throw new ToolstackError('Dom0 kernel: no memory for the xenstore ring');
    const port = yield* k0.evtchn.allocUnbound(v0, 0);
    if (port < 0) throw new ToolstackError(`Dom0 kernel: cannot allocate the xenstore port (${port})`);
    const att = yield* ts.xenstored.attach(0, gfn, port);
    if (att !== 0) throw new ToolstackError(`xenstored: cannot attach Dom0's ring (${att})`);
    const xb = yield* XenbusClient.connect(k0, v0, profile, { gfn, port });
    if (typeof xb === 'number') throw new ToolstackError(`Dom0 kernel: xenbus connect failed (${xb})`);
    ts.dom0Xenbus = xb;
    return ts;
  }

  /** Guests built and not yet released. */
  guest(domid: number): GuestRecord | undefined {
    return this.guests.get(domid);
  }

  /**
   * Builds a guest: the domain, its xenstore ring (a special page) and event channel, the HVM
   * params (or, for PV, the start_info values returned in the record), its XenStore home, then
   * INTRODUCE (firing @introduceDomain) and xenstored's attachment to its ring.
   */
  *createGuest(config: DomainConfig): Generator<SimEvent<unknown>, GuestRecord, unknown> {
    if (config.kind === 'dom0') throw new ToolstackError(`domain "${config.name}": Dom0 is created by boot()`);
    const d = this.hv.createDomain(config);
    const gfn = XENSTORE_SPECIAL_GFN;
    if (!d.memory.populateSpecial(gfn))
      throw new ToolstackError(`domain "${config.name}": cannot populate the xenstore page at gfn 0x${gfn.toString(16)}`);
    // libxl: xc_evtchn_alloc_unbound(domid, store_domid = 0), a privileged hypercall from Dom0.
    const arg: { dom: number; remote_dom: number; port?: number } = { dom: d.domid, remote_dom: 0 };
    const rc = yield* this.hv.hypercall(this.dom0.vcpus[0]!, { nr: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_alloc_unbound, arg });
    if (rc < 0) throw new ToolstackError(`domain "${config.name}": cannot allocate the xenstore event channel (${rc})`);
    const store = { gfn, port: arg.port! };
    if (d.isHvm) {
      this.hv.setHvmParam(d, HVM_PARAM_STORE_PFN, BigInt(gfn));
      this.hv.setHvmParam(d, HVM_PARAM_STORE_EVTCHN, BigInt(store.port));
    }
    const uuid = this.uuidFor(d);
    this.writeHome(d, uuid, store);
    this.store.introduceDomain(d.domid, store);
    const att = yield* this.xenstored.attach(d.domid, gfn, store.port);
    if (att !== 0) throw new ToolstackError(`xenstored: cannot attach to d${d.domid}'s ring (${att})`);
    const rec = { domain: d, store, uuid };
    this.guests.set(d.domid, rec);
    return rec;
  }

  /** Destroys a guest (xl destroy); XenStore learns of it through the hypervisor's release. */
  destroyGuest(d: Domain): void {
    this.hv.destroyDomain(d);
  }

  /** xenstored noticing a dead domain, then the toolstack cleaning up after it. */
  private *released(d: Domain): Generator<SimEvent<unknown>, void, unknown> {
    yield* this.xenstored.detach(d.domid);
    this.store.releaseDomain(d.domid);
    const rec = this.guests.get(d.domid);
    this.guests.delete(d.domid);
    this.xs.rm(`/local/domain/${d.domid}`);
    this.xs.rm(`/libxl/${d.domid}`);
    if (rec !== undefined) this.xs.rm(`/vm/${rec.uuid}`);
  }

  /**
   * A vif's frontend and backend directories as libxl writes them (libxl_device_nic_add →
   * libxl__device_nic_setdefault / libxl__nic_from_xenstore; xen-abi.md §2.2), in one
   * transaction, both `state` = 1 (Initialising): the backend's directory owned by the backend
   * domain and readable by the guest, the frontend's owned by the guest and readable by the
   * backend, with the toolstack's keys (mac, handle, bridge…) in the frontend made read-only
   * to the guest as libxl does. Returns the two paths.
   */
  addVif(
    d: Domain,
    devid: number,
    vif: { mac: string; bridge: string; backend?: number; mtu?: number; script?: string; ip?: string },
  ): { frontend: string; backend: string } {
    if (!Number.isInteger(devid) || devid < 0) throw new ToolstackError(`domain "${d.name}": vif devid ${devid} is not a whole number >= 0`);
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(vif.mac))
      throw new ToolstackError(`domain "${d.name}" vif ${devid}: mac "${vif.mac}" is not xx:xx:xx:xx:xx:xx (lower-case hex)`);
    const be = vif.backend ?? 0;
    const frontend = `/local/domain/${d.domid}/device/vif/${devid}`;
    const backend = `/local/domain/${be}/backend/vif/${d.domid}/${devid}`;
    const xs = this.xs;
    if (xs.read(frontend).ok) throw new ToolstackError(`domain "${d.name}": vif ${devid} already exists`);
    const tx = must(xs.transactionStart(), 'transaction start');
    const put = (path: string, value: string): void => void must(xs.write(path, value, tx), `write ${path}`);
    const perms = (path: string, p: string[]): void => void must(xs.setPerms(path, p, tx), `set perms ${path}`);
    must(xs.mkdir(backend, tx), `mkdir ${backend}`);
    perms(backend, [`n${be}`, `r${d.domid}`]);
    put(`${backend}/frontend`, frontend);
    put(`${backend}/frontend-id`, String(d.domid));
    put(`${backend}/online`, '1');
    put(`${backend}/state`, '1');
    put(`${backend}/script`, vif.script ?? '/etc/xen/scripts/vif-bridge');
    put(`${backend}/mac`, vif.mac);
    put(`${backend}/bridge`, vif.bridge);
    put(`${backend}/handle`, String(devid));
    put(`${backend}/type`, 'vif');
    put(`${backend}/hotplug-status`, '');
    if (vif.mtu !== undefined) put(`${backend}/mtu`, String(vif.mtu));
    // libxl__device_nic_add: the nic's configured ip= goes into the backend directory (Dom0-owned).
    if (vif.ip !== undefined) put(`${backend}/ip`, vif.ip);
    must(xs.mkdir(frontend, tx), `mkdir ${frontend}`);
    perms(frontend, [`n${d.domid}`, `r${be}`]);
    const ro = [`n${be}`, `r${d.domid}`];
    const fixed: [string, string][] = [
      ['backend', backend],
      ['backend-id', String(be)],
      ['handle', String(devid)],
      ['mac', vif.mac],
      ['trusted', '1'],
    ];
    if (vif.mtu !== undefined) fixed.push(['mtu', String(vif.mtu)]);
    for (const [k, v] of fixed) {
      put(`${frontend}/${k}`, v);
      perms(`${frontend}/${k}`, ro);
    }
    put(`${frontend}/state`, '1');
    must(xs.transactionEnd(tx, true), 'transaction commit');
    return { frontend, backend };
  }

  /** Removes a vif's directories (libxl after the device has closed). */
  removeVif(d: Domain, devid: number, backend = 0): void {
    this.xs.rm(`/local/domain/${d.domid}/device/vif/${devid}`);
    this.xs.rm(`/local/domain/${backend}/backend/vif/${d.domid}/${devid}`);
  }

  /** The domain's XenStore home as libxl creates it, in one transaction (xen-abi.md §2.1). */
  private writeHome(d: Domain, uuid: string, store: StoreLocation | null): void {
    const xs = this.xs;
    const tx = must(xs.transactionStart(), 'transaction start');
    const home = `/local/domain/${d.domid}`;
    const put = (path: string, value: string): void => void must(xs.write(path, value, tx), `write ${path}`);
    const perms = (path: string, p: string[]): void => void must(xs.setPerms(path, p, tx), `set perms ${path}`);
    const ro = ['n0', `r${d.domid}`];
    const own = [`n${d.domid}`];
    must(xs.mkdir(home, tx), `mkdir ${home}`);
    perms(home, ro);
    put(`${home}/name`, d.name);
    put(`${home}/domid`, String(d.domid));
    put(`${home}/vm`, `/vm/${uuid}`);
    for (let i = 0; i < d.vcpus.length; i++) put(`${home}/cpu/${i}/availability`, 'online');
    const kib = String(d.config.memoryMiB * 1024);
    put(`${home}/memory/static-max`, kib);
    put(`${home}/memory/target`, kib);
    for (const dir of ['device', 'control']) {
      must(xs.mkdir(`${home}/${dir}`, tx), `mkdir ${dir}`);
      perms(`${home}/${dir}`, ro);
    }
    put(`${home}/control/platform-feature-multiprocessor-suspend`, '1');
    put(`${home}/control/platform-feature-xs_reset_watches`, '1');
    put(`${home}/control/shutdown`, '');
    perms(`${home}/control/shutdown`, own);
    for (const dir of ['data', 'drivers', 'feature', 'attr', 'error']) {
      must(xs.mkdir(`${home}/${dir}`, tx), `mkdir ${dir}`);
      perms(`${home}/${dir}`, own);
    }
    if (store !== null) {
      put(`${home}/store/port`, String(store.port));
      put(`${home}/store/ring-ref`, String(store.gfn));
    }
    put(`/vm/${uuid}/uuid`, uuid);
    put(`/vm/${uuid}/name`, d.name);
    put(`/vm/${uuid}/start_time`, (this.hv.env.now / 1e9).toFixed(2));
    perms(`/vm/${uuid}`, ro);
    put(`/libxl/${d.domid}/type`, d.isHvm ? 'hvm' : 'pv');
    must(xs.transactionEnd(tx, true), 'transaction commit');
  }

  /** A deterministic uuid for a domain, drawn from the scenario's seeded RNG. */
  private uuidFor(d: Domain): string {
    if (d.domid === 0) return '00000000-0000-0000-0000-000000000000';
    const rng = this.hv.rng(`uuid/${d.name}`);
    const hex = Array.from({ length: 16 }, () => rng.int(256).toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

function must<T>(r: { ok: true; value: T } | { ok: false; error: string }, what: string): T {
  if (!r.ok) throw new ToolstackError(`toolstack XenStore ${what}: ${r.error}`);
  return r.value;
}
