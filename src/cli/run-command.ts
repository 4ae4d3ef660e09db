import type { Command } from 'commander';
import { Profile } from '../profile/index.js';
import { loadScenario } from '../host/index.js';
import { runScenario } from '../bench/scenario-run.js';
import { toJson, type ResultsDocument } from '../bench/results.js';
import { formatTables } from '../bench/report/tables.js';
import { parseIntOption } from '../bench/suite.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeReport, writeWhole } from './report-files.js';
import { TRACE_EVENTS } from './bench-command.js';

interface RunFlags {
  profile?: string;
  seed?: string;
  out: string;
  quiet?: boolean;
  json?: boolean;
  pcap?: boolean;
  trace?: boolean;
  traceFlows: string;
}

/** `hv2m run SCENARIO.yaml`: a host described by a scenario file, its workloads, the same outputs as bench. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      'run a scenario file (hosts, guests inline or from xl.cfg files, workloads with start times); writes results.json/csv and index.html as bench does',
    )
    .argument('<scenario>', 'scenario file (YAML); xl.cfg files it names are read relative to it')
    .option('--profile <name|file>', "cost profile (default: the scenario's, else default)")
    .option('--seed <n>', "seed (default: the scenario's)")
    .option('--out <dir>', 'where results.json, results.csv and index.html go', 'hv2m-report')
    .option('--quiet', 'no tables')
    .option('--json', 'print results.json on stdout instead of the tables')
    .option('--pcap', 'write a pcap of every guest interface, Dom0 bridge port and HV²M/shmem channel (DIR/pcap-all/)')
    .option('--trace', `write a Chrome/Perfetto trace of every host's pCPUs (DIR/trace.json, first ${TRACE_EVENTS} events)`)
    .option(
      '--trace-flows <n>',
      "in the trace, follow one in every n frames the guests send, as a flow from the sender's device to the receiver's (0: none)",
      '1',
    )
    .action(async (file: string, flags: RunFlags) => {
      const traceFlows = parseIntOption('--trace-flows', flags.traceFlows, 0, 1_000_000);
      const sc = loadScenario(file);
      if (flags.seed !== undefined) sc.seed = parseIntOption('--seed', flags.seed, 0, 0xffff_ffff);
      const profile = Profile.load(flags.profile ?? sc.profile);
      const started = performance.now();
      const run = runScenario(profile, sc, {
        wallMs: () => performance.now(),
        pcap: flags.pcap === true,
        traceEvents: flags.trace === true ? TRACE_EVENTS : 0,
        traceFlows,
      });
      const wallS = (performance.now() - started) / 1000;
      const doc: ResultsDocument = {
        version: program.version() ?? '',
        profile: { name: profile.name, description: profile.description, xen: null },
        seed: sc.seed,
        guestType: sc.hosts[0]!.guests[0]?.type ?? 'hvm',
        durationMs: Math.max(...sc.workloads.map((w) => w.durationMs)),
        warmupMs: Math.max(...sc.workloads.map((w) => w.warmupMs)),
        host: sc.hosts,
        scenario: file,
        // Reproducible like bench's: the wall-clock speed is printed, not stored.
        results: run.results.map((r) => ({ ...r, simSpeed: null })),
      };
      await writeReport(flags.out, doc, profile);
      if (flags.pcap === true) {
        const dir = join(flags.out, 'pcap-all');
        mkdirSync(dir, { recursive: true });
        for (const [name, bytes] of Object.entries(run.captures)) writeWhole(join(dir, `${name}.pcap`), bytes);
      }
      if (run.trace !== null) writeWhole(join(flags.out, 'trace.json'), run.trace);
      if (flags.json === true) process.stdout.write(toJson(doc));
      else if (flags.quiet !== true) {
        const speed = wallS > 0 ? run.simSeconds / wallS : Infinity;
        for (const m of run.migrations)
          process.stdout.write(
            `migration of ${m.guest} ${m.from} → ${m.to} at ${(m.startedAt / 1e6).toFixed(1)} ms: ${(m.totalNs / 1e6).toFixed(1)} ms, pause ${(m.pauseNs / 1e6).toFixed(2)} ms, ${m.liveRounds} live rounds, ${m.pagesSent} pages sent (${m.finalPages} in the pause)\n`,
          );
        process.stdout.write(
          `${formatTables(doc)}\n\n${run.results.length} workloads, ${(run.simSeconds * 1000).toFixed(1)} ms simulated in ${wallS.toFixed(1)} s (${speed.toFixed(2)} simulated s per wall s); every workload verified byte-exact. Report: ${flags.out}/index.html\n`,
        );
      }
    });
}
