import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseXlConfig, xlGuest, XlConfigError } from './xl-config.js';
import { parseGuest, parseHost } from './description.js';

const HVM = `# an HVM guest, as xl.cfg(5) shows them
name = "web1"
type = 'hvm'
memory = 1024 ; vcpus = 2
cpus = "2-3"
cpu_weight = 512
cap = 0x32          # hex, read as strtol base 0 does
vif = [ 'mac=00:16:3E:00:00:01,bridge=xenbr0,ip=10.0.0.1',
        "type=vif,mac=00:16:3e:00:00:11,ip=10.1.0.1/16",
        'model=e1000,mac=00:16:3e:00:00:21,ip=10.2.0.1', ]
disk = [ 'phy:/dev/vg/web1,xvda,w' ]
on_crash = "restart"
`;

describe('xl.cfg files', () => {
  it("parses xl's syntax: quotes, escapes, numbers as text, lists over lines with a trailing comma, ';', comments, +=", () => {
    const c = parseXlConfig('t.cfg', 'name = "a\\tb\\x41\\101"\nextra = "x" ; extra += "y"\nvif = [ "a" ,\n\n "b", ]\nvif += ["c"]\nmemory=010');
    assert.deepEqual(c.get('name')!.value, { kind: 'atom', text: 'a\tbAA', quoted: true, line: 1 });
    assert.equal((c.get('extra')!.value as { text: string }).text, 'xy');
    const v = c.get('vif')!.value;
    assert.ok(v.kind === 'list');
    assert.deepEqual(
      v.items.map((x) => (x as { text: string }).text),
      ['a', 'b', 'c'],
    );
    assert.equal(c.get('memory')!.line, 7);
    assert.equal((c.get('memory')!.value as { text: string }).text, '010', 'numbers stay text until a key reads them');
  });

  it('maps an HVM guest: type, memory, vCPUs, pinning, weight, cap, and each vif to its path', () => {
    const g = xlGuest('web1.cfg', HVM, { tenant: 'acme' });
    assert.deepEqual(g, {
      name: 'web1',
      type: 'hvm',
      memoryMiB: 1024,
      vcpus: 2,
      pinning: [2, 3],
      weight: 512,
      cap: 50,
      tenant: 'acme',
      nics: [
        { path: 'pv', mac: '00:16:3e:00:00:01', ip: '10.0.0.1/24', bridge: 'xenbr0' },
        { path: 'pv', mac: '00:16:3e:00:00:11', ip: '10.1.0.1/16' },
        { path: 'emulated', mac: '00:16:3e:00:00:21', ip: '10.2.0.1/24' },
      ],
    });
    const host = parseHost({ pcpus: 4, guests: [g] });
    assert.equal(host.guests[0]!.nics.length, 3);
    const pv = xlGuest('p.cfg', 'name="p"\nvif=["mac=00:16:3e:00:00:02,ip=10.0.0.2,model=e1000"]', { paths: ['hv2m'] });
    assert.equal(pv.type, 'pv', "xl's default type is PV");
    assert.equal(pv.nics![0]!.path, 'hv2m', 'a scenario may name the path of each vif');
    assert.equal(xlGuest('s.cfg', 'name="s"\ntype="hvm"\npci=["0000:03:10.1,mac=00:16:3e:00:00:03,ip=10.0.0.3"]').nics![0]!.path, 'sriov');
  });

  it('names the file and line of every mistake', () => {
    const cases: [string, RegExp][] = [
      ['name = "a"\nmemory = 512M', /^x\.cfg:2: lexical error at "M"|^x\.cfg:2: parameter `memory' is not a valid number/],
      ['name = "a"\nmemroy = 512', /^x\.cfg:2: unknown setting "memroy"/],
      ['name = "a"\nvcpus = [ 1 ]', /^x\.cfg:2: vcpus must be a number, not a list/],
      ['name = "a"\nvif = [ "mac=00:16:3e:00:00:zz,ip=10.0.0.1" ]', /mac/],
      ['name = "a"\nvif = [ "mac=00:16:3e:00:00:01,ip=10.0.0.1,colour=red" ]', /^x\.cfg:2: vif: unknown key "colour"/],
      ['name = "a"\nvif = [ "mac=00:16:3e:00:00:01" ]', /^x\.cfg:2: vif 0: ip= is required/],
      ['name = "a"\ntype = "pvh"', /^x\.cfg:2: type = "pvh"/],
      ['memory = 512', /^x\.cfg:1: name is required/],
      ['name = "a"\ncpus = "3-1"', /^x\.cfg:2: cpus: range 3-1 runs backwards/],
      ['name = "a"\nvif = [ "a"\n  "b" ]', /^x\.cfg:3: syntax error: "," or "\]" expected/],
      ["name = 'a'\nkernel = os.path.join('x')", /^x\.cfg:2: lexical error.*Python/],
      ['name = "a"\nmemory = 512 256', /^x\.cfg:2: syntax error: the setting memory must end/],
    ];
    for (const [text, re] of cases) {
      let msg = '';
      try {
        const g = xlGuest('x.cfg', text);
        parseGuest(g, parseHost({ pcpus: 2 }), []);
      } catch (e) {
        msg = (e as Error).message;
        if (!(e instanceof XlConfigError)) msg = `x.cfg: ${msg}`;
      }
      assert.match(msg, re, text);
    }
  });
});
