/**
 * Event-channel notification latency across domains, measured from the mechanisms: a guest
 * (HVM) signals Dom0 over an event channel and Dom0's handler runs ("I/O latency out"), and
 * Dom0 signals the guest ("I/O latency in"), each receiver blocked on its own idle pCPU —
 * the set-up of Dall et al.'s Xen x86 microbenchmark (ISCA 2016, as Table 8.2 of Bugnion,
 * Nieh, Tsafrir): 11262 and 10050 cycles on a Xeon E5-2450 at 2.1 GHz. The model's figure
 * is whatever the component costs add up to through the real path (hypercall, send handler,
 * IPI, idle wake, injection, guest upcall); nothing here is fitted to Dall's numbers.
 */
import { US, SimEnvironment, type ProcessGenerator, type SimEvent } from '../sim/index.js';
import type { Profile } from '../profile/index.js';
import { Hypervisor, type Vcpu } from '../xen/index.js';
import { XenGuest } from '../xen/guest/index.js';

/** Dall et al.'s figures, cycles at 2.1 GHz (calibration.md §1.2). */
export const DALL_OUT_CYCLES = 11262;
export const DALL_IN_CYCLES = 10050;
export const DALL_CLOCK_GHZ = 2.1;

export interface Leg {
  /** Measured: from the sender's send hypercall to the receiver's handler, ns. */
  ns: number;
  /** The same in cycles of the profile's clock. */
  cycles: number;
  /** What the path is made of (ns), from the profile, in path order. */
  parts: [string, number][];
}

export interface NotifyLatency {
  out: Leg;
  in: Leg;
}

/** Runs the two measurements on a 2-pCPU host (Dom0 on pCPU 0, the guest on pCPU 1). */
export function measureNotifyLatency(profile: Profile): NotifyLatency {
  const env = new SimEnvironment({ seed: 1 });
  const hv = new Hypervisor(env, profile, { pcpus: 2 });
  const dom0 = new XenGuest(hv, hv.createDomain({ name: 'Domain-0', kind: 'dom0', vcpus: 1, pinning: [0] }));
  const guest = new XenGuest(hv, hv.createDomain({ name: 'guest', kind: 'hvm', vcpus: 1, pinning: [1], memoryMiB: 256 }));
  const dv = dom0.domain.vcpus[0]!;
  const gv = guest.domain.vcpus[0]!;
  const run = <T>(body: Generator<SimEvent<unknown>, T, unknown>): T => {
    const p = env.process(body);
    env.run({ until: p });
    return p.value;
  };
  run(dom0.init(dv));
  run(guest.init(gv));
  let received = -1;
  const mark = (): void => {
    received = env.now;
  };
  const portG = run(guest.evtchn.allocUnbound(gv, 0));
  const portD = run(dom0.evtchn.bindInterdomain(dv, guest.domid, portG, mark));
  run(guest.evtchn.bindHandler(gv, portG, mark));

  /** One signal from `v` on `port`, sent while v runs and the receiver is blocked; latency in ns. */
  const once = (sender: XenGuest, v: Vcpu, port: number): number => {
    env.run({ until: env.now + 1000 * US }); // both vCPUs block, both pCPUs idle
    let sent = -1;
    run(
      (function* (): ProcessGenerator<void> {
        yield v.exec(1 * US, 'kernel'); // the driver is running when it signals
        sent = env.now;
        yield* sender.evtchn.notify(v, port);
      })(),
    );
    env.run({ until: env.now + 1000 * US });
    return received - sent;
  };
  // Warm up once each way (lazy context switch: each pCPU then holds its vCPU's state), then measure.
  once(guest, gv, portG);
  once(dom0, dv, portD);
  const outNs = once(guest, gv, portG);
  const inNs = once(dom0, dv, portD);

  const c = hv.costs;
  const idle = profile.ns('xen.pcpu.idleWake');
  const decide = profile.ns('xen.sched.schedule');
  const fromIdle = profile.ns('xen.sched.idleSwitch');
  const cycles = (ns: number): number => Math.round(ns * profile.clockGHz);
  // The receiver's ABI decides Xen's set_pending and the guest's upcall work (FIFO: the READY
  // xchg and one consume_one_event instead of the 2-level scan).
  const send = (to: XenGuest): [string, number] =>
    to.evtchn.abi === 'fifo' ? ['EVTCHNOP_send handler (FIFO)', c.evtchnSendFifo] : ['EVTCHNOP_send handler', c.evtchnSend];
  const upcall = (to: XenGuest, who: string): [string, number][] =>
    to.evtchn.abi === 'fifo'
      ? [
          [`${who} upcall entry + READY (FIFO)`, c.guestFifoUpcall],
          ['consume_one_event (FIFO)', c.guestFifoConsume],
        ]
      : [[`${who} upcall entry + scan`, c.guestUpcall]];
  return {
    out: {
      ns: outNs,
      cycles: cycles(outNs),
      parts: [
        ['guest VMCALL exit', c.exit.vmcall],
        send(dom0),
        ['IPI to the idle pCPU', c.ipiLatency],
        ['idle pCPU wakes (C1 exit)', idle],
        ['schedule() + csched_schedule', decide],
        ['switch from idle (state loaded)', fromIdle],
        ['Dom0 (PV) event callback entry', c.pvEventCallback],
        ...upcall(dom0, 'Dom0'),
        ['port dispatch', c.guestUpcallPort],
      ],
    },
    in: {
      ns: inNs,
      cycles: cycles(inNs),
      parts: [
        ['Dom0 (PV) hypercall trap', c.pvTrap],
        send(guest),
        ['IPI to the idle pCPU', c.ipiLatency],
        ['idle pCPU wakes (C1 exit)', idle],
        ['schedule() + csched_schedule', decide],
        ['switch from idle (state loaded)', fromIdle],
        ['callback-vector injection', c.injectIrq],
        ['VM entry', c.vmentry],
        ...upcall(guest, 'guest'),
        ['port dispatch', c.guestUpcallPort],
      ],
    },
  };
}

/** A printable comparison with Dall et al.'s figures. */
export function formatNotifyLatency(r: NotifyLatency, clockGHz: number): string {
  const lines: string[] = [];
  const leg = (name: string, l: Leg, dallCycles: number): void => {
    const dallNs = dallCycles / DALL_CLOCK_GHZ;
    lines.push(
      `${name}: model ${(l.ns / 1000).toFixed(2)} us (${l.cycles} cycles at ${clockGHz} GHz) vs Dall et al. ${(dallNs / 1000).toFixed(2)} us (${dallCycles} cycles): ${((100 * l.ns) / dallNs).toFixed(0)}%`,
    );
    for (const [what, ns] of l.parts) lines.push(`    ${what.padEnd(34)} ${String(ns).padStart(6)} ns`);
    const sum = l.parts.reduce((s, [, ns]) => s + ns, 0);
    lines.push(`    ${'sum of parts'.padEnd(34)} ${String(sum).padStart(6)} ns`);
  };
  leg('I/O latency out (guest -> Dom0 handler)', r.out, DALL_OUT_CYCLES);
  leg('I/O latency in  (Dom0 -> guest handler)', r.in, DALL_IN_CYCLES);
  return lines.join('\n');
}
