/**
 * One measured case of the paper's evaluation: a path, a test (ping, tcp_rr, udp_rr,
 * tcp_stream, udp_stream) and a message size, run on a freshly built host from a seed. The
 * result carries what the paper reports — response time, throughput, CPU utilization per
 * domain and Xen — and what explains it: per-frame counts of exits, hypercalls, grant copies,
 * notifications and interrupts over the measured window, and that the run's bytes arrived
 * intact and in order (a workload throws IntegrityError otherwise, and the case fails).
 *
 * Topologies: a path name `P` puts two guests on one host, each with one NIC on `P`;
 * `loopback` (a reference) runs both ends in one guest over its loopback device; `wire` (a
 * reference) puts one guest on each of two hosts, each on `pv`, their Dom0s' physical NICs
 * joined by a cable.
 */
import { SimEnvironment, type Env, type Process, type SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { ipv4, type Interface } from '../net/index.js';
import { Vcpu, diffCounters, type CounterSnapshot, type CpuSnapshot } from '../xen/index.js';
import type { AttachedNic, PathRegistry } from '../vnet/index.js';
import { Cluster, parseCluster, type ClusterDescription, type Host, type HostInput } from '../host/index.js';
import { CaptureSet, ChromeTraceSink, PcapSink } from './capture.js';
import { ping, tcpRr, tcpStream, udpRr, udpStream, type Endpoints, type LatencySummary } from './workloads/index.js';

export const TESTS = ['ping', 'tcp_rr', 'udp_rr', 'tcp_stream', 'udp_stream'] as const;
export type TestName = (typeof TESTS)[number];
export const REFERENCE_PATHS = ['loopback', 'wire'] as const;
/** The path each guest's NIC takes in the `wire` reference. */
export const WIRE_GUEST_PATH = 'pv';

export interface CaseSpec {
  path: string;
  test: TestName;
  /** Stream message size (bytes per send), or RR request/response size; ping's ICMP data size. */
  size: number;
  guestType: 'hvm' | 'pv';
  seed: number;
  /** Simulated time before the measured window (connection set-up, ARP, slow start), ns. */
  warmupNs: number;
  /** Simulated measured window, ns. */
  durationNs: number;
  /** Echo requests for ping (it counts round trips rather than time); default 100. */
  pingCount?: number;
}

/** Per-frame costs over the measured window: totals over every domain divided by frames sent. */
export interface PerFrame {
  vmexits: number;
  hypercalls: number;
  grantCopies: number;
  copiedBytes: number;
  notifications: number;
  interrupts: number;
  /** Frames Dom0's bridges took from a port. */
  dom0Packets: number;
}

export interface CaseResult {
  path: string;
  test: TestName;
  size: number;
  throughputMbps: number | null;
  transactionsPerSec: number | null;
  /** Round-trip (RR, ping) latency, µs. */
  latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number } | null;
  /** CPU utilization over the window as xentop gives it (100 = one pCPU), per domain, and Xen's own. */
  cpu: Record<string, number>;
  /** Per domain by name: Xen's time on that domain's grant copies (on its vCPUs, on its behalf), % of one pCPU; part of `cpu`. */
  copyCpu: Record<string, number>;
  /**
   * Devices that work apart from every CPU (the SR-IOV NIC's engines and switch, `nic`): busy %
   * of the window (100 = busy throughout); absent when the hosts have none.
   */
  devices?: Record<string, number>;
  perFrame: PerFrame;
  /** Frames the guests' stacks handed to their devices in the window (a GSO packet is one). */
  frames: number;
  /** Simulated seconds per wall-clock second for the whole case (build, warm-up, window); null if too fast to time. */
  simSpeed: number | null;
  /** Every byte of the run was checked against what was sent, in order. */
  verified: boolean;
  /** Simulated ns of the measured window (ping: from its first to its last echo). */
  windowNs: number;
}

type GuestIn = NonNullable<HostInput['guests']>[number];

function benchGuest(n: number, path: string | null, guestType: CaseSpec['guestType']): GuestIn {
  return {
    name: `vm${n}`,
    type: guestType,
    vcpus: 1,
    memoryMiB: 512,
    tenant: 'bench',
    nics: path === null ? [] : [{ path, mac: `00:16:3e:00:00:0${n}`, ip: `10.0.0.${n}/24` }],
  };
}

/** One bench host (the paper's test bed in shape): 4 pCPUs, Dom0 with 2 vCPUs, 1-vCPU guests. */
function benchMachine(n: number, guests: GuestIn[]): HostInput {
  return { name: `h${n}`, pcpus: 4, dom0: { vcpus: 2, memoryMiB: 1024, ip: `10.0.0.${255 - n}/24` }, guests };
}

/**
 * The bench hosts of a case: one host with two guests on the path (one guest for
 * `loopback`), or for `wire` two such hosts with a guest each, wired from Dom0 to Dom0.
 */
export function benchHosts(spec: Pick<CaseSpec, 'path' | 'guestType'>): ClusterDescription {
  if (spec.path === 'wire') {
    return parseCluster(
      {
        hosts: [benchMachine(1, [benchGuest(1, WIRE_GUEST_PATH, spec.guestType)]), benchMachine(2, [benchGuest(2, WIRE_GUEST_PATH, spec.guestType)])],
        wires: [{ between: ['h1', 'h2'] }],
      },
      'bench',
    );
  }
  const guests =
    spec.path === 'loopback'
      ? [benchGuest(1, null, spec.guestType)]
      : [benchGuest(1, spec.path, spec.guestType), benchGuest(2, spec.path, spec.guestType)];
  return parseCluster({ hosts: [benchMachine(1, guests)] }, 'bench');
}

interface Topology {
  hosts: Host[];
  ends: Endpoints;
  /** The interfaces whose transmitted packets are the case's frames. */
  frameIfaces: Interface[];
  /** Their NICs (frames a path sent around the interface's queue count too). */
  frameNics?: AttachedNic[];
}

function* buildTopology(
  env: Env,
  profile: Profile,
  spec: CaseSpec,
  paths: PathRegistry | undefined,
): Generator<SimEvent<unknown>, Topology, unknown> {
  const cluster = yield* Cluster.build(env, profile, benchHosts(spec), paths === undefined ? {} : { paths });
  const hosts = cluster.hosts;
  if (spec.path === 'loopback') {
    const s = cluster.hostOf('vm1').guest('vm1').stack;
    return { hosts, ends: { client: s, server: s, serverAddr: ipv4('127.0.0.1') }, frameIfaces: [s.lo] };
  }
  const a = cluster.hostOf('vm1').guest('vm1');
  const b = cluster.hostOf('vm2').guest('vm2');
  const nics = [...a.nics, ...b.nics];
  for (const n of nics) {
    if (n.attached.ready !== undefined && !(yield* n.attached.ready()))
      throw new Error(`case ${spec.path}/${spec.test}: the ${spec.path} path of ${n.iface.name} did not settle (its channels did not come up)`);
  }
  return {
    hosts,
    ends: { client: a.stack, server: b.stack, serverAddr: ipv4('10.0.0.2') },
    frameIfaces: nics.map((n) => n.iface),
    frameNics: nics.map((n) => n.attached),
  };
}

/** Counters, CPU time and frames at one instant (one end of a measured window). */
export interface Window {
  counters: Map<string, CounterSnapshot>;
  /** Domain names by counters key. */
  names: Map<string, string>;
  cpu: CpuSnapshot[];
  frames: number;
  bridgeFrames: number;
  at: number;
}

/** The hosts and the interfaces whose transmitted packets count as a window's frames. */
export interface Measured {
  hosts: readonly Host[];
  frameIfaces: readonly Interface[];
  frameNics?: readonly AttachedNic[];
}

export function snapshot(env: Env, topo: Measured): Window {
  const counters = new Map<string, CounterSnapshot>();
  const names = new Map<string, string>();
  for (const h of topo.hosts) {
    for (const [domid, c] of h.hv.countersSnapshot()) {
      counters.set(`${h.tag}/${domid}`, c.counters);
      names.set(`${h.tag}/${domid}`, c.name);
    }
  }
  let bridgeFrames = 0;
  for (const h of topo.hosts) for (const br of h.dom0.network.bridges.values()) bridgeFrames += br.stats.rxFrames;
  return {
    counters,
    names,
    cpu: topo.hosts.map((h) => h.hv.snapshot()),
    frames:
      topo.frameIfaces.reduce((n, i) => n + i.txq.stats.packets, 0) + (topo.frameNics ?? []).reduce((n, a) => n + (a.divertedFrames?.() ?? 0), 0),
    bridgeFrames,
    at: env.now,
  };
}

function sumKeys(d: CounterSnapshot, pick: (k: string) => boolean): number {
  let n = 0;
  for (const [k, v] of Object.entries(d)) if (pick(k)) n += v;
  return n;
}

export function measure(
  topo: Measured,
  from: Window,
  to: Window,
): Pick<CaseResult, 'cpu' | 'copyCpu' | 'devices' | 'perFrame' | 'frames' | 'windowNs'> {
  const tot: Record<string, number> = {};
  for (const [k, c] of to.counters) {
    const d = diffCounters(c, from.counters.get(k));
    for (const [name, v] of Object.entries(d)) tot[name] = (tot[name] ?? 0) + v;
  }
  const frames = to.frames - from.frames;
  const per = (n: number): number => (frames > 0 ? n / frames : 0);
  const cpu: Record<string, number> = {};
  const devices: Record<string, number> = {};
  let xen = 0;
  topo.hosts.forEach((h, i) => {
    const r = h.hv.cpuReport(from.cpu[i]);
    const prefix = topo.hosts.length > 1 ? `${h.name}:` : '';
    for (const d of r.domains) cpu[prefix + d.name] = d.percent;
    for (const d of r.devices) devices[prefix + d.name] = d.percent;
    xen += r.xenOwnPercent;
  });
  cpu.xen = xen;
  const copyCpu: Record<string, number> = {};
  const win = to.at - from.at;
  topo.hosts.forEach((h) => {
    const prefix = topo.hosts.length > 1 ? `${h.name}:` : '';
    for (const [key, c] of to.counters) {
      if (!key.startsWith(`${h.tag}/`)) continue;
      const ns = (c.grantCopyNs ?? 0) - (from.counters.get(key)?.grantCopyNs ?? 0);
      const name = to.names.get(key) ?? key;
      if (win > 0) copyCpu[prefix + name] = (ns / win) * 100;
    }
  });
  return {
    cpu,
    copyCpu,
    ...(Object.keys(devices).length > 0 ? { devices } : {}),
    frames,
    windowNs: to.at - from.at,
    perFrame: {
      vmexits: per(tot.exitTotal ?? 0),
      hypercalls: per(sumKeys(tot, (k) => k.startsWith('hypercalls.'))),
      grantCopies: per(tot.grantCopies ?? 0),
      copiedBytes: per(tot.grantCopyBytes ?? 0),
      notifications: per(tot.notifySent ?? 0),
      interrupts: per((tot.upcalls ?? 0) + (tot.vectorsInjected ?? 0)),
      dom0Packets: per(to.bridgeFrames - from.bridgeFrames),
    },
  };
}

const us = (ns: number): number => ns / 1000;
function latencyUs(l: LatencySummary): NonNullable<CaseResult['latencyUs']> {
  return { mean: us(l.mean), p50: us(l.p50), p90: us(l.p90), p99: us(l.p99), max: us(l.max) };
}

export type Outcome = Pick<CaseResult, 'throughputMbps' | 'transactionsPerSec' | 'latencyUs'>;

/** Starts a case's workload between two ends; its result once it has finished and verified its data. */
export function startTest(
  env: Env,
  ends: Endpoints,
  spec: Pick<CaseSpec, 'path' | 'test' | 'size' | 'warmupNs' | 'durationNs' | 'pingCount'>,
): Process<Outcome> {
  const timing = { warmup: spec.warmupNs, duration: spec.durationNs };
  const wrap = <T>(p: Process<T>, f: (r: T) => Outcome): Process<Outcome> =>
    env.process(
      (function* () {
        yield p;
        if (!p.ok) throw p.error;
        return f(p.value);
      })(),
      `${spec.test} result`,
    );
  switch (spec.test) {
    case 'ping':
      return wrap(ping(env, ends, { count: spec.pingCount ?? 100, size: spec.size }), (r) => ({
        throughputMbps: null,
        transactionsPerSec: null,
        latencyUs: latencyUs(r.rtt),
      }));
    case 'tcp_rr':
      return wrap(tcpRr(env, ends, { requestSize: spec.size, responseSize: spec.size, timing }), (r) => ({
        throughputMbps: null,
        transactionsPerSec: r.transactionsPerSecond,
        latencyUs: latencyUs(r.latency),
      }));
    case 'udp_rr':
      return wrap(udpRr(env, ends, { requestSize: spec.size, responseSize: spec.size, timing }), (r) => {
        if (r.stalled)
          throw new Error(
            `udp_rr over ${spec.path}: a datagram was lost and the run stalled (netperf semantics); the path must not lose datagrams at this load`,
          );
        return { throughputMbps: null, transactionsPerSec: r.transactionsPerSecond, latencyUs: latencyUs(r.latency) };
      });
    case 'tcp_stream':
      return wrap(tcpStream(env, ends, { messageSize: spec.size, timing }), (r) => ({
        throughputMbps: r.throughputMbps,
        transactionsPerSec: null,
        latencyUs: null,
      }));
    case 'udp_stream':
      return wrap(udpStream(env, ends, { messageSize: spec.size, timing }), (r) => ({
        throughputMbps: r.throughputMbps,
        transactionsPerSec: null,
        latencyUs: null,
      }));
  }
}

export interface RunOptions {
  /** The I/O paths the host builder knows (default: every registered path). */
  paths?: PathRegistry;
  /** Wall-clock milliseconds for simSpeed, from the harness (the CLI or a benchmark: the model never reads a clock). */
  wallMs: () => number;
  /** Capture the client guest's NIC (its loopback device for `loopback`) as a pcap. */
  pcap?: boolean;
  /** Record a Chrome trace of the host's pCPUs, up to this many events. */
  traceEvents?: number;
  /** In the trace, follow one in every this many frames the guests send as a flow (default 1: each; 0: none). */
  traceFlows?: number;
}

export interface CaseArtifacts {
  result: CaseResult;
  pcap: Uint8Array | null;
  /** With `pcap`: every other capture point of the case (guest interfaces, Dom0 bridge ports, channels), by name. */
  captures: Record<string, Uint8Array>;
  trace: string | null;
}

/** The vCPU each kernel's stack runs on now (its first: KernelSide), by stack name, for the trace's flow steps at Dom0's bridge ports. */
/** A Chrome trace of `hosts`' pCPUs from now, up to `events` events (none if 0 or absent), following one in `flows` frames (default 1). */
export function hostsTrace(env: Env, hosts: readonly Host[], events: number | undefined, flows: number | undefined): ChromeTraceSink | null {
  if (events === undefined || events <= 0) return null;
  return new ChromeTraceSink(
    env,
    events,
    hosts.map((h) => ({ tag: h.hv.tag, running: h.hv.pcpus.map((p) => p.curr?.name ?? null) })),
    { every: flows ?? 1, stackVcpu: stackVcpus(hosts) },
  );
}

function stackVcpus(hosts: readonly Host[]): (stack: string) => string | null {
  const sides = new Map<string, { cpus: readonly { current: unknown }[] }>();
  for (const h of hosts) {
    sides.set(h.dom0.stack.name, h.dom0);
    for (const g of h.guests.values()) sides.set(g.side.stack.name, g.side);
  }
  return (stack) => {
    const c = sides.get(stack)?.cpus[0]?.current;
    return c instanceof Vcpu ? c.name : null;
  };
}

/** Runs one case to completion; throws if the workload's data did not arrive intact. */
export function runCase(profile: Profile, spec: CaseSpec, opts: RunOptions): CaseResult {
  return runCaseWithArtifacts(profile, spec, opts).result;
}

/** runCase, with the pcap and trace the options ask for. */
export function runCaseWithArtifacts(profile: Profile, spec: CaseSpec, opts: RunOptions): CaseArtifacts {
  if (!(spec.durationNs > 0) || !(spec.warmupNs >= 0))
    throw new RangeError(`case ${spec.path}/${spec.test}: duration must be positive and warm-up not negative`);
  const wall = opts.wallMs;
  const t0 = wall();
  const env = new SimEnvironment({ seed: spec.seed });
  const built = env.process(buildTopology(env, profile, spec, opts.paths), 'build');
  env.run({ until: built });
  if (!built.ok) throw built.error;
  const topo = built.value;
  const clientIface = topo.frameIfaces[0]!;
  const pcap = opts.pcap === true ? new PcapSink(env, topo.ends.client.name, clientIface.dev.name) : null;
  const captures = opts.pcap === true ? new CaptureSet(env) : null;
  const trace = hostsTrace(env, topo.hosts, opts.traceEvents, opts.traceFlows);
  let from: Window | null = null;
  let to: Window | null = null;
  const test = startTest(env, topo.ends, spec);
  if (spec.test === 'ping') {
    from = snapshot(env, topo);
  } else {
    env.process(
      (function* () {
        yield env.timeout(spec.warmupNs);
        from = snapshot(env, topo);
        yield env.timeout(spec.durationNs);
        to = snapshot(env, topo);
      })(),
      'window',
    );
  }
  env.run({ until: test });
  if (!test.ok) throw test.error;
  if (to === null) to = snapshot(env, topo);
  if (from === null) throw new Error(`case ${spec.path}/${spec.test}: the workload ended before its measured window began`);
  const m = measure(topo, from, to);
  const wallS = (wall() - t0) / 1000;
  const result: CaseResult = {
    path: spec.path,
    test: spec.test,
    size: spec.size,
    ...test.value,
    ...m,
    simSpeed: wallS > 0 ? env.now / 1e9 / wallS : null,
    verified: true,
  };
  return {
    result,
    pcap: pcap?.close() ?? null,
    captures: captures?.close() ?? {},
    trace: trace?.close(env.now) ?? null,
  };
}
