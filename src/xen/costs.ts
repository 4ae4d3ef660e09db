import type { Profile } from '../profile/index.js';
import type { ExitReason } from './counters.js';

/** The hypervisor's costs, read once from the cost profile (ns; per byte in ns/B). */
export interface XenCosts {
  /** HVM exit by reason (the EOI exit is a whole round trip: `eoi`). */
  exit: Record<Exclude<ExitReason, 'eoi'>, number>;
  vmentry: number;
  eoi: number;
  injectIrq: number;
  /** Xen taking a passed-through device's MSI on a pCPU up to the vLAPIC set (xen.irq.passthrough). */
  ptIrq: number;
  mmioDecode: number;
  pioDecode: number;
  pvTrap: number;
  pvEventCallback: number;
  ipiLatency: number;
  ipiCallFunction: number;
  simpleOp: number;
  evtchnSend: number;
  /** EVTCHNOP_send to a domain on the FIFO ABI (xen.evtchn.sendFifo). */
  evtchnSendFifo: number;
  copyOp: number;
  copyClaim: number;
  copyPerByte: number;
  mapOp: number;
  unmapOp: number;
  tlbFlush: number;
  ioreqComplete: number;
  guestUpcall: number;
  guestUpcallPort: number;
  guestFifoUpcall: number;
  guestFifoConsume: number;
}

export function xenCosts(p: Profile): XenCosts {
  const other = p.ns('xen.hvm.exit.other');
  return {
    exit: {
      vmcall: p.ns('xen.hvm.exit.vmcall'),
      io: p.ns('xen.hvm.exit.io'),
      ept: p.ns('xen.hvm.exit.ept'),
      extint: other,
      intwin: other,
      hlt: p.ns('xen.hvm.exit.hlt'),
    },
    vmentry: p.ns('xen.hvm.vmentry'),
    eoi: p.ns('xen.hvm.eoi'),
    injectIrq: p.ns('xen.hvm.injectIrq'),
    ptIrq: p.ns('xen.irq.passthrough'),
    mmioDecode: p.ns('xen.hvm.mmioDecode'),
    pioDecode: p.ns('xen.hvm.pioDecode'),
    pvTrap: p.ns('xen.pv.trap'),
    pvEventCallback: p.ns('xen.pv.eventCallback'),
    ipiLatency: p.ns('xen.ipi.latency'),
    ipiCallFunction: p.ns('xen.ipi.callFunction'),
    simpleOp: p.ns('xen.hypercall.simpleOp'),
    evtchnSend: p.ns('xen.evtchn.send'),
    evtchnSendFifo: p.ns('xen.evtchn.sendFifo'),
    copyOp: p.ns('xen.gnttab.copyOp'),
    copyClaim: p.ns('xen.gnttab.copyClaim'),
    copyPerByte: p.nsPerByte('xen.gnttab.copyPerByte'),
    mapOp: p.ns('xen.gnttab.mapOp'),
    unmapOp: p.ns('xen.gnttab.unmapOp'),
    tlbFlush: p.ns('xen.gnttab.tlbFlush'),
    ioreqComplete: p.ns('xen.ioreq.complete'),
    guestUpcall: p.ns('guest.xen.upcall'),
    guestUpcallPort: p.ns('guest.xen.upcallPort'),
    guestFifoUpcall: p.ns('guest.xen.fifoUpcall'),
    guestFifoConsume: p.ns('guest.xen.fifoConsume'),
  };
}
