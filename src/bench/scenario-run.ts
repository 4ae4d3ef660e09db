/**
 * Runs a scenario: builds its hosts and the wires between them, starts each workload at its start time between the
 * guests it names (several may run at once), and measures each over its own window. A
 * window's CPU utilization and per-frame counters count everything on the host during it
 * (concurrent workloads share the host, as they would on a real one); its frames are those
 * the workload's client and server NICs sent. Its migrations run at their times
 * (`Cluster.migrate`), and their figures come back with the results.
 */
import { MS, SimEnvironment, type ProcessGenerator } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import type { PathRegistry } from '../vnet/index.js';
import { Cluster, type Host, type Guest, type MigrationResult, type Scenario, type WorkloadSpec } from '../host/index.js';
import { hostsTrace, measure, snapshot, startTest, type CaseResult, type Measured, type Outcome, type Window } from './experiment.js';
import { CaptureSet } from './capture.js';

export interface ScenarioResult extends CaseResult {
  /** The workload's name in the scenario. */
  workload: string;
}

export interface ScenarioRunOptions {
  paths?: PathRegistry;
  /** Wall-clock milliseconds from the harness, for the simulation speed. */
  wallMs: () => number;
  /** Capture every guest interface, Dom0 bridge port and HV²M/shmem channel (pcaps by name, as bench's pcap-all). */
  pcap?: boolean;
  /** Record a Chrome trace of every host's pCPUs, up to this many events (0: none). */
  traceEvents?: number;
  /** In the trace, follow one in every this many frames (default 1; 0: none). */
  traceFlows?: number;
}

export interface ScenarioRun {
  results: ScenarioResult[];
  migrations: MigrationResult[];
  hosts: Host[];
  simSeconds: number;
  /** With `pcap`: each capture point's pcap bytes, by name. */
  captures: Record<string, Uint8Array>;
  /** With `traceEvents`: the Chrome trace (JSON text) from the end of the build. */
  trace: string | null;
}

/** Each workload gets its own port, so that two workloads of one kind can share a server. */
const PORT_BASE = 20000;

export function runScenario(profile: Profile, sc: Scenario, opts: ScenarioRunOptions): ScenarioRun {
  const t0 = opts.wallMs();
  const env = new SimEnvironment({ seed: sc.seed });
  const hostOpts = { where: sc.file, ...(opts.paths !== undefined ? { paths: opts.paths } : {}) };
  const built = env.process(Cluster.build(env, profile, { hosts: sc.hosts, wires: sc.wires }, hostOpts), 'build');
  env.run({ until: built });
  if (!built.ok) throw built.error;
  const cluster = built.value;
  const hosts = cluster.hosts;
  const captures = opts.pcap === true ? new CaptureSet(env) : null;
  const trace = hostsTrace(env, hosts, opts.traceEvents, opts.traceFlows);
  // One after another, each at its time (or when the one before has ended).
  const migrations: MigrationResult[] = [];
  const migrating = env.process(
    (function* (): ProcessGenerator<void> {
      for (const m of sc.migrations) {
        if (env.now < m.atMs * MS) yield env.timeout(m.atMs * MS - env.now);
        const o = {
          ...(m.maxIterations !== undefined ? { maxIterations: m.maxIterations } : {}),
          ...(m.dirtyThreshold !== undefined ? { dirtyThreshold: m.dirtyThreshold } : {}),
          ...(m.maxFactor !== undefined ? { maxFactor: m.maxFactor } : {}),
        };
        migrations.push(yield* cluster.migrate(m.guest, m.to, o));
      }
    })(),
    'migrations',
  );
  const guest = (name: string): Guest => {
    for (const h of hosts) if (h.guests.has(name)) return h.guest(name);
    throw new Error(`${sc.file}: no guest named "${name}"`);
  };
  const results: (Omit<ScenarioResult, 'simSpeed'> | null)[] = sc.workloads.map(() => null);
  const runs = sc.workloads.map((w, i) =>
    env.process(
      (function* (): ProcessGenerator<void> {
        yield env.timeout(w.startMs * MS);
        const c = guest(w.client);
        const s = guest(w.server);
        const topo: Measured = {
          hosts,
          frameIfaces: [...c.nics.map((n) => n.iface), ...s.nics.map((n) => n.iface)],
          frameNics: [...c.nics.map((n) => n.attached), ...s.nics.map((n) => n.attached)],
        };
        const spec = {
          path: c.nics[0]!.spec.path,
          test: w.test,
          size: w.size,
          warmupNs: w.warmupMs * MS,
          durationNs: w.durationMs * MS,
          pingCount: w.pingCount,
        };
        let from: Window | null = w.test === 'ping' ? snapshot(env, topo) : null;
        let to: Window | null = null;
        if (from === null) {
          env.process(
            (function* (): ProcessGenerator<void> {
              yield env.timeout(spec.warmupNs);
              from = snapshot(env, topo);
              yield env.timeout(spec.durationNs);
              to = snapshot(env, topo);
            })(),
            `${w.name} window`,
          );
        }
        const test = startTest(env, { client: c.stack, server: s.stack, serverAddr: ipv4(s.nics[0]!.spec.ip), port: PORT_BASE + i }, spec);
        yield test;
        if (!test.ok)
          throw new Error(`workload ${w.name}: ${test.error instanceof Error ? `${test.error.name}: ${test.error.message}` : String(test.error)}`, {
            cause: test.error,
          });
        to ??= snapshot(env, topo);
        if (from === null) throw new Error(`workload ${w.name}: ended before its measured window began`);
        const out: Outcome = test.value;
        results[i] = { workload: w.name, path: spec.path, test: w.test, size: w.size, ...out, ...measure(topo, from, to), verified: true };
      })(),
      w.name,
    ),
  );
  for (const p of [...runs, migrating]) {
    env.run({ until: p });
    if (!p.ok) throw p.error;
  }
  const wallS = (opts.wallMs() - t0) / 1000;
  const speed = wallS > 0 ? env.now / 1e9 / wallS : null;
  return {
    results: results.map((r, i) => ({ ...r!, simSpeed: speed, workload: sc.workloads[i]!.name })),
    migrations,
    hosts,
    simSeconds: env.now / 1e9,
    captures: captures?.close() ?? {},
    trace: trace?.close(env.now) ?? null,
  };
}

export type { WorkloadSpec };
