import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, ScenarioError } from './scenario.js';

const files: Record<string, string> = {
  'a.cfg': 'name = "a"\ntype = "hvm"\nvif = [ "mac=00:16:3e:00:00:01,ip=10.0.0.1" ]\n',
  'bad.cfg': 'name = "b"\nvif = [ "mac=00:16:3e:00:00:02,ip=10.0.0.2,colour=red" ]\n',
};
const read = (p: string): string => {
  const t = files[p];
  if (t === undefined) throw new Error(`ENOENT: no such file, open '${p}'`);
  return t;
};

const GOOD = `seed: 7
hosts:
  - name: h1
    pcpus: 2
    guests:
      - xl: a.cfg
        tenant: t1
      - name: b
        nics: [{ path: pv, mac: "00:16:3e:00:00:02", ip: 10.0.0.2/24 }]
workloads:
  - { test: tcp_rr, client: a, server: b }
  - { test: tcp_stream, client: b, server: a, startMs: 5, size: 4096 }
`;

function problems(text: string): string[] {
  try {
    parseScenario('s.yaml', text, read);
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.problems;
  }
  assert.fail('the scenario was accepted');
}

const TWO = `hosts:
  - name: h1
    pcpus: 2
    dom0: { ip: 10.0.0.254/24 }
    guests:
      - name: a
        nics: [{ path: pv, mac: "00:16:3e:00:00:01", ip: 10.0.0.1/24 }]
      - name: b
        nics: [{ path: pv, mac: "00:16:3e:00:00:02", ip: 10.0.0.2/24 }]
  - name: h2
    pcpus: 2
    dom0: { ip: 10.0.0.253/24 }
  - name: h3
    pcpus: 2
wires:
  - { between: [h1, h2] }
workloads:
  - { test: tcp_rr, client: a, server: b }
migrations:
  - { guest: b, to: h1, atMs: 30 }
  - { guest: b, to: h2, atMs: 10, maxIterations: 5 }
`;

describe('scenario files', () => {
  it('reads migrations, in time order, each from where the guest is by then', () => {
    const s = parseScenario('s.yaml', TWO, read);
    assert.deepEqual(
      s.migrations.map((m) => [m.guest, m.to, m.atMs, m.maxIterations]),
      [
        ['b', 'h2', 10, 5],
        ['b', 'h1', 30, undefined],
      ],
    );
    assert.match(
      problems(TWO.replace('to: h1, atMs: 30', 'to: h2, atMs: 30'))[0]!,
      /^s\.yaml:20: migrations\.0\.to: guest "b" is already on h2 by 30 ms/,
    );
    assert.match(problems(TWO.replace('guest: b, to: h1', 'guest: z, to: h1'))[0]!, /migrations\.0\.guest: no guest named "z"/);
    assert.match(problems(TWO.replace('to: h1, atMs: 30', 'to: h3, atMs: 30'))[0]!, /migrations\.0: host h3 has no dom0\.ip/);
    assert.match(problems(TWO.replace('to: h1, atMs: 30', 'to: h9, atMs: 30'))[0]!, /migrations\.0\.to: no host named "h9"/);
    assert.match(problems(TWO.replace('atMs: 30', 'atMs: -1'))[0]!, /migrations\.0\.atMs/);
  });

  it('reads hosts, guests inline and from xl.cfg files, and workloads with their defaults', () => {
    const s = parseScenario('s.yaml', GOOD, read);
    assert.equal(s.seed, 7);
    assert.equal(s.profile, 'default');
    assert.deepEqual(
      s.hosts[0]!.guests.map((g) => [g.name, g.type, g.tenant, g.nics[0]!.path, g.nics[0]!.ip]),
      [
        ['a', 'hvm', 't1', 'pv', '10.0.0.1/24'],
        ['b', 'hvm', undefined, 'pv', '10.0.0.2/24'],
      ],
    );
    assert.deepEqual(
      s.workloads.map((w) => [w.name, w.size, w.startMs, w.durationMs]),
      [
        ['tcp_rr:a->b', 1, 0, 50],
        ['tcp_stream:b->a', 4096, 5, 50],
      ],
    );
  });

  it('names the file, line and field of every mistake, and what was expected', () => {
    const cases: [string, RegExp][] = [
      [GOOD.replace('seed: 7', 'seed: seven'), /^s\.yaml:1: seed: .*number/],
      [GOOD.replace('seed: 7', 'seed: 7\ncolour: red'), /^s\.yaml:\d+: \(top\): Unrecognized key.*colour/],
      [GOOD.replace('client: a, server: b', 'client: a, server: nobody'), /^s\.yaml:11: workloads\.0\.server: no guest named "nobody"/],
      [GOOD.replace('test: tcp_rr', 'test: tcp_crr'), /^s\.yaml:11: workloads\.0\.test: /],
      [GOOD.replace('"00:16:3e:00:00:02"', '"00:16:3e:00:00:0z"'), /^s\.yaml:9: hosts\.0\.guests\.1\.nics\.0\.mac: a MAC address/],
      [GOOD.replace('pcpus: 2', 'pcpus: 2\n    guests2: []'), /^s\.yaml:\d+: hosts\.0: invalid host description|Unrecognized key.*guests2/],
      [GOOD.replace('xl: a.cfg', 'xl: bad.cfg'), /^bad\.cfg:2: vif: unknown key "colour".*\(from s\.yaml:6: hosts\.0\.guests\.0\.xl/],
      [GOOD.replace('xl: a.cfg', 'xl: missing.cfg'), /^s\.yaml:6: hosts\.0\.guests\.0\.xl: cannot read missing\.cfg/],
      [
        GOOD.replace('tenant: t1', 'tenant: t1\n        memory: 3'),
        /^s\.yaml:\d+: hosts\.0\.guests\.0\.memory: .*Unrecognized|^s\.yaml:\d+: hosts\.0\.guests\.0: Unrecognized key.*memory/,
      ],
      [GOOD.replace('name: b\n', 'name: b\n        pinning: [0, 5]\n'), /pCPU|pinning/],
      [
        GOOD.replace('size: 4096', 'size: 70000').replace('test: tcp_stream', 'test: udp_stream'),
        /^s\.yaml:12: workloads\.1\.size: 70000 bytes do not fit/,
      ],
      ['hosts: [\n', /^s\.yaml:\d+: YAML: /],
    ];
    for (const [text, re] of cases) {
      const ps = problems(text);
      assert.ok(
        ps.some((p) => re.test(p)),
        `${re} in:\n${ps.join('\n')}`,
      );
    }
  });
  it('hosts joined by wires; a wire to an unknown host or bridge, or a guest name used on two hosts, is named with its line', () => {
    const two = (wire: string, guest2 = 'c'): string => `hosts:
  - name: h1
    pcpus: 2
    guests:
      - { name: a, nics: [{ path: pv, mac: "00:16:3e:00:00:01", ip: 10.0.0.1/24 }] }
  - name: h2
    pcpus: 2
    guests:
      - { name: ${guest2}, nics: [{ path: pv, mac: "00:16:3e:00:00:03", ip: 10.0.0.3/24 }] }
wires:
  - { between: [${wire}] }
workloads:
  - { test: tcp_rr, client: a, server: c }
`;
    const ok = parseScenario('s.yaml', two('h1, h2'), read);
    assert.deepEqual(ok.wires, [{ a: { host: 'h1', bridge: 'xenbr0' }, b: { host: 'h2', bridge: 'xenbr0' } }]);
    assert.deepEqual(
      ok.hosts.map((h) => h.name),
      ['h1', 'h2'],
    );
    assert.ok(problems(two('h1, h3')).some((p) => /^s\.yaml:11: wires\.0\.between\.1: no host named "h3"/.test(p)));
    assert.ok(problems(two('h1, "h2:xenbr7"')).some((p) => /^s\.yaml:11: wires\.0\.between\.1: host h2 has no bridge "xenbr7"/.test(p)));
    assert.ok(problems(two('h1, h2', 'a')).some((p) => /^s\.yaml:9: hosts\.1\.guests\.0\.name: guest name "a" is already/.test(p)));
  });
});
