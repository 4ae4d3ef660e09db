import { ProfileError, type Profile } from '../../profile/index.js';

/**
 * The Linux release of the host's kernels (the profile's `linux.version`), turned into one
 * named rule per piece of their Xen support that changed between releases. Guest-kernel code
 * asks these rules, never the version number.
 */
export interface LinuxRelease {
  /** As written in the profile, e.g. "3.18.0". */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  /**
   * xen_init_IRQ tries the FIFO event-channel ABI first (xen_evtchn_fifo_init: EVTCHNOP_init_control
   * for the boot vCPU) and falls back to the 2-level ABI when Xen refuses it (-ENOSYS before
   * Xen 4.4). 3.14+: D. Vrabel, "xen/events: use the FIFO-based ABI if available"
   * (drivers/xen/events/events_fifo.c); before, and in the linux-2.6.18-xen tree, 2-level only.
   */
  readonly fifoEvents: boolean;
}

/** The rules of the Linux release `version` names; one that is not a release number is a profile error. */
export function linuxRelease(version: string, origin = 'profile'): LinuxRelease {
  const m = /^(\d+)\.(\d+)(?:\.\d+){0,2}$/.exec(version);
  if (m === null) throw new ProfileError(origin, [`field "linux.version": "${version}" is not a Linux release number (expected e.g. "3.18.0")`]);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < 2 || (major === 2 && minor < 6)) {
    throw new ProfileError(origin, [`field "linux.version": Linux ${version} has no Xen support the model knows (expected 2.6 or later)`]);
  }
  const since = (ma: number, mi: number): boolean => major > ma || (major === ma && minor >= mi);
  return { version, major, minor, fifoEvents: since(3, 14) };
}

/** The rules of the Linux release a profile names. */
export function linuxOf(profile: Profile): LinuxRelease {
  return linuxRelease(profile.linuxVersion, profile.origin);
}
