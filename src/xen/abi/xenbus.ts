/**
 * XenBus device states (xen/include/public/io/xenbus.h, enum xenbus_state), with Linux's
 * names for them (xenbus_strstate). shared/reference/xen-abi.md §2.3. No behaviour here.
 */

export const XenbusStateUnknown = 0;
export const XenbusStateInitialising = 1;
/** Finished early initialisation, waiting for information from the peer or hotplug scripts. */
export const XenbusStateInitWait = 2;
/** Waiting for a connection from the peer. */
export const XenbusStateInitialised = 3;
export const XenbusStateConnected = 4;
/** The device is being closed due to an error or an unplug event. */
export const XenbusStateClosing = 5;
export const XenbusStateClosed = 6;
export const XenbusStateReconfiguring = 7;
export const XenbusStateReconfigured = 8;

export type XenbusState = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

const NAMES = ['Unknown', 'Initialising', 'InitWait', 'Initialised', 'Connected', 'Closing', 'Closed', 'Reconfiguring', 'Reconfigured'] as const;

/** xenbus_strstate: the state's name, or "INVALID". */
export function xenbusStrstate(state: number): string {
  return Number.isInteger(state) && state >= 0 && state < NAMES.length ? NAMES[state]! : 'INVALID';
}

export function isXenbusState(n: number): n is XenbusState {
  return Number.isInteger(n) && n >= 0 && n < NAMES.length;
}
