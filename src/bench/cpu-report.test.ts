import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { Hypervisor } from '../xen/index.js';
import { formatCpuReport } from './cpu-report.js';

describe('CPU report', () => {
  it('lays out domains as xentop does, with Xen and idle, summing to capacity', () => {
    const env = new SimEnvironment();
    const hv = new Hypervisor(env, Profile.load('default'), { pcpus: 2 });
    hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1 });
    const g = hv.createDomain({ name: 'guest', kind: 'hvm', vcpus: 1 });
    env.process(
      (function* () {
        for (;;) yield g.vcpus[0]!.exec(1 * MS, 'user');
      })(),
    );
    env.run({ until: 100 * MS });
    const text = formatCpuReport(
      hv.cpuReport(),
      new Map([
        [0, 1],
        [1, 1],
      ]),
    );
    const lines = text.split('\n');
    assert.match(lines[0]!, /NAME\s+CPU\(sec\)\s+CPU\(%\)\s+user\s+kernel\s+xen\s+kthread\s+qemu\s+VCPUS/);
    assert.match(lines[2]!, /^\s+guest\s+0\.100\s+100\.0\s+100\.0\s+0\.0/);
    assert.match(text, /capacity\s+0\.200\s+200\.0 {2}= 2 pCPU × 0\.100 s/);
    assert.match(text, /idle\s+0\.100\s+100\.0/);
  });

  it("shows a device's own busy time (the SR-IOV NIC) as a row apart from the pCPUs and their capacity", () => {
    const env = new SimEnvironment();
    const hv = new Hypervisor(env, Profile.load('default'), { pcpus: 1 });
    hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1 });
    const before = hv.snapshot();
    env.process(
      (function* () {
        yield env.timeout(10 * MS);
        hv.acct.chargeDevice('nic', 2 * MS);
        yield env.timeout(10 * MS);
      })(),
    );
    env.run({ until: 20 * MS });
    const r = hv.cpuReport(before);
    assert.deepEqual(r.devices, [{ name: 'nic', busy: 2 * MS, percent: 10 }]);
    assert.equal(r.capacity, 20 * MS, 'a device is not a pCPU');
    const text = formatCpuReport(r);
    assert.match(text, /\n\s+nic\s+0\.002\s+10\.0 {2}a device's own work/);
  });
});
