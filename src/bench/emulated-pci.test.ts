/**
 * The emulated NIC's PCI side on a whole host: config space through CONFIG_ADDRESS /
 * CONFIG_DATA (port exits, Xen's PCI_CONFIG ioreqs to qemu-dm), hvmloader's set-up and the
 * driver's probe, a guest writing nonsense to config space, and hot-unplug of an emulated NIC
 * idle and mid-traffic. (Here because the whole-host build and the workloads sit above vnet.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS, SimEnvironment } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ipv4 } from '../net/index.js';
import { hvmPciIntxGsi } from '../xen/index.js';
import { IOREQ_READ, IOREQ_WRITE, VIOAPIC_DEFAULT_BASE_ADDRESS, VIOAPIC_VERSION_ID } from '../xen/abi/index.js';
import {
  hvmloaderLinkIrq,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_1,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MEMORY,
  PCI_VENDOR_ID,
  PciConf,
  pciDevfn,
} from '../xen/guest/index.js';
import type { EmulatedNic } from '../vnet/emulated/index.js';
import { E1000_STATUS, E1000_TDT } from '../vnet/emulated/e1000-regs.js';
import { Host } from '../host/host.js';
import { pingOnce, run } from '../host/test-support.js';
import { udpStream } from './workloads/index.js';

const profile = Profile.load('default');

function build(names = ['a', 'b', 'c'], seed = 21): { env: SimEnvironment; host: Host } {
  const env = new SimEnvironment({ seed });
  const p = env.process(
    Host.build(env, profile, {
      name: 'h',
      pcpus: 4,
      dom0: { vcpus: 2, memoryMiB: 1024 },
      guests: names.map((n, i) => ({ name: n, nics: [{ path: 'emulated', mac: `00:16:3e:00:00:0${i + 1}`, ip: `10.0.0.${i + 1}/24` }] })),
    }),
  );
  env.run({ until: p });
  if (!p.ok) throw p.error;
  return { env, host: p.value };
}

const nic = (host: Host, g: string): EmulatedNic => host.guest(g).nics[0]!.attached as EmulatedNic;

const ping = pingOnce;

/** The guest's own config accessor on its vCPU 0, and the NIC's devfn. */
function conf(host: Host, g: string): { c: PciConf; devfn: number } {
  const guest = host.guest(g);
  return { c: new PciConf(guest.side.kernel.xen, guest.domain.vcpus[0]!), devfn: pciDevfn(nic(host, g).qemu.place.pciDevice, 0) };
}

const mmioRead = (env: SimEnvironment, host: Host, g: string, gpa: number): bigint =>
  run(env, host.hv.mmio(host.guest(g).domain.vcpus[0]!, IOREQ_READ, gpa, 4));

describe('emulated NIC: PCI config space through CONFIG_ADDRESS / CONFIG_DATA', () => {
  it("the probe reads everything from config space: 8086:100e, BAR 0 where hvmloader put it (128 KiB), INTA's line and _PRT GSI, QEMU's subsystem ids", () => {
    const { host } = build(['a', 'b']);
    const a = nic(host, 'a');
    const slot = a.qemu.place.pciDevice;
    const r = a.driver.res;
    assert.equal(r.bar, a.qemu.place.bar, 'BAR 0 as hvmloader programmed it');
    assert.equal(a.qemu.mmioBase, r.bar, 'and qemu claims the BAR there');
    assert.equal(r.barSize, 0x20000);
    assert.equal(r.pin, 1, 'INTA');
    assert.equal(r.irqLine, hvmloaderLinkIrq((0 + slot) & 3), "the line hvmloader wrote from the barber's pole");
    assert.equal(r.irqLine, [5, 10, 11, 5][slot & 3]);
    assert.equal(r.gsi, hvmPciIntxGsi(slot, 0));
    assert.equal(r.subsystem, 0x1af41100);
    assert.equal(a.qemu.pci.busMaster, true);
    assert.equal(a.qemu.pci.read(PCI_COMMAND, 2) & 0x7, 0x7, 'I/O, memory and bus master on');
    assert.equal(a.qemu.pci.read(0x34, 1), 0, 'no capability list: no MSI on the 82540EM');
    assert.equal(a.qemu.pci.read(0x06, 2) & 0x10, 0, 'PCI_STATUS_CAP_LIST clear');
  });

  it('counters at probe: each config access a CF8 write and a CONFIG_DATA access, both I/O exits and ioreqs to qemu-dm, CONFIG_DATA as IOREQ_TYPE_PCI_CONFIG', () => {
    const { host } = build(['a', 'b']);
    const a = nic(host, 'a');
    const ga = host.guest('a').domain.counters;
    const q = a.qemu.stats;
    // hvmloader: vendor, device; 6 BARs × (read, all ones, read, restore); pin; line; COMMAND read+write; 2 BARs × (read, write, COMMAND read+write) = 38.
    // Probe: id, class, header, 2 subsystem, pin, line; 7 BARs incl. ROM × (COMMAND read, decode off, read, all ones, read, restore, decode on);
    // pci_enable_device's COMMAND read; pci_set_master's COMMAND read and latency timer read+write = 7 + 49 + 4 = 60.
    assert.equal(q.configIoreqs, 38 + 60, 'config accesses at boot: the hvmloader step and the probe');
    assert.equal(ga.ioreqsPciConfig, q.configIoreqs, "Xen's PCI_CONFIG ioreqs are the ones qemu served");
    assert.equal(q.pioIoreqs, q.configIoreqs, 'one CONFIG_ADDRESS write (a port ioreq) per config access');
    assert.ok(ga.exits.io >= 2 * q.configIoreqs, `I/O exits ${ga.exits.io}`);
    assert.ok(q.rangeChanges >= 2, 'qemu claimed and released BARs as decode went on and off');
    const d0 = host.hv.domain(0)!.counters.hypercalls;
    assert.ok(d0.get('dm_op.map_io_range_to_ioreq_server')! >= 2 + q.rangeChanges / 2, 'BDF, ports and each BAR claim');
    assert.equal(q.ioreqs - q.configIoreqs - q.pioIoreqs, a.driver.stats.mmioReads + a.driver.stats.mmioWrites, 'the rest are register accesses');
  });

  it("e1000's accesses are never buffered: Xen 4.5 buffers only standard-VGA writes; every register write is a synchronous ioreq", () => {
    const { env, host } = build(['a', 'b']);
    const a = nic(host, 'a');
    const ga = host.guest('a').domain.counters;
    const q0 = a.qemu.stats.ioreqs;
    const w0 = a.driver.stats.mmioWrites + a.driver.stats.mmioReads;
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1));
    assert.equal(ga.ioreqsBuffered, 0);
    assert.equal(ga.ioreqsBufferFull, 0);
    assert.equal(a.qemu.stats.ioreqs - q0, a.driver.stats.mmioWrites + a.driver.stats.mmioReads - w0, 'each write waited for qemu-dm');
  });

  it('BAR sizing: all ones reads back the 128 KiB mask (and the 64-port I/O mask); while sized, the BAR decodes nowhere; restored, it is back', () => {
    const { env, host } = build(['a', 'b']);
    const a = nic(host, 'a');
    const { c, devfn } = conf(host, 'a');
    const bar = a.qemu.place.bar;
    assert.equal(run(env, c.read(0, devfn, PCI_BASE_ADDRESS_0, 4)), bar);
    run(env, c.write(0, devfn, PCI_BASE_ADDRESS_0, 4, 0xffffffff));
    assert.equal(run(env, c.read(0, devfn, PCI_BASE_ADDRESS_0, 4)), 0xfffe0000);
    assert.equal(a.qemu.mmioBase, null, 'a BAR ending at 4 GiB is not mapped (pci_bar_address)');
    assert.equal(mmioRead(env, host, 'a', bar + E1000_STATUS), 0xffffffffn, 'nothing decodes the old address');
    run(env, c.write(0, devfn, PCI_BASE_ADDRESS_0, 4, bar));
    assert.equal(a.qemu.mmioBase, bar);
    assert.notEqual(mmioRead(env, host, 'a', bar + E1000_STATUS), 0xffffffffn, 'STATUS reads again');
    const io = run(env, c.read(0, devfn, PCI_BASE_ADDRESS_1, 4));
    run(env, c.write(0, devfn, PCI_BASE_ADDRESS_1, 4, 0xffffffff));
    assert.equal(run(env, c.read(0, devfn, PCI_BASE_ADDRESS_1, 4)), 0xffffffc1);
    run(env, c.write(0, devfn, PCI_BASE_ADDRESS_1, 4, io));
    assert.equal(io, a.qemu.place.ioBar | 1);
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1));
  });

  it('a config access to a BDF nobody claimed reads all ones and is no PCI_CONFIG ioreq; read-only registers ignore writes; extended registers read all ones', () => {
    const { env, host } = build(['a', 'b']);
    const a = nic(host, 'a');
    const ga = host.guest('a').domain.counters;
    const { c, devfn } = conf(host, 'a');
    const before = ga.ioreqsPciConfig;
    assert.equal(run(env, c.read(0, pciDevfn(9, 0), PCI_VENDOR_ID, 4)), 0xffffffff, 'slot 9: empty');
    assert.equal(run(env, c.read(0, pciDevfn(a.qemu.place.pciDevice, 1), PCI_VENDOR_ID, 4)), 0xffffffff, 'function 1 of the NIC: empty');
    assert.equal(run(env, c.read(1, devfn, PCI_VENDOR_ID, 4)), 0xffffffff, 'bus 1: empty');
    assert.equal(ga.ioreqsPciConfig, before, 'Xen answered those itself (no server for the BDF)');
    run(env, c.write(0, devfn, PCI_VENDOR_ID, 4, 0x12345678));
    assert.equal(run(env, c.read(0, devfn, PCI_VENDOR_ID, 4)), 0x100e8086, 'vendor/device are read-only');
    // CONFIG_ADDRESS bits 27:24 name extended registers (0x100-0xfff): beyond a conventional function's 256 bytes.
    const g = host.guest('a').domain.vcpus[0]!;
    run(env, host.hv.pio(g, IOREQ_WRITE, 0xcf8, 4, BigInt((0x80000000 | 0x01000000 | (devfn << 8)) >>> 0)));
    assert.equal(run(env, host.hv.pio(g, IOREQ_READ, 0xcfc, 4)), 0xffffffffn);
    assert.equal(ga.ioreqsPciConfig, before + 3, 'the NIC function did get those as PCI_CONFIG ioreqs');
  });
});

describe('emulated NIC: a guest writing nonsense to config space', () => {
  it('memory decode off: BAR accesses read all ones, writes are dropped, nothing throws; back on, the NIC works; the other guests never notice', () => {
    const { env, host } = build();
    const c = nic(host, 'c');
    const { c: cc, devfn } = conf(host, 'c');
    const gc = host.guest('c').domain;
    const cmd = run(env, cc.read(0, devfn, PCI_COMMAND, 2));
    run(env, cc.write(0, devfn, PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY));
    assert.equal(c.qemu.mmioBase, null);
    const tdt0 = c.qemu.device.stats.mmioWrites;
    const unclaimed0 = gc.counters.ioUnclaimed;
    assert.equal(mmioRead(env, host, 'c', c.qemu.place.bar + E1000_STATUS), 0xffffffffn);
    run(env, host.hv.mmio(gc.vcpus[0]!, IOREQ_WRITE, c.qemu.place.bar + E1000_TDT, 4, 3n));
    assert.equal(c.qemu.device.stats.mmioWrites, tdt0, 'the TDT write never reached the device');
    assert.equal(gc.counters.ioUnclaimed, unclaimed0 + 2, "Xen's null handler took both");
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1), 'a ↔ b unaffected');
    assert.equal(gc.dying, false);
    run(env, cc.write(0, devfn, PCI_COMMAND, 2, cmd));
    assert.equal(c.qemu.mmioBase, c.qemu.place.bar);
    assert.ok(ping(env, host, 'c', '10.0.0.1', 2), 'c talks again once decode is back');
  });

  it("BAR 0 moved onto the vIOAPIC: Xen's own IOAPIC still answers there, the old BAR is dead, other guests unaffected; moved back, it works", () => {
    const { env, host } = build();
    const c = nic(host, 'c');
    const { c: cc, devfn } = conf(host, 'c');
    run(env, cc.write(0, devfn, PCI_BASE_ADDRESS_0, 4, VIOAPIC_DEFAULT_BASE_ADDRESS));
    assert.equal(c.qemu.mmioBase, VIOAPIC_DEFAULT_BASE_ADDRESS, 'qemu follows the guest');
    const v = host.guest('c').domain.vcpus[0]!;
    run(env, host.hv.mmio(v, IOREQ_WRITE, VIOAPIC_DEFAULT_BASE_ADDRESS, 4, 1n)); // IOREGSEL = version
    const ver = Number(run(env, host.hv.mmio(v, IOREQ_READ, VIOAPIC_DEFAULT_BASE_ADDRESS + 0x10, 4)));
    assert.equal(ver & 0xff, VIOAPIC_VERSION_ID, "hvm_mmio_intercept comes before the ioreq servers: the IOAPIC is Xen's");
    assert.equal(mmioRead(env, host, 'c', c.qemu.place.bar + E1000_STATUS), 0xffffffffn, 'the old place is dead');
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1), 'a ↔ b unaffected');
    assert.equal(mmioRead(env, host, 'a', nic(host, 'a').qemu.place.bar + E1000_STATUS) !== 0xffffffffn, true, "a's BAR is a's");
    run(env, cc.write(0, devfn, PCI_BASE_ADDRESS_0, 4, c.qemu.place.bar));
    assert.ok(ping(env, host, 'c', '10.0.0.2', 2), 'c works again');
  });

  it('INTx disabled in COMMAND: qemu holds the line low, the guest takes no interrupts and its traffic stalls; re-enabled, it flows again', () => {
    const { env, host } = build(['a', 'b']);
    const b = nic(host, 'b');
    const { c, devfn } = conf(host, 'b');
    const cmd = run(env, c.read(0, devfn, PCI_COMMAND, 2));
    run(env, c.write(0, devfn, PCI_COMMAND, 2, cmd | PCI_COMMAND_INTX_DISABLE));
    const irqs = b.driver.stats.irqs;
    assert.equal(ping(env, host, 'a', '10.0.0.2', 1), false, "b's RX is never signalled");
    assert.equal(b.driver.stats.irqs, irqs);
    assert.ok(b.qemu.device.stats.rxFrames > 0, 'the frame did land in b’s ring');
    run(env, c.write(0, devfn, PCI_COMMAND, 2, cmd));
    env.run({ until: env.now + 1 * MS });
    assert.ok(b.driver.stats.irqs > irqs, 'the pending cause raises the line once INTx is enabled');
    assert.ok(ping(env, host, 'a', '10.0.0.2', 2));
  });
});

describe('emulated NIC: hot-unplug (EmulatedNic.detach)', () => {
  /** The guest's page references that are not qemu's map cache (Dom0's grant map of its XenStore ring). */
  const otherRefs = (host: Host, g: string): number => host.guest(g).domain.pageRefs - nic(host, g).qemu.mapCache.mappedFrames;

  function checkGone(env: SimEnvironment, host: Host, g: string, n: EmulatedNic, refsBefore: number): void {
    const d = host.guest(g).domain;
    const domid = d.domid;
    assert.equal(n.qemu.mapCache.liveMappings, 0, "the map cache holds no mapping of the guest's frames");
    assert.equal(d.pageRefs, refsBefore, 'no foreign mapping of the guest left in Dom0: only the references that are not qemu’s');
    assert.equal(host.dom0.network.bridge('xenbr0').port(`tap${domid}.0`), undefined, 'the tap is off the bridge');
    // The ioreq server is gone: BAR and config space are Xen's null handler's.
    const ioreqs = d.counters.ioreqs;
    const unclaimed = d.counters.ioUnclaimed;
    assert.equal(mmioRead(env, host, g, n.qemu.place.bar + E1000_STATUS), 0xffffffffn, 'the old BAR reads all ones');
    run(env, host.hv.mmio(d.vcpus[0]!, IOREQ_WRITE, n.qemu.place.bar + E1000_TDT, 4, 1n));
    const { c, devfn } = conf(host, g);
    assert.equal(run(env, c.read(0, devfn, PCI_VENDOR_ID, 4)), 0xffffffff, 'the slot is empty');
    assert.equal(d.counters.ioreqs, ioreqs, 'no ioreq: no server');
    assert.equal(d.counters.ioUnclaimed, unclaimed + 4, 'read, write, CONFIG_ADDRESS, CONFIG_DATA all to the null handler');
  }

  it('idle: server destroyed, map cache released, tap gone; later accesses get all ones; the others go on', () => {
    const { env, host } = build();
    const a = nic(host, 'a');
    assert.ok(ping(env, host, 'a', '10.0.0.2', 1));
    assert.ok(a.qemu.mapCache.mappedFrames >= 256, 'qemu had the guest mapped (1 MiB buckets)');
    const refs = otherRefs(host, 'a');
    run(env, a.detach());
    checkGone(env, host, 'a', a, refs);
    assert.ok(ping(env, host, 'b', '10.0.0.3', 2), 'b ↔ c unaffected');
    assert.equal(ping(env, host, 'b', '10.0.0.1', 3), false, 'a is gone from the network');
  });

  it('mid-traffic: a udp_stream from a to b is cut; nothing throws; the same checks hold; b ↔ c go on', () => {
    const { env, host } = build();
    const a = nic(host, 'a');
    const ends = { client: host.guest('a').stack, server: host.guest('b').stack, serverAddr: ipv4('10.0.0.2'), port: 13010 };
    const us = udpStream(env, ends, { messageSize: 1472, timing: { warmup: 1 * MS, duration: 4 * MS } });
    env.run({ until: env.now + 2 * MS });
    const sent = a.qemu.stats.framesToTap;
    assert.ok(sent > 10, `frames on their way when unplugged: ${sent}`);
    const refs = otherRefs(host, 'a');
    const det = env.process(a.detach());
    env.run({ until: us });
    env.run({ until: det });
    assert.ok(det.ok, `detach failed: ${String(det.error)}`);
    assert.ok(us.ok, `udp_stream failed: ${String(us.error)}`);
    assert.equal(us.value.reordered, 0);
    assert.ok(us.value.receivedMessages > 0 && us.value.lostMessages > 0, `received ${us.value.receivedMessages}, lost ${us.value.lostMessages}`);
    checkGone(env, host, 'a', a, refs);
    assert.ok(ping(env, host, 'b', '10.0.0.3', 4), 'b ↔ c unaffected');
    assert.ok(ping(env, host, 'c', '10.0.0.2', 5));
  });
});
