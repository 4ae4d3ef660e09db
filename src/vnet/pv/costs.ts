import type { Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';

/** What the PV path's drivers cost, from the profile (`pv.*`, see src/profile/entries.ts). */
export interface PvCosts {
  frontTxPacket: Time;
  frontTxSlot: Time;
  frontTxResponse: Time;
  frontRxPacket: Time;
  frontRxSlot: Time;
  backTxPacket: Time;
  backTxSlot: Time;
  backRxPacket: Time;
  backRxSlot: Time;
  /** gnttab_retry_eagain_gop's sleep unit. */
  eagainStep: Time;
}

export function pvCosts(p: Profile): PvCosts {
  return {
    frontTxPacket: p.ns('pv.netfront.txPacket'),
    frontTxSlot: p.ns('pv.netfront.txSlot'),
    frontTxResponse: p.ns('pv.netfront.txResponse'),
    frontRxPacket: p.ns('pv.netfront.rxPacket'),
    frontRxSlot: p.ns('pv.netfront.rxSlot'),
    backTxPacket: p.ns('pv.netback.txPacket'),
    backTxSlot: p.ns('pv.netback.txSlot'),
    backRxPacket: p.ns('pv.netback.rxPacket'),
    backRxSlot: p.ns('pv.netback.rxSlot'),
    eagainStep: p.ns('guest.gnttab.eagainRetryStep'),
  };
}
