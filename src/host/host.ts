import { KernelThread, MovableCpu, ThreadCpu, type Env, type SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { Stack, ipv4, mac, type Interface, type NetDevice } from '../net/index.js';
import { Hypervisor, Toolstack, bootGuestKernel, type Domain, type XenbusClient } from '../xen/index.js';
import type { XenGuest } from '../xen/guest/index.js';
import {
  GuestPacketMemory,
  Hv2mDiscoveryd,
  PhysicalNic,
  sriovNicOf,
  physicalNicCosts,
  defaultPaths,
  parseHv2mPolicy,
  type PathRegistry,
  type WirePort,
  type AttachedNic,
  type BridgePortHandle,
  type NicSpec,
  type PathDom0,
  type PathHost,
  type PathKernel,
} from '../vnet/index.js';
import {
  parseGuest,
  parseHost,
  HostDescriptionError,
  type GuestDescription,
  type GuestInput,
  type HostDescription,
  type HostInput,
} from './description.js';
import { Dom0Network } from './dom0-network.js';

/** Paths whose guests need hv2m-discoveryd in Dom0. */
const HV2M_PATHS = new Set(['hv2m', 'shmem']);

/**
 * A booted kernel (a guest's or Dom0's) with its network stack and threads. The stack, the
 * threads and the applications run on the kernel's `cpus`, each bound to a vCPU of `domain`;
 * a guest that migrates keeps all of them and is re-homed onto a domain of another host
 * (`rehome`, src/host/migration.ts).
 */
export class KernelSide implements PathKernel {
  readonly stack: Stack;
  readonly memory: GuestPacketMemory;
  readonly threads: readonly ThreadCpu[];
  /** The kernel's CPUs, one per vCPU of its domain, rebound when it migrates. */
  readonly cpus: readonly MovableCpu[];

  constructor(
    readonly env: Env,
    profile: Profile,
    private home: Domain,
    private xen: XenGuest,
    private bus: XenbusClient,
    stackName: string,
  ) {
    this.memory = new GuestPacketMemory(xen.mem, xen.frames);
    this.cpus = home.vcpus.map((v) => new MovableCpu(v));
    this.stack = new Stack({ env, cpu: this.cpus[0]!, profile, name: stackName, memory: this.memory });
    const costs = { contextSwitch: profile.ns('guest.sched.contextSwitch'), wakeup: profile.ns('guest.sched.wakeup') };
    this.threads = this.cpus.map((c) => new ThreadCpu(c, costs));
  }

  get domain(): Domain {
    return this.home;
  }

  get kernel(): XenGuest {
    return this.xen;
  }

  get xenbus(): XenbusClient {
    return this.bus;
  }

  /**
   * Live migration's resume: the kernel now runs in `domain` (same vCPU count) with the Xen
   * support it re-initialised there; its CPUs are rebound to that domain's vCPUs.
   */
  rehome(domain: Domain, kernel: XenGuest, xenbus: XenbusClient): void {
    if (domain.vcpus.length !== this.cpus.length)
      throw new Error(`${this.stack.name}: resuming ${this.cpus.length} vCPUs in a domain of ${domain.vcpus.length} (model bug)`);
    this.home = domain;
    this.xen = kernel;
    this.bus = xenbus;
    this.cpus.forEach((c, i) => c.rebind(domain.vcpus[i]!));
  }

  kthread(name: string, cpu: number): KernelThread {
    const tc = this.threads[cpu];
    if (tc === undefined) throw new RangeError(`${this.domain.name}: no vCPU ${cpu} for kernel thread ${name} (it has ${this.threads.length})`);
    return new KernelThread(this.env, name, tc);
  }
}

/** Dom0's kernel: a KernelSide with the host's bridges. */
export class Dom0Side extends KernelSide implements PathDom0 {
  network!: Dom0Network;
  addBridgePort(bridge: string, dev: NetDevice): BridgePortHandle {
    return this.network.addPort(bridge, dev);
  }
}

/** One NIC of a guest, attached. */
export interface GuestNic {
  readonly spec: NicSpec;
  readonly devid: number;
  readonly attached: AttachedNic;
  readonly iface: Interface;
}

/** A guest on a host: its description, domain, kernel and NICs. */
export class Guest {
  readonly nics: GuestNic[] = [];
  constructor(
    readonly desc: GuestDescription,
    readonly side: KernelSide,
  ) {}
  get name(): string {
    return this.desc.name;
  }
  get domain(): Domain {
    return this.side.domain;
  }
  get stack(): Stack {
    return this.side.stack;
  }
  get domid(): number {
    return this.side.domain.domid;
  }
}

export interface HostOptions {
  /** The I/O paths NICs may name (default: every path vnet registers). */
  paths?: PathRegistry;
  /** Where the description came from, for errors (a file name). */
  where?: string;
}

/**
 * A Xen host built from a description: the hypervisor with its pCPUs, Dom0 (kernel, xenstored,
 * network stack and bridges), and guests, each booted to a connected xenbus with a network
 * stack on its first vCPU and its NICs attached by their I/O paths. Guests can be added to and
 * removed from a running host.
 */
export class Host implements PathHost {
  readonly guests = new Map<string, Guest>();
  /** Dom0's physical NIC ports (eth0, eth1…), each a port of one of its bridges. */
  readonly nics: PhysicalNic[] = [];
  readonly paths: PathRegistry;
  /** hv2m-discoveryd in Dom0, when the description asks for HV²M (its `hv2m` field) or a NIC's path needs it. */
  discoveryd: Hv2mDiscoveryd | null = null;

  private constructor(
    readonly env: Env,
    readonly profile: Profile,
    readonly desc: HostDescription,
    readonly hv: Hypervisor,
    readonly toolstack: Toolstack,
    readonly dom0: Dom0Side,
    paths: PathRegistry,
  ) {
    this.paths = paths;
  }

  get tag(): string {
    return this.hv.tag;
  }

  get name(): string {
    return this.desc.name;
  }

  /** Builds a host (Dom0 first, then each guest in order) — a process: building takes simulated time. */
  static *build(env: Env, profile: Profile, input: HostInput | HostDescription, opts: HostOptions = {}): Generator<SimEvent<unknown>, Host, unknown> {
    const where = opts.where ?? 'host';
    const desc = parseHost(input, where);
    const paths = opts.paths ?? defaultPaths();
    for (const [i, g] of desc.guests.entries()) {
      for (const [j, n] of g.nics.entries()) {
        if (paths.get(n.path) === undefined)
          throw new HostDescriptionError(where, [
            `guests.${i}.nics.${j}.path: "${n.path}" is not an I/O path this build knows (${paths.names.join(', ') || 'none'})`,
          ]);
      }
    }
    const hv = new Hypervisor(env, profile, { pcpus: desc.pcpus, tag: desc.name });
    const d0 = desc.dom0;
    const ts = yield* Toolstack.boot(hv, profile, {
      name: 'Domain-0',
      vcpus: d0.vcpus,
      memoryMiB: d0.memoryMiB,
      ...(d0.weight !== undefined ? { weight: d0.weight } : {}),
      ...(d0.pinning !== undefined ? { pinning: d0.pinning } : {}),
    });
    const dom0 = new Dom0Side(env, profile, ts.dom0, ts.dom0Kernel, ts.dom0Xenbus!, `${desc.name}:Domain-0`);
    dom0.network = new Dom0Network(env, profile, dom0, desc, (bridge) => {
      const r = hv.rng(`mac/${bridge}`);
      return 0x02_00_00_00_00_00 + r.int(0x10000) * 0x1000000 + r.int(0x1000000); // locally administered
    });
    const host = new Host(env, profile, desc, hv, ts, dom0, paths);
    const wantsHv2m = desc.hv2m !== undefined || desc.guests.some((g) => g.nics.some((n) => HV2M_PATHS.has(n.path)));
    if (wantsHv2m) {
      const policy = desc.hv2m?.policy === undefined ? {} : parseHv2mPolicy(desc.hv2m.policy, `${where}: hv2m.policy`);
      host.discoveryd = new Hv2mDiscoveryd(env, hv, dom0.xenbus, policy);
      yield* host.discoveryd.start();
    }
    for (const g of desc.guests) yield* host.startGuest(g);
    return host;
  }

  /** Adds a guest to the running host (xl create). */
  *addGuest(input: GuestInput): Generator<SimEvent<unknown>, Guest, unknown> {
    const g = parseGuest(
      input,
      this.desc,
      [...this.guests.values()].map((x) => x.desc),
      `${this.name}: guest`,
    );
    for (const [j, n] of g.nics.entries()) {
      if (this.paths.get(n.path) === undefined)
        throw new HostDescriptionError(`${this.name}: guest ${g.name}`, [
          `nics.${j}.path: "${n.path}" is not an I/O path this build knows (${this.paths.names.join(', ')})`,
        ]);
    }
    return yield* this.startGuest(g);
  }

  /** Removes a guest (its NICs detached first, then xl destroy). */
  *removeGuest(name: string): Generator<SimEvent<unknown>, void, unknown> {
    const g = this.guests.get(name);
    if (g === undefined) throw new Error(`${this.name}: no guest named "${name}"`);
    this.guests.delete(name);
    for (const n of [...g.nics].reverse()) yield* n.attached.detach();
    this.toolstack.destroyGuest(g.domain);
    this.syncSriovFilters();
  }

  /**
   * The SR-IOV NIC's PF pool accepts, besides the PF's own address, the stations behind Dom0's
   * bridge on the PF's bridge: the other guests' NICs there (pv, emulated) and the bridge
   * itself — what an administrator sets with `bridge fdb add MAC dev PF self` (ixgbe's
   * ndo_fdb_add puts them in the PF's unicast filters), without which the VEB would send a
   * VF's frames for them to the wire. Kept in step as guests come and go.
   */
  private syncSriovFilters(): void {
    const nic = sriovNicOf(this.hv);
    if (nic === undefined) return;
    nic.pfFilter.clear();
    nic.pfFilter.add(this.dom0.network.bridge(nic.pf.bridge).mac);
    for (const g of this.guests.values())
      for (const n of g.nics) if (n.spec.path !== 'sriov' && n.spec.bridge === nic.pf.bridge) nic.pfFilter.add(mac(n.spec.mac));
  }

  /**
   * Puts a physical NIC port (the next ethN) in Dom0 on `bridge`, as a host's uplink is
   * enslaved to xenbr0. Its address is in Intel's OUI (00:1b:21), the rest from the host's
   * seeded stream. It carries frames once `cable` joins it to another host's port.
   */
  /**
   * The port a wire from `bridge` joins: the SR-IOV NIC's own wire port when the host has one
   * and its PF is on that bridge (the 82599 is then the host's uplink: Dom0's traffic leaves
   * through the PF and the VEB, the VFs' directly), else a new physical NIC in Dom0.
   */
  wirePort(bridge: string): WirePort {
    const nic = sriovNicOf(this.hv);
    if (nic !== undefined && nic.pf.bridge === bridge && !nic.wirePort.connected) return nic.wirePort;
    return this.addPhysicalNic(bridge);
  }

  addPhysicalNic(bridge: string): PhysicalNic {
    const name = `eth${this.nics.length}`;
    const r = this.hv.rng(`mac/${name}`);
    const mac = 0x00_1b_21_00_00_00 + r.int(0x1000000);
    const nic = new PhysicalNic(this.env, name, mac, this.hv.rng(`phys/${name}`), physicalNicCosts(this.profile));
    this.dom0.addBridgePort(bridge, nic);
    this.nics.push(nic);
    return nic;
  }

  /** Starts hv2m-discoveryd in Dom0 (default policy) if it is not running: a guest with an hv2m NIC arrives by migration. */
  *ensureDiscoveryd(): Generator<SimEvent<unknown>, Hv2mDiscoveryd, unknown> {
    if (this.discoveryd !== null) return this.discoveryd;
    const policy = this.desc.hv2m?.policy === undefined ? {} : parseHv2mPolicy(this.desc.hv2m.policy, `${this.name}: hv2m.policy`);
    const d = new Hv2mDiscoveryd(this.env, this.hv, this.dom0.xenbus, policy);
    this.discoveryd = d;
    yield* d.start();
    return d;
  }

  /** Whether a NIC on `path` needs hv2m-discoveryd in Dom0. */
  static needsDiscoveryd(path: string): boolean {
    return HV2M_PATHS.has(path);
  }

  guest(name: string): Guest {
    const g = this.guests.get(name);
    if (g === undefined) throw new Error(`${this.name}: no guest named "${name}"`);
    return g;
  }

  private *startGuest(g: GuestDescription): Generator<SimEvent<unknown>, Guest, unknown> {
    const rec = yield* this.toolstack.createGuest({
      name: g.name,
      kind: g.type,
      vcpus: g.vcpus,
      memoryMiB: g.memoryMiB,
      ...(g.weight !== undefined ? { weight: g.weight } : {}),
      ...(g.cap !== undefined ? { cap: g.cap } : {}),
      ...(g.pinning !== undefined ? { pinning: g.pinning } : {}),
      ...(g.tenant !== undefined ? { tenant: g.tenant } : {}),
    });
    const { kernel, xenbus } = yield* bootGuestKernel(this.hv, rec.domain, this.profile, g.type === 'pv' ? rec.store : undefined);
    const side = new KernelSide(this.env, this.profile, rec.domain, kernel, xenbus, `${this.name}:${g.name}`);
    const guest = new Guest(g, side);
    this.guests.set(g.name, guest);
    for (const [devid, n] of g.nics.entries()) {
      const [ip, prefix] = n.ip.split('/') as [string, string];
      const spec: NicSpec = { path: n.path, mac: n.mac, ip, prefix: Number(prefix), bridge: n.bridge, options: n.options };
      const attached = yield* this.paths.get(n.path)!.attach(this, side, spec, devid);
      const iface = side.stack.addInterface(attached.device, { address: ipv4(ip), prefix: spec.prefix });
      guest.nics.push({ spec, devid, attached, iface });
    }
    this.syncSriovFilters();
    return guest;
  }
}
