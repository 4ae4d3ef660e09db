import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Tinypool } from 'tinypool';
import cliProgress from 'cli-progress';
import { Profile } from '../profile/index.js';
import { defaultPaths } from '../vnet/index.js';
import { benchHosts, type CaseResult, type CaseSpec } from '../bench/experiment.js';
import {
  DEFAULT_SIZES,
  DEFAULT_TESTS,
  knownPaths,
  parseIntOption,
  parseList,
  parsePath,
  parseTest,
  planCases,
  SuiteError,
  type SuiteOptions,
} from '../bench/suite.js';
import { toJson, type ResultsDocument } from '../bench/results.js';
import { writeReport, writeWhole } from './report-files.js';
import { formatTables } from '../bench/report/tables.js';
import type { CaseTask, CaseOutput } from './bench-worker.js';

interface BenchFlags {
  paths?: string;
  tests: string;
  sizes: string;
  rrSize: string;
  profile: string;
  guestType: string;
  seed: string;
  durationMs: string;
  warmupMs: string;
  pingCount: string;
  jobs?: string;
  out: string;
  pcap?: boolean;
  trace?: boolean;
  traceFlows: string;
  quiet?: boolean;
  json?: boolean;
  timing?: boolean;
}

/** Events a trace records before it stops (bench per case, run per scenario). */
export const TRACE_EVENTS = 200_000;

export function parseBenchFlags(f: BenchFlags, registered: readonly string[]): SuiteOptions & { jobs: number; traceFlows: number } {
  const known = knownPaths(registered);
  if (f.guestType !== 'hvm' && f.guestType !== 'pv') throw new SuiteError('--guest-type', `"${f.guestType}" is not hvm or pv`);
  return {
    paths: f.paths === undefined ? known : parseList('--paths', f.paths, parsePath(known)),
    tests: parseList('--tests', f.tests, parseTest),
    sizes: parseList('--sizes', f.sizes, (s) => parseIntOption('--sizes', s, 1, 1 << 20)),
    rrSize: parseIntOption('--rr-size', f.rrSize, 1, 65507),
    guestType: f.guestType,
    seed: parseIntOption('--seed', f.seed, 0, 0xffff_ffff),
    durationMs: parseIntOption('--duration-ms', f.durationMs, 1, 3_600_000),
    warmupMs: parseIntOption('--warmup-ms', f.warmupMs, 0, 3_600_000),
    pingCount: parseIntOption('--ping-count', f.pingCount, 1, 1_000_000),
    jobs: f.jobs === undefined ? availableParallelism() : parseIntOption('--jobs', f.jobs, 1, 256),
    traceFlows: parseIntOption('--trace-flows', f.traceFlows, 0, 1_000_000),
  };
}

const caseFile = (s: CaseSpec, ext: string): string => `${s.path}-${s.test}-${s.size}.${ext}`;

/** `hv2m bench`: the paper's evaluation, every path × test × size, in parallel, with a report. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      "the paper's evaluation: response time, throughput and CPU utilization of every path, with tables, results.json/csv and an HTML report",
    )
    .option(
      '--paths <list>',
      `paths to run (default: every path this build knows, then the references: ${knownPaths(defaultPaths().names).join(',')})`,
    )
    .option('--tests <list>', 'tests to run', DEFAULT_TESTS.join(','))
    .option('--sizes <list>', 'stream message sizes, bytes', DEFAULT_SIZES.join(','))
    .option('--rr-size <bytes>', 'request and response size of tcp_rr and udp_rr', '1')
    .option('--profile <name|file>', 'cost profile', 'default')
    .option('--guest-type <hvm|pv>', 'type of the guests', 'hvm')
    .option('--seed <n>', 'seed of the run (each case derives its own from it and its identity)', '1')
    .option('--duration-ms <ms>', 'simulated measurement time per case, after the warm-up', '50')
    .option('--warmup-ms <ms>', 'simulated time per case before the measurement (connection set-up, ARP, slow start)', '10')
    .option('--ping-count <n>', 'echo requests per ping case', '100')
    .option('--jobs <n>', "cases run in parallel on worker threads (default: the machine's cores)")
    .option('--out <dir>', 'where results.json, results.csv and index.html go', 'hv2m-report')
    .option(
      '--pcap',
      "write a pcap of the client guest's NIC per case (DIR/pcap/), and of every guest interface, Dom0 bridge port and HV²M/shmem channel (DIR/pcap-all/<case>/)",
    )
    .option('--trace', `write a Chrome/Perfetto trace of the pCPUs per case (DIR/trace/, first ${TRACE_EVENTS} events)`)
    .option(
      '--trace-flows <n>',
      "in the trace, follow one in every n frames the guests send, as a flow from the sender's device to the receiver's (0: none)",
      '1',
    )
    .option('--quiet', 'no progress bar and no tables')
    .option('--json', 'print results.json on stdout instead of the tables')
    .option(
      '--timing',
      "also put each case's simulation speed (simulated s per wall s) in results.json, which then depends on the machine (it is always in timing.json)",
    )
    .action(async (flags: BenchFlags) => {
      const profile = Profile.load(flags.profile);
      const opts = parseBenchFlags(flags, defaultPaths().names);
      const cases = planCases(opts);
      const started = performance.now();
      const pool = new Tinypool({
        filename: new URL('./bench-worker.js', import.meta.url).href,
        maxThreads: opts.jobs,
        minThreads: Math.min(opts.jobs, cases.length),
      });
      const bar =
        flags.quiet !== true && process.stderr.isTTY
          ? new cliProgress.SingleBar(
              { format: 'hv2m bench [{bar}] {value}/{total} cases  {case}', stream: process.stderr, hideCursor: true },
              cliProgress.Presets.shades_classic,
            )
          : null;
      bar?.start(cases.length, 0, { case: '' });
      const outputs: CaseOutput[] = [];
      try {
        const runs = cases.map(async (spec, i) => {
          const task: CaseTask = {
            profile: flags.profile,
            spec,
            pcap: flags.pcap === true,
            traceEvents: flags.trace === true ? TRACE_EVENTS : 0,
            traceFlows: opts.traceFlows,
          };
          const out = (await pool.run(task)) as CaseOutput;
          outputs[i] = out;
          bar?.increment(1, { case: `${spec.path} ${spec.test} ${spec.size}` });
        });
        await Promise.all(runs);
      } finally {
        bar?.stop();
        await pool.destroy();
      }
      // results.json is reproducible (same seed, same file, whatever --jobs); the wall-clock
      // speed of each case goes to timing.json unless --timing asks for it there too.
      const results: CaseResult[] = outputs.map((o) => (flags.timing === true ? o.result : { ...o.result, simSpeed: null }));
      const doc: ResultsDocument = {
        version: program.version() ?? '',
        profile: { name: profile.name, description: profile.description, xen: null },
        seed: opts.seed,
        guestType: opts.guestType,
        durationMs: opts.durationMs,
        warmupMs: opts.warmupMs,
        host: benchHosts({ path: '<path>', guestType: opts.guestType }).hosts[0]!,
        results,
      };
      await writeReport(flags.out, doc, profile);
      for (const [i, o] of outputs.entries()) {
        if (o.pcap !== null) {
          mkdirSync(join(flags.out, 'pcap'), { recursive: true });
          writeWhole(join(flags.out, 'pcap', caseFile(cases[i]!, 'pcap')), o.pcap);
          // Every other capture point of the case: pcap-all/<case>/<stack>_<dev>.pcap and <path>_d<a>-d<b>.pcap.
          const dir = join(flags.out, 'pcap-all', caseFile(cases[i]!, 'pcap').replace(/\.pcap$/, ''));
          mkdirSync(dir, { recursive: true });
          for (const [name, bytes] of Object.entries(o.captures)) writeWhole(join(dir, `${name}.pcap`), bytes);
        }
        if (o.trace !== null) {
          mkdirSync(join(flags.out, 'trace'), { recursive: true });
          writeWhole(join(flags.out, 'trace', caseFile(cases[i]!, 'json')), o.trace);
        }
      }
      const wallS = (performance.now() - started) / 1000;
      const speeds = outputs.map((o, i) => ({ path: cases[i]!.path, test: cases[i]!.test, size: cases[i]!.size, simSpeed: o.result.simSpeed }));
      writeWhole(join(flags.out, 'timing.json'), `${JSON.stringify({ wallSeconds: wallS, jobs: opts.jobs, cases: speeds }, null, 2)}\n`);
      const slowest = speeds.reduce((a, b) => ((b.simSpeed ?? Infinity) < (a.simSpeed ?? Infinity) ? b : a));
      if (flags.json === true) process.stdout.write(toJson(doc));
      else if (flags.quiet !== true) {
        process.stdout.write(
          `${formatTables(doc)}\n\n${cases.length} cases in ${wallS.toFixed(1)} s on ${opts.jobs} worker${opts.jobs === 1 ? '' : 's'}; every case verified byte-exact; slowest simulation ${slowest.simSpeed?.toFixed(2) ?? '-'} simulated s per wall s (${slowest.path} ${slowest.test} ${slowest.size}). Report: ${join(flags.out, 'index.html')}\n`,
        );
      }
    });
}
