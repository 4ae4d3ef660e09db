/**
 * Scenario files (YAML): the hosts with their Dom0 and guests — inline, or from xl.cfg files
 * beside the scenario — and the workloads between guests, with start times. Everything is
 * validated before anything runs; each error names the file, the line and the field, and
 * says what was expected.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { HostDescriptionError, parseHost, type GuestInput, type HostDescription } from './description.js';
import { xlGuest, XlConfigError } from './xl-config.js';
import { parseCluster, type ClusterDescription } from './cluster.js';

export const SCENARIO_TESTS = ['ping', 'tcp_rr', 'udp_rr', 'tcp_stream', 'udp_stream'] as const;

const xlGuestRef = z
  .object({
    xl: z.string().min(1),
    tenant: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 letters, digits, '_', '.', '-'")
      .optional(),
    /** The I/O path of each vif in the file, in order (default: what its type/model implies). */
    paths: z.array(z.string().min(1)).optional(),
    prefix: z.number().int().min(0).max(32).optional(),
  })
  .strict();

const workloadSchema = z
  .object({
    name: z.string().min(1).optional(),
    test: z.enum(SCENARIO_TESTS),
    client: z.string().min(1),
    server: z.string().min(1),
    /** Stream message size, RR request/response size, ping data size. */
    size: z
      .number()
      .int()
      .min(1)
      .max(1 << 20)
      .optional(),
    startMs: z.number().min(0).default(0),
    warmupMs: z.number().min(0).default(10),
    durationMs: z.number().positive().default(50),
    pingCount: z.number().int().min(1).default(100),
  })
  .strict();

/** A live migration at a given time (src/host/migration.ts), with optional overrides of the profile's migration.* figures. */
const migrationSchema = z
  .object({
    guest: z.string().min(1),
    to: z.string().min(1),
    atMs: z.number().min(0),
    maxIterations: z.number().int().min(1).optional(),
    dirtyThreshold: z.number().int().min(0).optional(),
    maxFactor: z.number().int().min(1).optional(),
  })
  .strict();

export type MigrationSpec = z.output<typeof migrationSchema>;

const scenarioSchema = z
  .object({
    description: z.string().optional(),
    profile: z.string().min(1).default('default'),
    seed: z.number().int().min(0).max(0xffff_ffff).default(1),
    hosts: z.array(z.object({ guests: z.array(z.unknown()).default([]) }).passthrough()).min(1),
    /** Cables between hosts' Dom0 NIC ports: `{ between: [h1, h2] }` or with bridges, `[h1:xenbr0, h2:xenbr1]`. */
    wires: z.array(z.unknown()).default([]),
    workloads: z.array(workloadSchema).min(1),
    /** Live migrations, each at its time: `{ guest, to, atMs }` (both Dom0s need a dom0.ip). */
    migrations: z.array(migrationSchema).default([]),
  })
  .strict();

export type WorkloadSpec = z.output<typeof workloadSchema> & { name: string; size: number };

export interface Scenario {
  file: string;
  description: string | null;
  profile: string;
  seed: number;
  hosts: HostDescription[];
  wires: ClusterDescription['wires'];
  workloads: WorkloadSpec[];
  /** In time order. */
  migrations: MigrationSpec[];
}

/** Everything wrong with a scenario: each problem as `file:line: field: what was expected`. */
export class ScenarioError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid scenario:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ScenarioError';
  }
}

const DEFAULT_SIZE: Record<(typeof SCENARIO_TESTS)[number], number> = { ping: 56, tcp_rr: 1, udp_rr: 1, tcp_stream: 16384, udp_stream: 1472 };

/** Reads and validates a scenario file (and the xl.cfg files it names, relative to it). */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError([`${file}: cannot read it (${(e as Error).message})`]);
  }
  return parseScenario(file, text, (p) => readFileSync(resolve(dirname(file), p), 'utf8'));
}

export function parseScenario(file: string, text: string, readXl: (path: string) => string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0)
    throw new ScenarioError(doc.errors.map((e) => `${file}:${lc.linePos(e.pos[0]).line}: YAML: ${e.message.split('\n')[0]}`));
  const lineOf = (path: readonly (string | number)[]): number => {
    for (let n = path.length; n >= 0; n--) {
      const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range !== undefined && node.range !== null) return lc.linePos(node.range[0]).line;
    }
    return 1;
  };
  const at = (path: readonly (string | number)[], msg: string): string =>
    `${file}:${lineOf(path)}: ${path.length === 0 ? '(top)' : path.join('.')}: ${msg}`;
  /** A host-description problem (`field.path: message`) placed under `prefix` at its line. */
  const atProblem = (prefix: readonly (string | number)[], p: string): string => {
    const m = /^([\w.]+): (.*)$/.exec(p);
    const path = m === null ? [] : m[1]!.split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
    return at([...prefix, ...path], m === null ? p : m[2]!);
  };
  const r = scenarioSchema.safeParse(doc.toJS());
  if (!r.success) throw new ScenarioError(r.error.issues.map((i) => at(i.path as (string | number)[], i.message)));
  const s = r.data;
  const problems: string[] = [];
  const hosts: HostDescription[] = [];
  s.hosts.forEach((h, hi) => {
    const guests: GuestInput[] = [];
    h.guests.forEach((g, gi) => {
      const ref = xlGuestRef.safeParse(g);
      if (typeof g === 'object' && g !== null && 'xl' in g) {
        if (!ref.success) {
          for (const i of ref.error.issues) problems.push(at(['hosts', hi, 'guests', gi, ...(i.path as (string | number)[])], i.message));
          return;
        }
        try {
          const xlText = readXl(ref.data.xl);
          guests.push(
            xlGuest(ref.data.xl, xlText, {
              ...(ref.data.paths !== undefined ? { paths: ref.data.paths } : {}),
              ...(ref.data.tenant !== undefined ? { tenant: ref.data.tenant } : {}),
              ...(ref.data.prefix !== undefined ? { prefix: ref.data.prefix } : {}),
            }),
          );
        } catch (e) {
          if (e instanceof XlConfigError) problems.push(`${e.message} (from ${at(['hosts', hi, 'guests', gi, 'xl'], 'this xl.cfg')})`);
          else problems.push(at(['hosts', hi, 'guests', gi, 'xl'], `cannot read ${ref.data.xl} (${(e as Error).message})`));
        }
        return;
      }
      guests.push(g as GuestInput);
    });
    try {
      hosts.push(parseHost({ ...h, guests }, `${file}: hosts.${hi}`));
    } catch (e) {
      if (!(e instanceof HostDescriptionError)) throw e;
      for (const p of e.problems) problems.push(atProblem(['hosts', hi], p));
    }
  });
  let wires: ClusterDescription['wires'] = [];
  if (problems.length === 0) {
    try {
      wires = parseCluster({ hosts, wires: s.wires }, file).wires;
    } catch (e) {
      if (!(e instanceof HostDescriptionError)) throw e;
      for (const p of e.problems) problems.push(atProblem([], p));
    }
  }
  const guestNames = new Map<string, HostDescription>();
  for (const h of hosts) for (const g of h.guests) guestNames.set(g.name, h);
  const names = new Set<string>();
  const workloads: WorkloadSpec[] = s.workloads.map((w, i) => {
    for (const role of ['client', 'server'] as const) {
      const g = w[role];
      if (!guestNames.has(g))
        problems.push(at(['workloads', i, role], `no guest named "${g}" (guests: ${[...guestNames.keys()].join(', ') || 'none'})`));
      else if (guestNames.get(g)!.guests.find((x) => x.name === g)!.nics.length === 0)
        problems.push(at(['workloads', i, role], `guest "${g}" has no NIC`));
    }
    if (w.client === w.server) problems.push(at(['workloads', i, 'server'], 'client and server are the same guest'));
    const size = w.size ?? DEFAULT_SIZE[w.test];
    if (w.test === 'udp_stream' && size > 65507)
      problems.push(at(['workloads', i, 'size'], `${size} bytes do not fit one UDP datagram over IPv4 (at most 65507)`));
    const name = w.name ?? `${w.test}:${w.client}->${w.server}`;
    if (names.has(name)) problems.push(at(['workloads', i, 'name'], `"${name}" names two workloads (give each a name)`));
    names.add(name);
    return { ...w, name, size };
  });
  // Migrations in time order, each from where the guest is by then to another host with an address.
  const where = new Map<string, string>();
  for (const [g, h] of guestNames) where.set(g, h.name);
  const order = s.migrations.map((m, i) => ({ m, i })).sort((x, y) => x.m.atMs - y.m.atMs || x.i - y.i);
  for (const { m, i } of order) {
    const from = where.get(m.guest);
    const to = hosts.find((h) => h.name === m.to);
    if (from === undefined)
      problems.push(at(['migrations', i, 'guest'], `no guest named "${m.guest}" (guests: ${[...guestNames.keys()].join(', ') || 'none'})`));
    else if (to === undefined) problems.push(at(['migrations', i, 'to'], `no host named "${m.to}" (hosts: ${hosts.map((h) => h.name).join(', ')})`));
    else if (from === to.name) problems.push(at(['migrations', i, 'to'], `guest "${m.guest}" is already on ${to.name} by ${m.atMs} ms`));
    else {
      const src = hosts.find((h) => h.name === from)!;
      for (const h of [src, to])
        if (h.dom0.ip === undefined)
          problems.push(at(['migrations', i], `host ${h.name} has no dom0.ip: the migration stream runs between the Dom0s' addresses`));
      where.set(m.guest, to.name);
    }
  }
  if (problems.length > 0) throw new ScenarioError(problems);
  return { file, description: s.description ?? null, profile: s.profile, seed: s.seed, hosts, wires, workloads, migrations: order.map((x) => x.m) };
}
