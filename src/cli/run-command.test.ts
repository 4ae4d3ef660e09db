import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';

const main = new URL('./main.js', import.meta.url).pathname;
const examples = new URL('../../examples/', import.meta.url).pathname;
const schema = JSON.parse(readFileSync(new URL('../../schemas/results.schema.json', import.meta.url), 'utf8')) as object;

function scenarios(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? scenarios(p) : n.endsWith('.yaml') ? [p] : [];
  });
}

function run(file: string, extra: string[] = []): { status: number | null; stdout: string; stderr: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hv2m-run-'));
  const r = spawnSync(process.execPath, [main, 'run', file, '--out', dir, '--quiet', ...extra], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, dir };
}

describe('hv2m run', () => {
  const files = scenarios(examples);
  it('ships example scenarios', () => assert.ok(files.length >= 2, files.join(', ')));
  for (const f of files) {
    it(`runs ${f.slice(examples.length)}: every workload verified, results valid against the schema`, () => {
      const r = run(f);
      assert.equal(r.status, 0, r.stderr);
      const doc = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8')) as { results: { verified: boolean; workload: string }[] };
      assert.ok(new Ajv().validate(schema, doc));
      assert.ok(doc.results.length > 0 && doc.results.every((x) => x.verified));
      assert.equal(new Set(doc.results.map((x) => x.workload)).size, doc.results.length);
    });
  }

  it('the same scenario and seed give byte-identical results', () => {
    const f = join(examples, 'two-guests.yaml');
    const a = run(f);
    const b = run(f);
    assert.equal(readFileSync(join(a.dir, 'results.json'), 'utf8'), readFileSync(join(b.dir, 'results.json'), 'utf8'));
  });

  it('--pcap and --trace: a capture per guest interface and Dom0 bridge port of both hosts, and a trace with what ran on both hosts’ pCPUs, the results unchanged', () => {
    const f = join(examples, 'two-hosts.yaml');
    const plain = run(f);
    const r = run(f, ['--pcap', '--trace', '--trace-flows', '4']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      readFileSync(join(r.dir, 'results.json'), 'utf8'),
      readFileSync(join(plain.dir, 'results.json'), 'utf8'),
      'tracing changes no result',
    );
    const pcaps = readdirSync(join(r.dir, 'pcap-all'));
    for (const want of ['h1-vm1_eth0.pcap', 'h2-vm2_eth0.pcap', 'h1-Domain-0_vif1.0.pcap', 'h2-Domain-0_eth0.pcap'])
      assert.ok(pcaps.includes(want), `${want} in ${pcaps.join(', ')}`);
    for (const p of pcaps) {
      const b = readFileSync(join(r.dir, 'pcap-all', p));
      assert.equal(b.readUInt32LE(0), 0xa1b23c4d, `${p}: pcap magic (nanosecond timestamps)`);
      assert.ok(b.length > 24 + 16, `${p}: at least one frame`);
    }
    const t = JSON.parse(readFileSync(join(r.dir, 'trace.json'), 'utf8')) as {
      traceEvents: { ph: string; tid: number; name: string; args?: { name?: string } }[];
      otherData: { flows: { every: number; written: number } };
    };
    const named = t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.tid);
    const sliced = new Set(t.traceEvents.filter((e) => e.ph === 'B').map((e) => e.tid));
    assert.ok(
      named.filter((x) => x < 1000).length >= 2 && named.filter((x) => x >= 1000).length >= 2,
      `a track per pCPU of both hosts: ${named.join(',')}`,
    );
    for (const tid of sliced) assert.ok(named.includes(tid), `slices only on named pCPU tracks (${tid})`);
    assert.ok([...sliced].some((x) => x < 1000) && [...sliced].some((x) => x >= 1000), 'what ran on both hosts');
    assert.equal(t.otherData.flows.every, 4);
    assert.ok(t.otherData.flows.written > 0, 'frames followed across the wire');
  });

  it('refuses a bad scenario with its file and line, and writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hv2m-bad-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(
      f,
      readFileSync(join(examples, 'two-guests.yaml'), 'utf8').replace(
        'client: vm1, server: vm2, durationMs: 20',
        'client: vm1, server: vm9, durationMs: 20',
      ),
    );
    const r = run(f);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml:\d+: workloads\.0\.server: no guest named "vm9"/);
    assert.deepEqual(readdirSync(r.dir), []);
  });
});
