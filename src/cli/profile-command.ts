import type { Command } from 'commander';
import { ENTRIES, Profile, type EntryName } from '../profile/index.js';

/** `hv2m profile [name|file]`: shows a cost profile's entries, values and sources. */
export function registerProfileCommand(program: Command): void {
  program
    .command('profile')
    .description('show a cost profile: every entry with its value, unit and source')
    .argument('[profile]', 'profile name under profiles/ or path to a .json file', 'default')
    .option('--json', 'print the validated profile as JSON')
    .action((name: string, opts: { json?: boolean }) => {
      const p = Profile.load(name);
      if (opts.json === true) {
        process.stdout.write(`${JSON.stringify(p.data, null, 2)}\n`);
        return;
      }
      const out: string[] = [`profile ${p.name}: ${p.description}`, `cpu: ${p.cpuModel} at ${p.clockGHz} GHz`, ''];
      for (const name of Object.keys(ENTRIES) as EntryName[]) {
        const e = p.entry(name);
        out.push(`${name} = ${e.value} ${e.unit}`, `    ${ENTRIES[name].doc}`, `    source: ${e.source}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
