import type { Env, KernelThread, SimEvent, ThreadCpu } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import type { NetDevice, Stack } from '../net/index.js';
import type { Domain, Hypervisor, Toolstack, XenbusClient } from '../xen/index.js';
import type { XenGuest } from '../xen/guest/index.js';
import type { GuestPacketMemory } from './packet-memory.js';

/** A kernel (a guest's or Dom0's) as an I/O path sees it. */
export interface PathKernel {
  readonly domain: Domain;
  readonly kernel: XenGuest;
  readonly xenbus: XenbusClient;
  /** The kernel's network stack, on its first vCPU. */
  readonly stack: Stack;
  readonly memory: GuestPacketMemory;
  /** The kernel's thread scheduling, one per vCPU. */
  readonly threads: readonly ThreadCpu[];
  /** Starts a kernel thread on vCPU `cpu` (kthread_run + kthread_bind). */
  kthread(name: string, cpu: number): KernelThread;
}

/** A port of Dom0's bridge (an attached NetDevice), for a path that puts a backend device on it. */
export interface BridgePortHandle {
  /** Takes the port off its bridge (its frames in flight are dropped and counted). */
  remove(): void;
  /** The device's carrier changed (netif_carrier_on/off): the bridge disables or re-enables the port (br_port_carrier_check). */
  setCarrier(up: boolean): void;
}

/** Dom0 as a path sees it: its kernel, and its bridges. */
export interface PathDom0 extends PathKernel {
  /** Puts `dev` on bridge `bridge` as a port (its frames are taken in Dom0's receive softirq); an unknown bridge is an error naming it. */
  addBridgePort(bridge: string, dev: NetDevice): BridgePortHandle;
}

/** The host a NIC is attached on. */
export interface PathHost {
  readonly env: Env;
  readonly profile: Profile;
  readonly hv: Hypervisor;
  readonly toolstack: Toolstack;
  readonly dom0: PathDom0;
  /** The host's tag ('' for a lone host). */
  readonly tag: string;
}

/** One NIC of a guest, as the host description gives it. */
export interface NicSpec {
  /** The I/O path's name (`pv`, `hv2m`, `emulated`, `sriov`, `shmem`…). */
  path: string;
  /** xx:xx:xx:xx:xx:xx, lower-case. */
  mac: string;
  /** IPv4 address and prefix length. */
  ip: string;
  prefix: number;
  /** Dom0 bridge the NIC's backend joins. */
  bridge: string;
  /** Path options (validated by the path). */
  options: Readonly<Record<string, unknown>>;
}

/** A NIC a path attached: the device the guest's stack uses, and how to take it away. */
export interface AttachedNic {
  /** The guest-side device (netfront, the e1000 driver, a VF driver…). */
  readonly device: NetDevice;
  /** The path's own counters for this NIC, by name (frames, slots, drops…). */
  stats(): Record<string, number>;
  /** Hot-unplug: closes the device on both sides (xl network-detach). */
  detach(): Generator<SimEvent<unknown>, void, unknown>;
  /** Frames the guest sent that did not pass the interface's transmit queue (HV²M: pushed through a channel). */
  divertedFrames?(): number;
  /**
   * Waits until the path's own control plane has settled once every guest is up (HV²M: a
   * channel with every peer Dom0 lists, open for receiving); false if it did not within the
   * path's own bound.
   */
  ready?(): Generator<SimEvent<unknown>, boolean, unknown>;
}

/**
 * An I/O path between a guest and the rest of the world. A path registers itself once (in
 * `PATHS`, or a registry given to the host builder); the builder calls `attach` for each of
 * a guest's NICs that names it, after the guest's kernel has booted, and puts the returned
 * device in the guest's stack with the NIC's address.
 */
export interface IoPath {
  readonly name: string;
  /** One-line description for `--help` and reports. */
  readonly description: string;
  attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): Generator<SimEvent<unknown>, AttachedNic, unknown>;
}

/** The I/O paths a host builder knows, by name. */
export class PathRegistry {
  private readonly paths = new Map<string, IoPath>();

  register(p: IoPath): this {
    if (this.paths.has(p.name)) throw new Error(`I/O path "${p.name}" is registered twice`);
    this.paths.set(p.name, p);
    return this;
  }

  get(name: string): IoPath | undefined {
    return this.paths.get(name);
  }

  get names(): string[] {
    return [...this.paths.keys()];
  }
}
