#!/usr/bin/env node
// Writes profiles/pentium-d-xen3.2.json from profiles/default.json: the classic 2008
// co-resident test bed (XenLoop, HPDC 2008, section 5: dual-core Pentium D 2.8 GHz with 1 MB
// cache, Xen 3.2.0, Linux 2.6.18.8 guests, a 1 Gb/s link between hosts). Every entry keeps
// a source: the ones this era changes get their own (a citation or a stated assumption); the
// rest say which default figure they carry over and why that is assumed to hold.
// Nothing here is fitted to a whole-system result. Re-run after adding profile entries:
//   node scripts/derive-pentium-d-profile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const def = JSON.parse(readFileSync(`${root}profiles/default.json`, 'utf8'));

const TESTBED =
  'XenLoop test bed (Wang, Wright, Gopalan, HPDC 2008, section 5): dual-core Pentium D 2.8 GHz, 1 MB cache, Xen 3.2.0, Linux 2.6.18.8 guests, hosts on a 1 Gb/s link (issue 12 names it)';
// Pentium D: 800 MT/s front-side bus x 8 B = 6.4 GB/s peak; a copy moves every byte over it twice
// (read and write), and single-thread copy measurements of that era reach less than half the
// theoretical limit (calibration.md, RightMark RMMA row): 6.4 / 2 / 2 = 1.6 GB/s.
const COPY_MBPS = 1600;
const copyWhy = `Assumption (Pentium D memcpy bandwidth not found, calibration.md): the 800 MT/s FSB's 6.4 GB/s peak, halved because a copy crosses it twice, halved again as single-thread copies of the era reach less than half the theoretical limit (calibration.md, RightMark RMMA 2008) = ${COPY_MBPS} MB/s`;

const own = {
  'net.copy': { value: COPY_MBPS, unit: 'MB/s', source: copyWhy },
  'emulated.qemu.dmaCopy': { value: COPY_MBPS, unit: 'MB/s', source: `${copyWhy}; qemu-dm's DMA copy is the same memcpy` },
  'xen.gnttab.copyPerByte': { value: Number((1000 / COPY_MBPS).toFixed(3)), unit: 'ns/B', source: `${copyWhy}; as ns per byte: 1 / 1.6 GB/s` },
  'phys.nic.bandwidth': { value: 1, unit: 'Gbit/s', source: TESTBED },
  'net.tcp.initCwnd': {
    value: 3,
    unit: 'count',
    source:
      'Linux 2.6.18 tcp_init_cwnd: RFC 3390 (min(4*MSS, max(2*MSS, 4380 B)) = 3 segments of 1460 B); the initial window of 10 came with Linux 2.6.39',
  },
  'net.tcp.limitOutputBytes': {
    value: 4194304,
    unit: 'B',
    source:
      'Linux 2.6.18 has no TCP small queues (tcp_limit_output_bytes came with 3.6): set to net.tcp.wmemMax so that it never binds before the send buffer does',
  },
};

const carried = (name, e) => {
  if (e.unit === 'cycles' || e.unit === 'cycles/B') {
    return `Assumption: the default profile's ${e.value} ${e.unit} carried over — the same code path counted in cycles, so it scales to the 2.8 GHz clock; no per-operation figure for a Pentium D was found (calibration.md 'not found' rows), and NetBurst's lower IPC makes this a lower bound. Default's source: ${e.source}`;
  }
  return `As the default profile (a software parameter or a figure this era does not change, assumed to hold on the 2008 test bed). Default's source: ${e.source}`;
};

const entries = {};
for (const [name, e] of Object.entries(def.entries)) entries[name] = own[name] ?? { value: e.value, unit: e.unit, source: carried(name, e) };
for (const name of Object.keys(own))
  if (!(name in def.entries)) throw new Error(`derive-pentium-d-profile: "${name}" is not an entry of the default profile`);

const out = {
  name: 'pentium-d-xen3.2',
  description:
    "The classic 2008 co-resident test bed: a dual-core Pentium D 2.8 GHz host with 1 MB cache, Xen 3.2.0, PV Linux 2.6.18.8 guests, a 1 Gb/s link to a second host. Costs not found for this CPU carry the default cycle counts (a lower bound); copies use an assumed 1.6 GB/s memcpy. Behaviour (drivers, stack) stays the model's Linux 3.18 except the kernels' event channels, which are 2.6.18's 2-level ABI; otherwise only costs, the Xen release and the link change. Derived by scripts/derive-pentium-d-profile.mjs.",
  cpu: { model: 'Intel Pentium D 2.8 GHz, 2 cores, 1 MB cache', clock: { value: 2.8, unit: 'GHz', source: TESTBED } },
  xen: { version: '3.2.0', source: `${TESTBED}; credit1 and grant-copy rules of xen.git tag RELEASE-3.2.0` },
  linux: {
    version: '2.6.18.8',
    source: `${TESTBED}; its Xen support is the linux-2.6.18-xen tree's: 2-level event channels only (the FIFO ABI came with Linux 3.14 and Xen 4.4)`,
  },
  entries,
};
writeFileSync(`${root}profiles/pentium-d-xen3.2.json`, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote profiles/pentium-d-xen3.2.json (${Object.keys(entries).length} entries, ${Object.keys(own).length} of its own)`);
