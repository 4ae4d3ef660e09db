import type { Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';

/** What the emulated path's pieces cost, from the profile (`emulated.*`, see src/profile/entries.ts). */
export interface EmulatedCosts {
  qemuWakeup: Time;
  qemuMmioAccess: Time;
  qemuConfigAccess: Time;
  qemuTxDesc: Time;
  qemuRxDesc: Time;
  qemuFrame: Time;
  /** ns per byte. */
  qemuDmaCopy: number;
  qemuIrqOp: Time;
  qemuMapcacheMiss: Time;
  tapWrite: Time;
  tapRead: Time;
  driverXmitFrame: Time;
  driverCleanTx: Time;
  driverCleanRx: Time;
  /** The guest stack's per-interrupt cost (net.irq): the e1000 ISR's native part. */
  driverIrq: Time;
}

export function emulatedCosts(p: Profile): EmulatedCosts {
  return {
    qemuWakeup: p.ns('emulated.qemu.wakeup'),
    qemuMmioAccess: p.ns('emulated.qemu.mmioAccess'),
    qemuConfigAccess: p.ns('emulated.qemu.configAccess'),
    qemuTxDesc: p.ns('emulated.qemu.txDesc'),
    qemuRxDesc: p.ns('emulated.qemu.rxDesc'),
    qemuFrame: p.ns('emulated.qemu.frame'),
    qemuDmaCopy: p.nsPerByte('emulated.qemu.dmaCopy'),
    qemuIrqOp: p.ns('emulated.qemu.irqOp'),
    qemuMapcacheMiss: p.ns('emulated.qemu.mapcacheMiss'),
    tapWrite: p.ns('emulated.tap.write'),
    tapRead: p.ns('emulated.tap.read'),
    driverXmitFrame: p.ns('emulated.e1000.xmitFrame'),
    driverCleanTx: p.ns('emulated.e1000.cleanTx'),
    driverCleanRx: p.ns('emulated.e1000.cleanRx'),
    driverIrq: p.ns('net.irq'),
  };
}
