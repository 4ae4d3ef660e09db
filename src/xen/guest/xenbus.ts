import { Resource, type Env, type ProcessGenerator, type SimEvent, type Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import { __HYPERVISOR_hvm_op, DOMID_SELF, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN, HVMOP_get_param } from '../abi/index.js';
import {
  XS_DIRECTORY,
  XS_ERROR,
  XS_GET_PERMS,
  XS_MKDIR,
  XS_READ,
  XS_RM,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_UNWATCH,
  XS_WATCH,
  XS_WATCH_EVENT,
  XS_WRITE,
  type XsErrorName,
} from '../abi/xs-wire.js';
import { xenstoreRings, type XsByteRing } from '../xenstore/ring.js';
import { fail, ok, type XsResult } from '../xenstore/result.js';
import { XsReassembler, encodeMessage, latin1ToBytes, nulTerminated, payloadStrings, bytesToLatin1, type XsMessage } from '../xenstore/wire.js';
import type { Vcpu } from '../vcpu.js';
import type { XenGuest } from './xen-guest.js';

/** Where a domain's xenstore ring is: HVM params STORE_PFN/STORE_EVTCHN, or a PV start_info. */
export interface StoreLocation {
  gfn: number;
  port: number;
}

export type WatchCallback = (path: string, token: string) => ProcessGenerator<void> | void;

/**
 * A guest kernel's xenbus (Linux drivers/xen/xenbus: xenbus_comms.c, xenbus_xs.c): XenStore
 * requests written into the request ring of the domain's xenstore page, one at a time (the
 * request mutex of xs_talkv), with a notification on its event channel; replies and watch
 * events read from the response ring by the xenbus thread, which notifies xenstored that ring
 * space was freed; watch callbacks run in the xenwatch thread. All of it is guest kernel work
 * charged to the vCPU doing it. Requests return Xen's error names as values, never throw.
 */
export class XenbusClient {
  private readonly req: XsByteRing;
  private readonly rsp: XsByteRing;
  private readonly reasm = new XsReassembler();
  private readonly mutex: Resource;
  private reply: SimEvent<XsMessage> | null = null;
  private ringEvent: SimEvent<unknown> | null = null;
  private readonly watchQueue: { path: string; token: string }[] = [];
  private watchWake: SimEvent<unknown> | null = null;
  private readerWake: SimEvent<unknown> | null = null;
  private readerPending = false;
  private readonly watches = new Map<string, WatchCallback>();
  private readonly env: Env;
  private readonly messageCost: Time;
  /** Messages in each direction, for tests and statistics. */
  sent = 0;
  received = 0;

  private constructor(
    private readonly xg: XenGuest,
    private readonly v: Vcpu,
    readonly store: StoreLocation,
    profile: Profile,
  ) {
    this.env = xg.xen.env;
    this.mutex = new Resource(this.env, 1);
    this.messageCost = profile.ns('guest.xenbus.message');
    const { req, rsp } = xenstoreRings(xg.mem.view(store.gfn));
    this.req = req;
    this.rsp = rsp;
  }

  /**
   * xenbus_init for a domain whose kernel has done XenGuest.init: find the store page and port
   * (HVM: HVMOP_get_param; PV: the start_info the toolstack filled, passed as `pv`), bind the
   * port and start the xenbus and xenwatch threads. Returns the client or a negative errno.
   */
  static *connect(xg: XenGuest, v: Vcpu, profile: Profile, pv?: StoreLocation): Generator<SimEvent<unknown>, XenbusClient | number, unknown> {
    let where = pv;
    if (where === undefined) {
      const pfn = { domid: DOMID_SELF, index: HVM_PARAM_STORE_PFN, value: 0n };
      let rc = yield* xg.xen.hypercall(v, { nr: __HYPERVISOR_hvm_op, cmd: HVMOP_get_param, arg: pfn });
      if (rc < 0) return rc;
      const evt = { domid: DOMID_SELF, index: HVM_PARAM_STORE_EVTCHN, value: 0n };
      rc = yield* xg.xen.hypercall(v, { nr: __HYPERVISOR_hvm_op, cmd: HVMOP_get_param, arg: evt });
      if (rc < 0) return rc;
      where = { gfn: Number(pfn.value), port: Number(evt.value) };
    }
    if (where.gfn === 0 || where.port === 0) return -2; // ENOENT: no xenstore for this domain
    const c = new XenbusClient(xg, v, where, profile);
    xg.xen.env.process(c.readerThread(), `d${xg.domid} xenbus`);
    xg.xen.env.process(c.watchThread(), `d${xg.domid} xenwatch`);
    yield* xg.evtchn.bindHandler(v, where.port, () => c.onEvent());
    return c;
  }

  // ---- requests ------------------------------------------------------------------------------

  *read(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<Uint8Array>, unknown> {
    return yield* this.talk(XS_READ, nulTerminated([path]), tx);
  }

  /** Reads a value as text (one character per byte). */
  *readText(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<string>, unknown> {
    const r = yield* this.read(path, tx);
    return r.ok ? ok(bytesToLatin1(r.value)) : r;
  }

  *write(path: string, value: Uint8Array | string, tx = 0): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    const v = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    const p = nulTerminated([path]);
    const payload = new Uint8Array(p.length + v.length);
    payload.set(p);
    payload.set(v, p.length);
    return this.done(yield* this.talk(XS_WRITE, payload, tx));
  }

  *mkdir(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    return this.done(yield* this.talk(XS_MKDIR, nulTerminated([path]), tx));
  }

  *rm(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    return this.done(yield* this.talk(XS_RM, nulTerminated([path]), tx));
  }

  *directory(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<string[]>, unknown> {
    const r = yield* this.talk(XS_DIRECTORY, nulTerminated([path]), tx);
    return r.ok ? ok(payloadStrings(r.value)) : r;
  }

  *getPerms(path: string, tx = 0): Generator<SimEvent<unknown>, XsResult<string[]>, unknown> {
    const r = yield* this.talk(XS_GET_PERMS, nulTerminated([path]), tx);
    return r.ok ? ok(payloadStrings(r.value)) : r;
  }

  *setPerms(path: string, perms: readonly string[], tx = 0): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    return this.done(yield* this.talk(XS_SET_PERMS, nulTerminated([path, ...perms]), tx));
  }

  *transactionStart(): Generator<SimEvent<unknown>, XsResult<number>, unknown> {
    const r = yield* this.talk(XS_TRANSACTION_START, nulTerminated(['']), 0);
    return r.ok ? ok(Number(payloadStrings(r.value)[0])) : r;
  }

  *transactionEnd(tx: number, commit: boolean): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    return this.done(yield* this.talk(XS_TRANSACTION_END, nulTerminated([commit ? 'T' : 'F']), tx));
  }

  /** Registers a watch; `callback` runs in the xenwatch thread for the first event and every later one. */
  *watch(path: string, token: string, callback: WatchCallback): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    this.watches.set(token, callback);
    const r = this.done(yield* this.talk(XS_WATCH, nulTerminated([path, token]), 0));
    if (!r.ok) this.watches.delete(token);
    return r;
  }

  *unwatch(path: string, token: string): Generator<SimEvent<unknown>, XsResult<void>, unknown> {
    const r = this.done(yield* this.talk(XS_UNWATCH, nulTerminated([path, token]), 0));
    if (r.ok) this.watches.delete(token);
    return r;
  }

  private done(r: XsResult<Uint8Array>): XsResult<void> {
    return r.ok ? ok(undefined) : r;
  }

  /** xs_talkv: one request out, its reply back (watch events in between go to xenwatch). */
  private *talk(type: number, payload: Uint8Array, tx: number): Generator<SimEvent<unknown>, XsResult<Uint8Array>, unknown> {
    const lock = this.mutex.request();
    yield lock;
    try {
      const bytes = encodeMessage({ type, reqId: 0, txId: tx, payload });
      yield this.v.exec(this.messageCost, 'kernel');
      this.reply = this.env.event<XsMessage>();
      const reply = this.reply;
      let at = 0;
      while (at < bytes.length) {
        const space = this.req.space();
        if (space < 0) return fail('EIO');
        if (space === 0) {
          // xb_write waits for xenstored to consume (it notifies after reading).
          this.ringEvent = this.env.event();
          yield this.ringEvent;
          continue;
        }
        at += this.req.write(bytes.subarray(at));
        yield* this.xg.evtchn.notify(this.v, this.store.port);
      }
      this.sent++;
      const m = (yield reply) as XsMessage;
      if (m.type === XS_ERROR) return fail((payloadStrings(m.payload)[0] ?? 'EINVAL') as XsErrorName);
      if (m.type !== type) return fail('EIO');
      return ok(m.payload);
    } finally {
      this.reply = null;
      lock.release();
    }
  }

  // ---- the response side -----------------------------------------------------------------------

  /** Port handler (interrupt context): wake the writer waiting for room and the xenbus thread. */
  private onEvent(): void {
    if (this.ringEvent !== null && !this.ringEvent.triggered) this.ringEvent.succeed();
    this.readerPending = true;
    if (this.readerWake !== null && !this.readerWake.triggered) this.readerWake.succeed();
  }

  /** The xenbus kernel thread (xenbus_thread → process_msg): reads the response ring. */
  private *readerThread(): ProcessGenerator<void> {
    for (;;) {
      if (!this.readerPending) {
        this.readerWake = this.env.event();
        yield this.readerWake;
        this.readerWake = null;
      }
      this.readerPending = false;
      const avail = this.rsp.available();
      if (avail <= 0) continue; // nothing, or corrupt indices from the daemon's side: ignore
      const { messages, error } = this.reasm.push(this.rsp.read(avail));
      // xb_read tells xenstored the ring has room again.
      yield* this.xg.evtchn.notify(this.v, this.store.port);
      if (error !== undefined) continue;
      for (const m of messages) {
        yield this.v.exec(this.messageCost, 'kernel');
        this.received++;
        if (m.type === XS_WATCH_EVENT) {
          const [path, token] = payloadStrings(m.payload);
          if (path !== undefined && token !== undefined) this.queueWatch(path, token);
        } else if (this.reply !== null && !this.reply.triggered) {
          this.reply.succeed(m);
        }
      }
    }
  }

  private queueWatch(path: string, token: string): void {
    this.watchQueue.push({ path, token });
    if (this.watchWake !== null && !this.watchWake.triggered) this.watchWake.succeed();
  }

  /** The xenwatch kernel thread: runs watch callbacks one at a time, in arrival order. */
  private *watchThread(): ProcessGenerator<void> {
    for (;;) {
      const ev = this.watchQueue.shift();
      if (ev === undefined) {
        this.watchWake = this.env.event();
        yield this.watchWake;
        continue;
      }
      const cb = this.watches.get(ev.token);
      if (cb === undefined) continue;
      const r = cb(ev.path, ev.token);
      if (r !== undefined) yield* r;
    }
  }
}

/** Bytes for a XenStore value given as text, one byte per character (as xenstore-write -R). */
export function xsBytes(s: string): Uint8Array {
  return latin1ToBytes(s);
}
