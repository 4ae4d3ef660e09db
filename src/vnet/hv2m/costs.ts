import type { Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';

/** What HV²M's data plane costs and waits, from the profile (`hv2m.*`, see src/profile/entries.ts). */
export interface Hv2mCosts {
  txPacket: Time;
  txSlot: Time;
  rxPacket: Time;
  rxSlot: Time;
  fenceRetry: Time;
  watchdog: Time;
  /** gnttab_retry_eagain_gop's sleep unit. */
  eagainStep: Time;
}

export function hv2mCosts(p: Profile): Hv2mCosts {
  return {
    txPacket: p.ns('hv2m.tx.packet'),
    txSlot: p.ns('hv2m.tx.slot'),
    rxPacket: p.ns('hv2m.rx.packet'),
    rxSlot: p.ns('hv2m.rx.slot'),
    fenceRetry: p.ns('hv2m.fenceRetry'),
    watchdog: p.ns('hv2m.watchdog'),
    eagainStep: p.ns('guest.gnttab.eagainRetryStep'),
  };
}
