import { z } from 'zod';

/**
 * A host as plain data (what a scenario file or an xl.cfg translation produces): its pCPUs,
 * Dom0, bridges and guests with their NICs. `parseHost` validates one and fills defaults;
 * every problem names its field.
 */
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 letters, digits, '_', '.', '-'");
const pinning = z.union([z.array(z.number().int().min(0)).min(1), z.array(z.array(z.number().int().min(0)).min(1)).min(1)]);
const mac = z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'a MAC address xx:xx:xx:xx:xx:xx in lower-case hex');
const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, 'an IPv4 address with its prefix, a.b.c.d/n');

const nicSchema = z
  .object({
    path: z.string().min(1),
    mac,
    ip: cidr,
    bridge: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'a bridge name (IFNAMSIZ: 1-15 characters)')
      .default('xenbr0'),
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const guestSchema = z
  .object({
    name,
    type: z.enum(['hvm', 'pv']).default('hvm'),
    vcpus: z.number().int().min(1).max(128).default(1),
    memoryMiB: z.number().int().min(16).max(65536).default(512),
    weight: z.number().int().min(1).max(65535).optional(),
    cap: z.number().int().min(0).optional(),
    pinning: pinning.optional(),
    tenant: name.optional(),
    nics: z.array(nicSchema).default([]),
  })
  .strict();

const hostSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,32}$/, "1-32 letters, digits, '_', '.', '-'")
      .default('host'),
    pcpus: z.number().int().min(1).max(256),
    dom0: z
      .object({
        vcpus: z.number().int().min(1).max(64).default(1),
        memoryMiB: z.number().int().min(64).default(1024),
        weight: z.number().int().min(1).max(65535).optional(),
        pinning: pinning.optional(),
        /** Dom0's own address on its first bridge (so that ping to Dom0 works). */
        ip: cidr.optional(),
      })
      .strict()
      .default({ vcpus: 1, memoryMiB: 1024 }),
    bridges: z
      .array(z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/))
      .min(1)
      .default(['xenbr0']),
    guests: z.array(guestSchema).default([]),
    /** HV²M's control plane in Dom0: present → hv2m-discoveryd runs, with this policy (checked by parseHv2mPolicy). */
    hv2m: z.object({ policy: z.unknown().optional() }).strict().optional(),
  })
  .strict();

export type NicDescription = z.output<typeof nicSchema>;
export type GuestDescription = z.output<typeof guestSchema>;
export type HostDescription = z.output<typeof hostSchema>;
export type HostInput = z.input<typeof hostSchema>;
export type GuestInput = z.input<typeof guestSchema>;
export type NicInput = z.input<typeof nicSchema>;

export class HostDescriptionError extends Error {
  constructor(
    readonly where: string,
    readonly problems: string[],
  ) {
    super(`${where}: invalid host description:\n  - ${problems.join('\n  - ')}`);
    this.name = 'HostDescriptionError';
  }
}

function problemsOf(e: z.ZodError): string[] {
  return e.issues.map((i) => `${i.path.length === 0 ? '(top)' : i.path.join('.')}: ${i.message}`);
}

/** Cross-field rules zod cannot state: unique names, MACs and addresses, known bridges. */
function crossCheck(h: HostDescription): string[] {
  const out: string[] = [];
  const names = new Set<string>(['Domain-0']);
  const macs = new Map<string, string>();
  const ips = new Map<string, string>();
  if (h.dom0.ip !== undefined) ips.set(h.dom0.ip.split('/')[0]!, 'dom0.ip');
  out.push(...checkPinning(h, h.dom0.pinning, h.dom0.vcpus, 'dom0'));
  h.guests.forEach((g, i) => {
    out.push(...checkPinning(h, g.pinning, g.vcpus, `guests.${i}`));
    if (names.has(g.name)) out.push(`guests.${i}.name: "${g.name}" is used twice`);
    names.add(g.name);
    out.push(...checkGuestNics(h, g, `guests.${i}`, macs, ips));
  });
  return out;
}

/** Pinning names pCPUs the host has, and one list per vCPU when given per vCPU (xl's cpus). */
function checkPinning(h: HostDescription, p: readonly number[] | readonly (readonly number[])[] | undefined, vcpus: number, at: string): string[] {
  if (p === undefined) return [];
  const out: string[] = [];
  const lists = (p.length > 0 && Array.isArray(p[0]) ? p : [p]) as readonly (readonly number[])[];
  if (lists.length > 1 && lists.length !== vcpus) out.push(`${at}.pinning: ${lists.length} lists for ${vcpus} vCPUs (one per vCPU, or one for all)`);
  for (const l of lists)
    for (const c of l) if (c >= h.pcpus) out.push(`${at}.pinning: pCPU ${c} does not exist (the host has pCPUs 0-${h.pcpus - 1})`);
  return out;
}

function octetsOk(ip: string): boolean {
  const [a, p] = ip.split('/');
  return a!.split('.').every((o) => Number(o) <= 255) && Number(p) <= 32;
}

function checkGuestNics(h: HostDescription, g: GuestDescription, at: string, macs: Map<string, string>, ips: Map<string, string>): string[] {
  const out: string[] = [];
  g.nics.forEach((n, j) => {
    const w = `${at}.nics.${j}`;
    if (!octetsOk(n.ip)) out.push(`${w}.ip: "${n.ip}" is not an IPv4 address with a prefix of 0-32`);
    if (!h.bridges.includes(n.bridge)) out.push(`${w}.bridge: "${n.bridge}" is not one of the host's bridges (${h.bridges.join(', ')})`);
    const m = macs.get(n.mac);
    if (m !== undefined) out.push(`${w}.mac: ${n.mac} is already ${m}'s`);
    macs.set(n.mac, w);
    const a = n.ip.split('/')[0]!;
    const o = ips.get(a);
    if (o !== undefined) out.push(`${w}.ip: ${a} is already ${o}'s`);
    ips.set(a, w);
  });
  return out;
}

/** Validates a host description (`where` names its origin in errors: a file, a flag). */
export function parseHost(input: unknown, where = 'host'): HostDescription {
  const r = hostSchema.safeParse(input);
  if (!r.success) throw new HostDescriptionError(where, problemsOf(r.error));
  const extra = crossCheck(r.data);
  if (h0ip(r.data)) extra.push(`dom0.ip: "${r.data.dom0.ip}" is not an IPv4 address with a prefix of 0-32`);
  if (extra.length > 0) throw new HostDescriptionError(where, extra);
  return r.data;
}

function h0ip(h: HostDescription): boolean {
  return h.dom0.ip !== undefined && !octetsOk(h.dom0.ip);
}

/** Validates one guest to add to a running host described by `host`. */
export function parseGuest(input: unknown, host: HostDescription, existing: readonly GuestDescription[], where = 'guest'): GuestDescription {
  const r = guestSchema.safeParse(input);
  if (!r.success) throw new HostDescriptionError(where, problemsOf(r.error));
  const macs = new Map<string, string>();
  const ips = new Map<string, string>();
  for (const g of existing)
    for (const n of g.nics) {
      macs.set(n.mac, `guest ${g.name}`);
      ips.set(n.ip.split('/')[0]!, `guest ${g.name}`);
    }
  const problems = existing.some((g) => g.name === r.data.name) ? [`name: "${r.data.name}" is used twice`] : [];
  problems.push(...checkGuestNics(host, r.data, '(guest)', macs, ips));
  if (problems.length > 0) throw new HostDescriptionError(where, problems);
  return r.data;
}
