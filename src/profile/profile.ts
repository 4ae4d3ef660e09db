import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ENTRIES, type BytesEntry, type CountEntry, type EntryName, type PerByteEntry, type RatioEntry, type TimeEntry } from './entries.js';
import { UNITS, toInternal, unitsOf } from './units.js';

/** One figure: its value, the unit it is written in, and where it comes from. */
export interface ProfileEntry {
  value: number;
  unit: string;
  source: string;
}

const entrySchema = z
  .object({
    value: z.number(),
    unit: z.string(),
    source: z.string(),
  })
  .strict();

const fileSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().min(1),
    cpu: z
      .object({
        model: z.string().min(1),
        clock: entrySchema,
      })
      .strict(),
    /** The Xen release the hypervisor model behaves as (src/xen/release.ts turns it into rules). */
    xen: z
      .object({
        version: z.string().regex(/^\d+\.\d+(\.\d+)?$/, 'expected a Xen release number such as "4.5.0"'),
        source: z.string().min(8),
      })
      .strict(),
    /**
     * The Linux release of the host's kernels (Dom0 and guests): which of its Xen support they
     * use where Linux changed it, e.g. the FIFO event-channel ABI from 3.14
     * (src/xen/guest/linux-release.ts turns it into rules).
     */
    linux: z
      .object({
        version: z.string().regex(/^\d+\.\d+(\.\d+){0,2}$/, 'expected a Linux release number such as "3.18.0"'),
        source: z.string().min(8),
      })
      .strict(),
    entries: z.record(z.string(), entrySchema),
  })
  .strict();

export type ProfileFile = z.infer<typeof fileSchema>;

/** A profile that failed validation; `problems` lists every problem found, each naming its entry. */
export class ProfileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid cost profile:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ProfileError';
  }
}

function checkEntry(name: string, e: ProfileEntry, dim: string, problems: string[]): void {
  const unit = UNITS[e.unit];
  if (unit === undefined || unit.dim !== dim) {
    problems.push(`entry "${name}": unit "${e.unit}" is not a ${dim} unit (expected one of: ${unitsOf(dim as never).join(', ')})`);
  }
  if (!Number.isFinite(e.value)) problems.push(`entry "${name}": value ${e.value} is not a finite number`);
  else if (e.value < 0) problems.push(`entry "${name}": value ${e.value} is negative`);
  else if (unit?.rate === true && e.value === 0) problems.push(`entry "${name}": a rate of 0 ${e.unit} would make every byte take forever`);
  if (e.source.trim().length < 8) problems.push(`entry "${name}": source "${e.source}" is not a citation or a stated assumption`);
}

/**
 * A validated cost profile. Components read their costs here once, at construction, into
 * plain fields; nothing else in the model holds timing constants.
 */
export class Profile {
  readonly name: string;
  readonly description: string;
  readonly cpuModel: string;
  /** The Xen release this profile's host runs, as written (e.g. "4.5.0"). */
  readonly xenVersion: string;
  /** The Linux release of its kernels, as written (e.g. "3.18.0"). */
  readonly linuxVersion: string;
  /** CPU clock, GHz: converts cycle costs to time. */
  readonly clockGHz: number;
  private readonly values = new Map<string, number>();

  private constructor(
    readonly data: ProfileFile,
    readonly origin: string,
  ) {
    this.name = data.name;
    this.description = data.description;
    this.cpuModel = data.cpu.model;
    this.xenVersion = data.xen.version;
    this.linuxVersion = data.linux.version;
    this.clockGHz = data.cpu.clock.value;
    for (const [name, e] of Object.entries(data.entries)) this.values.set(name, toInternal(e.value, e.unit, this.clockGHz));
  }

  /** Validates parsed JSON as a profile; `origin` names the file in error messages. */
  static fromData(json: unknown, origin: string): Profile {
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      throw new ProfileError(
        origin,
        parsed.error.issues.map((i) => {
          const path = i.path.map(String);
          const where =
            path[0] === 'entries' && path.length >= 2
              ? `entry "${path[1]}"${path.length > 2 ? ` field "${path.slice(2).join('.')}"` : ''}`
              : `field "${path.join('.') || '(top level)'}"`;
          return `${where}: ${i.message}`;
        }),
      );
    }
    const data = parsed.data;
    const problems: string[] = [];
    const clock = data.cpu.clock;
    if (clock.unit !== 'GHz') problems.push(`cpu.clock: unit "${clock.unit}" must be "GHz"`);
    if (!(Number.isFinite(clock.value) && clock.value > 0)) problems.push(`cpu.clock: value ${clock.value} must be a positive number of GHz`);
    if (clock.source.trim().length < 8) problems.push(`cpu.clock: source "${clock.source}" is not a citation or a stated assumption`);
    for (const [name, e] of Object.entries(data.entries)) {
      const spec = (ENTRIES as Record<string, { dim: string }>)[name];
      if (spec === undefined) {
        problems.push(`entry "${name}": unknown entry (not a cost the model reads; misspelt?)`);
        continue;
      }
      checkEntry(name, e, spec.dim, problems);
    }
    for (const name of Object.keys(ENTRIES)) {
      if (!(name in data.entries)) problems.push(`entry "${name}": missing (${ENTRIES[name as EntryName].doc})`);
    }
    if (problems.length > 0) throw new ProfileError(origin, problems);
    return new Profile(data, origin);
  }

  /** Loads `profiles/<name>.json` from this package, or a path to a JSON file. */
  static load(nameOrPath: string): Profile {
    const path = nameOrPath.endsWith('.json') ? resolve(nameOrPath) : join(profilesDir(), `${nameOrPath}.json`);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new ProfileError(path, [`cannot read the file (${(e as Error).message})`]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ProfileError(path, [`not valid JSON (${(e as Error).message})`]);
    }
    return Profile.fromData(json, path);
  }

  /** A copy with some entries replaced (for experiments and tests); validated like a file. */
  with(overrides: Partial<Record<EntryName, ProfileEntry>>, name = `${this.name}+overrides`): Profile {
    return Profile.fromData({ ...this.data, name, entries: { ...this.data.entries, ...overrides } }, `${this.origin} (with overrides)`);
  }

  /** A copy that names another Xen release (for tests and experiments comparing releases). */
  withXen(version: string, name = `${this.name}@xen-${version}`): Profile {
    return Profile.fromData(
      { ...this.data, name, xen: { version, source: `${this.data.xen.source} (overridden to ${version})` } },
      `${this.origin} (Xen ${version})`,
    );
  }

  /** A copy whose kernels are another Linux release (for tests and experiments comparing them). */
  withLinux(version: string, name = `${this.name}@linux-${version}`): Profile {
    return Profile.fromData(
      { ...this.data, name, linux: { version, source: `${this.data.linux.source} (overridden to ${version})` } },
      `${this.origin} (Linux ${version})`,
    );
  }

  /** The entry as written in the profile. */
  entry(name: EntryName): ProfileEntry {
    return this.data.entries[name]!;
  }

  /** A time cost in integer nanoseconds (rounded to nearest). */
  ns(name: TimeEntry): number {
    return Math.round(this.values.get(name)!);
  }

  /** A time cost in nanoseconds, not rounded (to be scaled before rounding). */
  nsExact(name: TimeEntry): number {
    return this.values.get(name)!;
  }

  /** A per-byte cost in (fractional) nanoseconds per byte. */
  nsPerByte(name: PerByteEntry): number {
    return this.values.get(name)!;
  }

  count(name: CountEntry): number {
    return this.values.get(name)!;
  }

  bytes(name: BytesEntry): number {
    return Math.round(this.values.get(name)!);
  }

  ratio(name: RatioEntry): number {
    return this.values.get(name)!;
  }
}

/** The `profiles/` folder shipped with the package. */
export function profilesDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'profiles');
}

/** Time for `bytes` at `nsPerByte`, as integer nanoseconds (rounded to nearest). */
export function bytesTime(bytes: number, nsPerByte: number): number {
  return Math.round(bytes * nsPerByte);
}
