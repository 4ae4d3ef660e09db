import type { ProcessGenerator } from '../../sim/index.js';
import { PAGE_SIZE } from '../../xen/abi/index.js';
import type { AttachedNic, IoPath, NicSpec, PathHost, PathKernel } from '../path.js';
import { PeerNic, attachPeerNic } from '../hv2m/index.js';
import { shmemCosts } from './costs.js';
import { FIFO_MAX_PAGES } from './fifo.js';
import { ShmemModule } from './module.js';
import type { ShmemChannel, ShmemStats } from './shmem-channel.js';

/** Options of a `shmem` NIC (NicSpec.options). */
export interface ShmemOptions {
  /** Bytes of each FIFO (default 65536, XenLoop's; a power of two from 4096 to 1 MiB). */
  fifoBytes: number;
  /** Frames a per-peer queue holds (default 256). */
  queueLen: number;
  /** Options of the ordinary pv NIC beneath. */
  pv: Record<string, unknown>;
}

const DEFAULTS: Omit<ShmemOptions, 'pv'> = { fifoBytes: 65536, queueLen: 256 };

/** A shmem NIC's options checked: unknown keys and values out of range are errors naming them. */
export function parseShmemOptions(o: Readonly<Record<string, unknown>>, where: string): ShmemOptions {
  const errs: string[] = [];
  const out: ShmemOptions = { ...DEFAULTS, pv: {} };
  for (const [k, v] of Object.entries(o)) {
    if (k === 'fifoBytes') {
      const ok = typeof v === 'number' && Number.isInteger(v) && v >= PAGE_SIZE && v <= FIFO_MAX_PAGES * PAGE_SIZE && (v & (v - 1)) === 0;
      if (!ok) errs.push(`fifoBytes: expected a power of two from ${PAGE_SIZE} to ${FIFO_MAX_PAGES * PAGE_SIZE}, got ${JSON.stringify(v)}`);
      else out.fifoBytes = v;
    } else if (k === 'queueLen') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 100_000)
        errs.push(`queueLen: expected an integer from 1 to 100000, got ${JSON.stringify(v)}`);
      else out.queueLen = v;
    } else if (k === 'pv') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        errs.push(`pv: expected the options of the pv NIC beneath (an object), got ${JSON.stringify(v)}`);
      else out.pv = v as Record<string, unknown>;
    } else errs.push(`${k}: not an option of the shmem path (fifoBytes, queueLen, pv)`);
  }
  if (errs.length > 0) throw new Error(`${where}: invalid shmem options:\n${errs.map((e) => `  - ${e}`).join('\n')}`);
  return out;
}

/** One attached shmem NIC. */
export class ShmemNic extends PeerNic<ShmemChannel, ShmemStats> {
  declare readonly module: ShmemModule;
}

/**
 * The XenLoop-style shared-memory baseline (DESIGN.md path 4): the guest's ordinary NIC is a
 * pv NIC (the fallback), and the shmem module on its stack finds co-resident peers through
 * the same hv2m-discoveryd table and policy, diverts at the same post-routing hook, and moves
 * each frame through a FIFO in pages the receiver granted and the sender mapped: a memcpy in,
 * by the sender on its vCPU, and a memcpy out into a fresh packet, by the receiver on its own.
 * Diverted flows keep netfront's shape (64 KiB TSO, checksum offload), as with hv2m; a frame
 * bigger than the FIFO is cut in software first.
 */
export class ShmemPath implements IoPath {
  readonly name = 'shmem';
  readonly description =
    'XenLoop-style shared memory: a pv NIC plus guest-to-guest FIFOs in granted and mapped pages; the sender copies each frame in, the receiver copies it out (two guest memcpys), no Dom0';

  *attach(host: PathHost, guest: PathKernel, nic: NicSpec, devid: number): ProcessGenerator<AttachedNic> {
    const where = `${guest.domain.name}: vif ${devid}`;
    const opts = parseShmemOptions(nic.options, where);
    return yield* attachPeerNic(
      host,
      guest,
      nic,
      devid,
      where,
      opts.pv,
      'shmem',
      (link) =>
        new ShmemModule(host.env, guest.kernel, guest.xenbus, guest.domain.vcpus[0]!, link, shmemCosts(host.profile), {
          fifoPages: opts.fifoBytes / PAGE_SIZE,
          queueLen: opts.queueLen,
          eagainStep: host.profile.ns('guest.gnttab.eagainRetryStep'),
        }),
      (pv, device, module, unhook) => new ShmemNic(pv, device, module, unhook, host.env, host.profile.ns('hv2m.watchdog'), 'shmem'),
    );
  }
}
