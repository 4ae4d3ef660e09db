import type { ProcessGenerator, Resource, SimEvent } from '../../sim/index.js';
import { XSD_ERRORS, type XsErrorName } from '../abi/xs-wire.js';
import { XenbusStateClosing, XenbusStateInitialising, XenbusStateUnknown, type XenbusState } from '../abi/xenbus.js';
import type { XenbusClient } from './xenbus.js';

/**
 * A xenbus device as a Linux driver holds it (struct xenbus_device): its own directory, the
 * peer's directory and domain, and the state it last wrote. The helpers below are Linux's
 * drivers/xen/xenbus/xenbus_client.c and xenbus_probe.c (v6.x; the same since 3.x for what
 * is modelled), on the guest's XenbusClient: every access is a real request to xenstored.
 *
 * `nodename` is as Linux has it: relative to the domain's home (`device/vif/0` for a
 * frontend, `backend/vif/<domU>/<devid>` for a backend); an absolute path under this
 * domain's home is accepted too. `otherend` is the peer's directory (absolute).
 */
export class XenbusDevice {
  /** dev->state: what this driver last wrote to `<nodename>/state` (xenbus_probe_node starts it at Initialising). */
  state: XenbusState = XenbusStateInitialising;
  /** The registered other-end watch, if any. */
  otherendWatch: { path: string; token: string } | null = null;
  /**
   * Devices whose driver changes many of them at once (a module with a channel per peer) may
   * share one lock: their state transactions then run one at a time, as they would from one
   * single-threaded workqueue. Without it, 31 channels switching state together open 31
   * transactions, and xenstored allows a domain 10 + 1 (quota ACC_TRANS: ENOSPC beyond).
   */
  stateLock: Resource | null = null;

  constructor(
    readonly xb: XenbusClient,
    readonly domid: number,
    readonly nodename: string,
    readonly otherend: string,
    readonly otherendId: number,
  ) {}

  /** `nodename` relative to the domain's home, as xenbus_va_dev_error uses it in `error/<nodename>`. */
  get relativeNodename(): string {
    const home = `/local/domain/${this.domid}/`;
    if (this.nodename.startsWith(home)) return this.nodename.slice(home.length);
    return this.nodename.replace(/^\/+/, '');
  }

  /** Where xenbus_dev_error writes: `error/<nodename>/error` under the domain's home. */
  get errorPath(): string {
    return `error/${this.relativeNodename}/error`;
  }
}

/** The errno (negative) of a XenStore error name, as xenbus_xs.c's get_error maps it. */
export function xsErrno(name: XsErrorName): number {
  return -(XSD_ERRORS.find((e) => e.name === name)?.errno ?? 22);
}

/** sscanf "%d" of a XenStore value: optional spaces and sign, then digits; null if none. */
function scanInt(s: string): number | null {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m === null ? null : Number.parseInt(m[1]!, 10);
}

/**
 * xenbus_switch_state: unless `state` is what this driver last wrote (dev->state), in one
 * transaction read `<nodename>/state` (gone: abort without writing, so a torn-down directory
 * is not resurrected) and write the new state; EAGAIN at commit retries. Failures are
 * reported as xenbus_switch_fatal does (error node, then Closing, without recursing).
 * dev->state is updated whenever the transaction ends without error, as Linux does.
 * Returns 0, or the negative errno of the step that failed (Linux returns 0 regardless).
 */
export function* xenbusSwitchState(dev: XenbusDevice, state: XenbusState): Generator<SimEvent<unknown>, number, unknown> {
  return yield* switchState(dev, state, 0);
}

function* switchState(dev: XenbusDevice, state: XenbusState, depth: number): Generator<SimEvent<unknown>, number, unknown> {
  if (state === dev.state) return 0;
  if (dev.stateLock === null || depth > 0) return yield* switchStateNow(dev, state, depth);
  const held = dev.stateLock.request();
  try {
    yield held;
    return yield* switchStateNow(dev, state, depth);
  } finally {
    held.release();
  }
}

function* switchStateNow(dev: XenbusDevice, state: XenbusState, depth: number): Generator<SimEvent<unknown>, number, unknown> {
  if (state === dev.state) return 0;
  const xb = dev.xb;
  for (;;) {
    let abort = true;
    let failed = 0;
    const t = yield* xb.transactionStart();
    if (!t.ok) {
      yield* switchFatal(dev, depth, xsErrno(t.error), 'starting transaction');
      return xsErrno(t.error);
    }
    const cur = yield* xb.readText(`${dev.nodename}/state`, t.value);
    if (cur.ok && scanInt(cur.value) !== null) {
      const w = yield* xb.write(`${dev.nodename}/state`, String(state), t.value);
      if (!w.ok) {
        failed = xsErrno(w.error);
        yield* switchFatal(dev, depth, failed, 'writing new state');
      } else {
        abort = false;
      }
    }
    const end = yield* xb.transactionEnd(t.value, !abort);
    if (!end.ok) {
      if (end.error === 'EAGAIN' && !abort) continue;
      yield* switchFatal(dev, depth, xsErrno(end.error), 'ending transaction');
      return xsErrno(end.error);
    }
    dev.state = state;
    return failed;
  }
}

function* switchFatal(dev: XenbusDevice, depth: number, err: number, message: string): Generator<SimEvent<unknown>, void, unknown> {
  yield* xenbusDevError(dev, err, message);
  if (depth === 0) yield* switchState(dev, XenbusStateClosing, 1);
}

/**
 * xenbus_dev_error: writes "<-err> <message>" to `error/<nodename>/error` (outside any
 * transaction; a failed write is ignored, as Linux ignores it). `err` is a negative errno
 * or a GNTST status, as the Linux callers pass them.
 */
export function* xenbusDevError(dev: XenbusDevice, err: number, message: string): Generator<SimEvent<unknown>, void, unknown> {
  yield* dev.xb.write(dev.errorPath, `${-err} ${message}`);
}

/** xenbus_dev_fatal: xenbus_dev_error, then xenbus_switch_state(Closing) for an orderly close-down with the peer. */
export function* xenbusDevFatal(dev: XenbusDevice, err: number, message: string): Generator<SimEvent<unknown>, void, unknown> {
  yield* xenbusDevError(dev, err, message);
  yield* xenbusSwitchState(dev, XenbusStateClosing);
}

/** xenbus_read_driver_state: `<path>/state` as a number, or Unknown if it cannot be read or parsed. */
export function* xenbusReadDriverState(xb: XenbusClient, path: string): Generator<SimEvent<unknown>, number, unknown> {
  const r = yield* xb.readText(`${path}/state`);
  if (!r.ok) return XenbusStateUnknown;
  return scanInt(r.value) ?? XenbusStateUnknown;
}

/**
 * A driver's otherend_changed: the peer's state as read after a watch fired (any number the
 * peer wrote, not only a valid XenbusState; Unknown if unreadable). Runs in xenwatch.
 */
export type OtherendChanged = (state: number, path: string) => ProcessGenerator<void> | void;

/**
 * watch_otherend (xenbus_watch_pathfmt on `<otherend>/state` + otherend_changed): every
 * time the watch fires — once at registration, then on each write or removal — the peer's
 * state is read and passed to `changed`, as Linux calls the driver on every firing (repeats
 * included; drivers compare with what they saw). Events for paths outside `otherend` are
 * ignored. Returns 0, or the negative errno after reporting xenbus_dev_fatal("adding watch
 * on <path>").
 */
export function* xenbusWatchOtherend(dev: XenbusDevice, changed: OtherendChanged): Generator<SimEvent<unknown>, number, unknown> {
  const path = `${dev.otherend}/state`;
  const token = `otherend:${dev.nodename}`;
  const xb = dev.xb;
  const r = yield* xb.watch(path, token, function* (firedPath) {
    if (!firedPath.startsWith(dev.otherend)) return;
    const state = yield* xenbusReadDriverState(xb, dev.otherend);
    const more = changed(state, firedPath);
    if (more !== undefined) yield* more;
  });
  if (!r.ok) {
    yield* xenbusDevFatal(dev, xsErrno(r.error), `adding watch on ${path}`);
    return xsErrno(r.error);
  }
  dev.otherendWatch = { path, token };
  return 0;
}

/** unregister_xenbus_watch of the other-end watch (device removal); 0 or the negative errno. */
export function* xenbusUnwatchOtherend(dev: XenbusDevice): Generator<SimEvent<unknown>, number, unknown> {
  const w = dev.otherendWatch;
  if (w === null) return 0;
  const r = yield* dev.xb.unwatch(w.path, w.token);
  if (!r.ok) return xsErrno(r.error);
  dev.otherendWatch = null;
  return 0;
}
