import { z } from 'zod';
import type { Env, SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { cable, type WirePort } from '../vnet/index.js';
import { HostDescriptionError, parseHost, type HostDescription } from './description.js';
import { Host, type HostOptions } from './host.js';
import { migrateGuest, type MigrationOptions, type MigrationResult } from './migration.js';

/**
 * Several Xen hosts in one simulated world, joined by cables between physical NIC ports of
 * their Dom0s: a guest on one host reaches a guest on another through guest → its path's
 * backend → Dom0's bridge → NIC → wire → NIC → bridge → backend → guest.
 */

/** One end of a wire: a host, and the Dom0 bridge its NIC port joins (`h1` or `h1:xenbr1`; default xenbr0). */
const endpoint = z.string().regex(/^[A-Za-z0-9_.-]{1,32}(:[A-Za-z0-9_.-]{1,15})?$/, 'a host name, optionally with a bridge: "h1" or "h1:xenbr0"');
const wireSchema = z.object({ between: z.tuple([endpoint, endpoint]) }).strict();

export type WireInput = z.input<typeof wireSchema>;

export interface WireEnd {
  host: string;
  bridge: string;
}

export interface ClusterDescription {
  hosts: HostDescription[];
  wires: { a: WireEnd; b: WireEnd }[];
}

export interface ClusterInput {
  hosts: unknown[];
  wires?: unknown[];
}

function endOf(s: string): WireEnd {
  const [host, bridge] = s.split(':') as [string, string | undefined];
  return { host, bridge: bridge ?? 'xenbr0' };
}

/**
 * Validates hosts and wires together: host names unique; guest names, MACs and addresses
 * unique across all hosts (guests are named alone in workloads, and any two may share a
 * segment once wired); each wire joins two different known hosts through bridges they have.
 * Problems name their field (`hosts.1.guests.0.mac`, `wires.0.between.1`).
 */
export function parseCluster(input: ClusterInput, where = 'cluster'): ClusterDescription {
  const problems: string[] = [];
  const hosts: HostDescription[] = [];
  input.hosts.forEach((h, i) => {
    try {
      hosts.push(parseHost(h, where));
    } catch (e) {
      if (!(e instanceof HostDescriptionError)) throw e;
      problems.push(...e.problems.map((p) => `hosts.${i}.${p}`));
    }
  });
  if (problems.length > 0) throw new HostDescriptionError(where, problems);
  const seen = new Map<string, string>();
  const once = (key: string, at: string, what: string): void => {
    const o = seen.get(key);
    if (o !== undefined) problems.push(`${at}: ${what} is already ${o}'s`);
    else seen.set(key, at);
  };
  hosts.forEach((h, i) => {
    once(`host:${h.name}`, `hosts.${i}.name`, `host name "${h.name}"`);
    if (h.dom0.ip !== undefined) once(`ip:${h.dom0.ip.split('/')[0]}`, `hosts.${i}.dom0.ip`, h.dom0.ip.split('/')[0]!);
    h.guests.forEach((g, j) => {
      once(`guest:${g.name}`, `hosts.${i}.guests.${j}.name`, `guest name "${g.name}"`);
      g.nics.forEach((n, k) => {
        once(`mac:${n.mac}`, `hosts.${i}.guests.${j}.nics.${k}.mac`, n.mac);
        once(`ip:${n.ip.split('/')[0]}`, `hosts.${i}.guests.${j}.nics.${k}.ip`, n.ip.split('/')[0]!);
      });
    });
  });
  const wires: ClusterDescription['wires'] = [];
  (input.wires ?? []).forEach((w, i) => {
    const r = wireSchema.safeParse(w);
    if (!r.success) {
      for (const e of r.error.issues) problems.push(`wires.${i}${e.path.length > 0 ? '.' + e.path.join('.') : ''}: ${e.message}`);
      return;
    }
    const [a, b] = r.data.between.map(endOf) as [WireEnd, WireEnd];
    let ok = true;
    [a, b].forEach((end, k) => {
      const h = hosts.find((x) => x.name === end.host);
      if (h === undefined) {
        problems.push(`wires.${i}.between.${k}: no host named "${end.host}" (hosts: ${hosts.map((x) => x.name).join(', ')})`);
        ok = false;
      } else if (!h.bridges.includes(end.bridge)) {
        problems.push(`wires.${i}.between.${k}: host ${h.name} has no bridge "${end.bridge}" (bridges: ${h.bridges.join(', ')})`);
        ok = false;
      }
    });
    if (ok && a.host === b.host) problems.push(`wires.${i}.between: both ends on host ${a.host} (a wire joins two hosts)`);
    else if (ok) wires.push({ a, b });
  });
  if (problems.length > 0) throw new HostDescriptionError(where, problems);
  return { hosts, wires };
}

/** The hosts of one simulated world and the wires between them. */
export class Cluster {
  private constructor(
    private readonly env: Env,
    private readonly profile: Profile,
    readonly hosts: Host[],
    /** Each wire's two NIC ports (Dom0's physical NICs, or a host's SR-IOV NIC wire port). */
    readonly wires: [WirePort, WirePort][],
  ) {}

  /** Builds every host (in order), then puts in each wire's NIC ports and joins them — a process. `desc` comes from parseCluster. */
  static *build(env: Env, profile: Profile, desc: ClusterDescription, opts: HostOptions = {}): Generator<SimEvent<unknown>, Cluster, unknown> {
    const hosts: Host[] = [];
    for (const d of desc.hosts) hosts.push(yield* Host.build(env, profile, d, opts));
    const byName = new Map(hosts.map((h) => [h.name, h]));
    const wires = desc.wires.map(({ a, b }): [WirePort, WirePort] => {
      const na = byName.get(a.host)!.wirePort(a.bridge);
      const nb = byName.get(b.host)!.wirePort(b.bridge);
      cable(na, nb);
      return [na, nb];
    });
    return new Cluster(env, profile, hosts, wires);
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (h === undefined) throw new Error(`no host named "${name}" (hosts: ${this.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  /**
   * Live-migrates guest `guest` to host `toHost` (xl migrate; src/host/migration.ts) — a
   * process returning the migration's figures: time, pause, rounds, pages sent.
   */
  *migrate(guest: string, toHost: string, opts: MigrationOptions = {}): Generator<SimEvent<unknown>, MigrationResult, unknown> {
    return yield* migrateGuest(this.env, this.profile, this.hostOf(guest), this.host(toHost), guest, opts);
  }

  /** The host a guest runs on. */
  hostOf(guest: string): Host {
    const h = this.hosts.find((x) => x.guests.has(guest));
    if (h === undefined) throw new Error(`no guest named "${guest}" on any host`);
    return h;
  }
}
