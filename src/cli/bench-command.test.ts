import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';

const main = new URL('./main.js', import.meta.url).pathname;
const schema = JSON.parse(readFileSync(new URL('../../schemas/results.schema.json', import.meta.url), 'utf8')) as object;

function bench(args: string[]): { status: number | null; stdout: string; stderr: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hv2m-bench-'));
  const r = spawnSync(process.execPath, [main, 'bench', '--out', dir, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, dir };
}

const small = [
  '--paths',
  'loopback',
  '--tests',
  'ping,tcp_rr,udp_stream',
  '--sizes',
  '1024,65536',
  '--duration-ms',
  '3',
  '--warmup-ms',
  '1',
  '--ping-count',
  '10',
];

const results = (dir: string): string => readFileSync(join(dir, 'results.json'), 'utf8');

describe('hv2m bench', () => {
  it('writes results.json (valid against the shipped schema), results.csv and a self-contained index.html; --jobs 1 and 2 agree', () => {
    const one = bench([...small, '--jobs', '1', '--quiet']);
    assert.equal(one.status, 0, one.stderr);
    const two = bench([...small, '--jobs', '2', '--quiet', '--pcap', '--trace']);
    assert.equal(two.status, 0, two.stderr);
    assert.equal(results(one.dir), results(two.dir), 'byte-identical whatever the number of workers');
    for (const f of ['results.csv', 'index.html']) assert.equal(readFileSync(join(one.dir, f), 'utf8'), readFileSync(join(two.dir, f), 'utf8'), f);
    const timing = JSON.parse(readFileSync(join(one.dir, 'timing.json'), 'utf8')) as { cases: { simSpeed: number }[] };
    assert.ok(
      timing.cases.every((c) => c.simSpeed > 0),
      'the simulation speed of each case, apart',
    );
    const doc = JSON.parse(readFileSync(join(one.dir, 'results.json'), 'utf8')) as {
      results: { test: string; size: number; verified: boolean; throughputMbps: number | null }[];
    };
    const validate = new Ajv({ allErrors: true }).compile(schema);
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    assert.deepEqual(
      doc.results.map((r) => `${r.test}/${r.size}`),
      ['ping/56', 'tcp_rr/1', 'udp_stream/1024', 'udp_stream/65507'],
      'report order; udp_stream capped at the largest IPv4 UDP payload',
    );
    assert.ok(doc.results.every((r) => r.verified));
    const csv = readFileSync(join(one.dir, 'results.csv'), 'utf8').trim().split('\r\n');
    assert.equal(csv.length, 1 + doc.results.length);
    assert.ok(csv[0]!.startsWith('path,test,size,throughputMbps'));
    const html = readFileSync(join(one.dir, 'index.html'), 'utf8');
    assert.ok((html.match(/<svg/g) ?? []).length >= 3, 'charts drawn as inline SVG');
    assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html.replace(/xmlns(:xlink)?="[^"]*"/g, '')), 'no script and no network reference');
    assert.ok(html.includes('net.bridge.frame'), 'the profile with its sources');
    assert.deepEqual(readdirSync(join(two.dir, 'pcap')).sort(), [
      'loopback-ping-56.pcap',
      'loopback-tcp_rr-1.pcap',
      'loopback-udp_stream-1024.pcap',
      'loopback-udp_stream-65507.pcap',
    ]);
    const trace = JSON.parse(readFileSync(join(two.dir, 'trace', 'loopback-tcp_rr-1.json'), 'utf8')) as { traceEvents: { ph: string }[] };
    assert.ok(
      trace.traceEvents.some((e) => e.ph === 'B'),
      'pCPU slices in the trace',
    );
  });

  it('prints a table per metric, or results.json with --json', () => {
    const t = bench([...small, '--tests', 'tcp_rr']);
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /response time, mean µs\s+loopback/);
    assert.match(t.stdout, /every case verified byte-exact/);
    const j = bench([...small, '--tests', 'tcp_rr', '--json']);
    assert.equal((JSON.parse(j.stdout) as { results: unknown[] }).results.length, 1);
  });

  it('refuses bad options with the option named, and writes nothing', () => {
    for (const [args, msg] of [
      [['--paths', 'nosuch'], /--paths: "nosuch" is not a path/],
      [['--tests', 'tcp_rr,,ping'], /--tests: .* empty item/],
      [['--sizes', '12k'], /--sizes: "12k" is not a whole number/],
      [['--guest-type', 'kvm'], /--guest-type: "kvm" is not hvm or pv/],
      [['--duration-ms', '0'], /--duration-ms: 0 is outside/],
      [['--trace-flows', 'some'], /--trace-flows: "some" is not a whole number/],
      [['--profile', '/nonexistent.json'], /nonexistent\.json/],
    ] as const) {
      const r = bench([...args]);
      assert.equal(r.status, 1, `${args.join(' ')} should fail`);
      assert.match(r.stderr, msg);
      assert.deepEqual(readdirSync(r.dir), []);
    }
  });
});
