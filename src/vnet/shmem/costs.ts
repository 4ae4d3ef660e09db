import type { Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';

/** What the shmem baseline's data plane costs and waits, from the profile (`shmem.*`, `guest.memcpy`; see src/profile/entries.ts). */
export interface ShmemCosts {
  txPacket: Time;
  rxPacket: Time;
  /** A guest memcpy, ns per byte (the sender's copy into the FIFO, the receiver's copy out). */
  memcpyPerByte: number;
  /** Software GSO per segment, and the per-packet output work per extra IP fragment (frames too big for the FIFO). */
  gsoSegment: Time;
  txFragment: Time;
  csumPerByte: number;
  /** The switch fence's retry and the silent-channel watchdog: the same bounds as hv2m's (one teardown protocol). */
  fenceRetry: Time;
  watchdog: Time;
}

export function shmemCosts(p: Profile): ShmemCosts {
  return {
    txPacket: p.ns('shmem.tx.packet'),
    rxPacket: p.ns('shmem.rx.packet'),
    memcpyPerByte: p.nsPerByte('guest.memcpy'),
    gsoSegment: p.ns('net.tx.gsoSegment'),
    txFragment: p.ns('net.tx.packet'),
    csumPerByte: p.nsPerByte('net.csum'),
    fenceRetry: p.ns('hv2m.fenceRetry'),
    watchdog: p.ns('hv2m.watchdog'),
  };
}
