/**
 * The daemon against clients we did not write: Debian's xenstore-utils 4.17 (xen-abi.md
 * §1.10, §10), run on the built CLI's daemon through XENSTORED_PATH.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type RunningDaemon } from './test-util.js';

const TOOLS = [
  'xenstore-read',
  'xenstore-write',
  'xenstore-ls',
  'xenstore-list',
  'xenstore-exists',
  'xenstore-rm',
  'xenstore-chmod',
  'xenstore-watch',
];

/** The tool on PATH (or where Debian puts it). */
function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d !== ''), '/usr/bin', '/usr/sbin'];
  return dirs.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

describe('xenstore-utils against `hv2m xenstored`', { timeout: 60_000 }, () => {
  let d: RunningDaemon;
  let env: NodeJS.ProcessEnv;

  /** Runs a tool with XENSTORED_PATH set; a client that hangs fails the test after 10 s. */
  const xs = (tool: string, ...args: string[]): Promise<Run> =>
    new Promise((resolve, reject) => {
      const path = findTool(tool);
      if (path === undefined) return reject(new Error(`${tool} not found`));
      execFile(path, args, { env, timeout: 10_000, encoding: 'buffer' }, (e, stdout, stderr) => {
        const killed = e !== null && (e as { killed?: boolean }).killed === true;
        if (killed) return reject(new Error(`${tool} ${args.join(' ')} hung (killed after 10 s)`));
        const code = e === null ? 0 : typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : -1;
        resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString('latin1'), raw: stdout });
      });
    });
  const ok = async (tool: string, ...args: string[]): Promise<string> => {
    const r = await xs(tool, ...args);
    assert.equal(r.code, 0, `${tool} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    return r.stdout;
  };

  before(async () => {
    const missing = TOOLS.filter((t) => findTool(t) === undefined);
    if (missing.length > 0) {
      assert.fail(
        `Debian's xenstore-utils are needed for these tests and ${missing.join(', ')} are missing: apt-get install xenstore-utils (CI's .ci/run installs them)`,
      );
    }
    d = await startDaemon();
    env = { ...process.env, XENSTORED_PATH: d.socketPath };
  });

  after(async () => {
    await d?.stop();
  });

  it('xenstore-write then xenstore-read', async () => {
    assert.equal(await ok('xenstore-write', '/t1/name', 'Domain-0'), '');
    assert.equal(await ok('xenstore-read', '/t1/name'), 'Domain-0\n');
  });

  it('several keys in one transaction, read back with and without -p', async () => {
    await ok('xenstore-write', '/t2/a', '1', '/t2/b', 'two words');
    assert.equal(await ok('xenstore-read', '/t2/a', '/t2/b'), '1\ntwo words\n');
    assert.equal(await ok('xenstore-read', '-p', '/t2/a', '/t2/b'), '/t2/a: 1\n/t2/b: two words\n');
  });

  it('xenstore-ls: tree, -f full paths, -p permissions', async () => {
    await ok('xenstore-write', '/t3/a', '1', '/t3/b/c', 'two words', '/t3/b/d', '');
    assert.equal(await ok('xenstore-ls', '/t3'), 'a = "1"\nb = ""\n c = "two words"\n d = ""\n');
    assert.equal(await ok('xenstore-ls', '-f', '/t3'), '/t3/a = "1"\n/t3/b = ""\n/t3/b/c = "two words"\n/t3/b/d = ""\n');
    assert.equal(
      await ok('xenstore-ls', '-p', '/t3'),
      [
        'a = "1"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)',
        'b = "" . . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)',
        ' c = "two words" . . . . . . . . . . . . . . . . . . . . . .  (n0)',
        ' d = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)',
        '',
      ].join('\n'),
    );
    const root = await ok('xenstore-ls', '/');
    assert.match(root, /^tool = ""\n xenstored = ""\n/, 'the fresh tree comes first, in creation order');
  });

  it('xenstore-list, with -p', async () => {
    await ok('xenstore-write', '/t4/z', '', '/t4/a', '', '/t4/m', '');
    assert.equal(await ok('xenstore-list', '/t4'), 'z\na\nm\n', 'creation order');
    assert.equal(await ok('xenstore-list', '-p', '/t4'), '/t4/z\n/t4/a\n/t4/m\n');
  });

  it('xenstore-exists: exit 0 or 1, no output', async () => {
    await ok('xenstore-write', '/t5', 'x');
    assert.deepEqual(await xs('xenstore-exists', '/t5').then((r) => [r.code, r.stdout]), [0, '']);
    assert.deepEqual(await xs('xenstore-exists', '/t5/nope').then((r) => [r.code, r.stdout]), [1, '']);
  });

  it('xenstore-rm, and -t removing emptied parents', async () => {
    await ok('xenstore-write', '/t6/keep', 'k', '/t6/x/y/z', 'v');
    await ok('xenstore-rm', '/t6/keep');
    assert.equal((await xs('xenstore-exists', '/t6/keep')).code, 1);
    await ok('xenstore-rm', '-t', '/t6/x/y/z');
    assert.equal((await xs('xenstore-exists', '/t6/x')).code, 1, 'x and y were empty and went too');
    assert.equal((await xs('xenstore-exists', '/t6')).code, 1, '… and so did t6');
    assert.equal((await xs('xenstore-exists', '/')).code, 0);
  });

  it('xenstore-chmod, then xenstore-ls -p shows the permissions', async () => {
    await ok('xenstore-write', '/t7/a', '1', '/t7/b', '2');
    await ok('xenstore-chmod', '/t7/a', 'n0', 'r1');
    await ok('xenstore-chmod', '-r', '/t7/b', 'b0');
    assert.equal(
      await ok('xenstore-ls', '-p', '/t7'),
      'a = "1"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r1)\nb = "2"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (b0)\n',
    );
  });

  it('xenstore-watch -n 2: the first event, then one fired by a write from another client', async () => {
    await ok('xenstore-write', '/t8', '');
    const path = findTool('xenstore-watch')!;
    const w = spawn(path, ['-n', '2', '/t8'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    w.stdout.setEncoding('latin1').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((res) => w.on('close', (code) => res(code)));
    const killer = setTimeout(() => w.kill('SIGKILL'), 10_000);
    try {
      for (let i = 0; i < 500 && !out.includes('/t8\n'); i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(out, '/t8\n', 'the first event arrives at once');
      await ok('xenstore-write', '/t8/child', 'v');
      assert.equal(await exited, 0);
      assert.equal(out, '/t8\n/t8/child\n');
    } finally {
      clearTimeout(killer);
      w.kill();
    }
  });

  it("value escaping: 'a\\tb\\x41' is stored as a TAB b A and printed escaped", async () => {
    await ok('xenstore-write', '/t9', 'a\\tb\\x41');
    const raw = await xs('xenstore-read', '-R', '/t9');
    assert.deepEqual([...raw.raw], [0x61, 0x09, 0x62, 0x41]);
    assert.equal(await ok('xenstore-read', '/t9'), 'a\\tbA\n');
  });

  it('errors: a missing path', async () => {
    const r = await xs('xenstore-read', '/nope');
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', "xenstore-read: couldn't read path /nope\n"]);
    const l = await xs('xenstore-ls', '/nope');
    assert.deepEqual([l.code, l.stderr], [1, 'xenstore-ls: xs_directory (/nope): No such file or directory\n']);
  });
});
