#!/usr/bin/env node
/**
 * The `hv2m` command. Subcommands are added by the capabilities that provide them.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerBenchCommand } from './bench-command.js';
import { registerProfileCommand } from './profile-command.js';
import { registerRunCommand } from './run-command.js';
import { registerXenstoredCommand } from './xenstored-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('hv2m')
    .description('HV²M on a functional and timed model of a Xen host: inter-VM networking paths, measured.')
    .version(pkg.version, '-V, --version', 'print the version')
    .showHelpAfterError();
  registerBenchCommand(program);
  registerProfileCommand(program);
  registerRunCommand(program);
  registerXenstoredCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`hv2m: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
