import type { Env, ProcessGenerator, SimEvent, Time } from '../../sim/index.js';
import type { Profile } from '../../profile/index.js';
import {
  XENSTORE_PAYLOAD_MAX,
  XS_MKDIR,
  XS_RM,
  XS_SET_PERMS,
  XS_TRANSACTION_END,
  XS_WATCH_EVENT,
  XS_WRITE,
  XSD_SOCKMSG_SIZE,
} from '../abi/xs-wire.js';
import type { XenGuest } from '../guest/xen-guest.js';
import type { ForeignMapping } from '../memory-op.js';
import type { Vcpu } from '../vcpu.js';
import { xenstoreRings, type XsByteRing } from './ring.js';
import { XsSession } from './server.js';
import type { XenStore } from './store.js';
import { encodeMessage, parseHeader, type HeaderFields, type XsMessage } from './wire.js';

export interface XenstoredCosts {
  wakeup: Time;
  request: Time;
  modify: Time;
}

export function xenstoredCosts(p: Profile): XenstoredCosts {
  return { wakeup: p.ns('xen.xenstore.daemonWakeup'), request: p.ns('xen.xenstore.daemonRequest'), modify: p.ns('xen.xenstore.daemonModify') };
}

const MODIFYING = new Set([XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_TRANSACTION_END]);

/** One domain's connection through its ring page (xenstored's struct domain + connection). */
class RingConnection {
  /** The request being read: its header bytes, then its body (xenstored's conn->in). */
  readonly hdr = new Uint8Array(XSD_SOCKMSG_SIZE);
  hdrFill = 0;
  head: HeaderFields | null = null;
  body = new Uint8Array(0);
  bodyFill = 0;
  /** Encoded messages not yet (fully) written to the response ring, and how far into the first. */
  readonly out: { bytes: Uint8Array; isReply: boolean }[] = [];
  outOffset = 0;
  broken: string | null = null;
  requests = 0;

  constructor(
    readonly domid: number,
    readonly port: number,
    readonly mapping: ForeignMapping,
    readonly req: XsByteRing,
    readonly rsp: XsByteRing,
    readonly session: XsSession,
  ) {}
}

/**
 * xenstored as it runs inside the model: a Dom0 process that serves each introduced domain
 * through that domain's ring page (mapped from Dom0) and an interdomain event channel,
 * speaking the same protocol engine as the socket daemon (XsSession). Like xenstored's main
 * loop it sleeps until an event channel fires, then moves whatever the rings allow: requests
 * in, replies and watch events out, notifying the domain after reading or writing. Its work
 * is charged to a Dom0 vCPU as user time. A domain that corrupts its ring indices or frames
 * an oversize message loses its connection (xenstored ignores it); the others are unaffected.
 */
export class Xenstored {
  private readonly conns = new Map<number, RingConnection>();
  private wake: SimEvent<unknown> | null = null;
  private pending = false;
  readonly brokenConnections: { domid: number; reason: string }[] = [];

  constructor(
    private readonly env: Env,
    private readonly store: XenStore,
    private readonly dom0: XenGuest,
    private readonly v: Vcpu,
    private readonly costs: XenstoredCosts,
  ) {}

  /** The main loop; run it as a Dom0 process. */
  *run(): ProcessGenerator<void> {
    for (;;) {
      if (!this.pending) {
        this.wake = this.env.event();
        yield this.wake;
        this.wake = null;
        yield this.v.exec(this.costs.wakeup, 'kernel');
      }
      this.pending = false;
      for (const c of [...this.conns.values()]) yield* this.service(c);
    }
  }

  /**
   * Starts serving `domid` through ring page `gfn` of that domain and its unbound port `port`
   * (what the toolstack's INTRODUCE names): maps the page, binds the event channel. 0 or -errno.
   */
  *attach(domid: number, gfn: number, port: number): Generator<SimEvent<unknown>, number, unknown> {
    if (this.conns.has(domid)) return -17; // EEXIST
    const m = yield* this.dom0.xen.foreignMap(this.v, domid, [gfn]);
    if (m.rc !== 0 || m.mapping === undefined) return m.rc !== 0 ? m.rc : -22;
    const local = yield* this.dom0.evtchn.bindInterdomain(this.v, domid, port, () => this.kick());
    if (local < 0) {
      m.mapping.unmap();
      return local;
    }
    const { req, rsp } = xenstoreRings(m.mapping.page(0));
    const session = new XsSession(this.store, domid);
    const c = new RingConnection(domid, local, m.mapping, req, rsp, session);
    session.onEventsPending = () => this.kick();
    this.conns.set(domid, c);
    this.kick();
    return 0;
  }

  /** Stops serving `domid` (it was released): unmaps its page and closes the event channel. */
  *detach(domid: number): Generator<SimEvent<unknown>, void, unknown> {
    const c = this.conns.get(domid);
    if (c === undefined) return;
    this.conns.delete(domid);
    c.mapping.unmap();
    yield* this.dom0.evtchn.close(this.v, c.port);
  }

  /** Requests served per domain so far. */
  requestsServed(domid: number): number {
    return this.conns.get(domid)?.requests ?? 0;
  }

  private kick(): void {
    this.pending = true;
    if (this.wake !== null && !this.wake.triggered) this.wake.succeed();
  }

  private *service(c: RingConnection): Generator<SimEvent<unknown>, void, unknown> {
    if (c.broken !== null || !this.conns.has(c.domid)) return;
    let notify = this.flush(c);
    // handle_input: one message at a time, and none while the domain has its quota of
    // replies outstanding (domain_can_read); the rest stays in its ring.
    while (c.broken === null && c.session.acceptsRequests) {
      const before = c.req.cons;
      const m = this.readMessage(c);
      if (c.req.cons !== before) notify = true;
      if (m === null) break;
      yield* this.handle(c, m);
      if (this.flush(c)) notify = true;
    }
    if (c.broken !== null) return;
    for (const ev of c.session.takeEvents()) c.out.push({ bytes: encodeMessage(ev), isReply: false });
    if (this.flush(c)) notify = true;
    if (notify && this.conns.has(c.domid)) yield* this.dom0.evtchn.notify(this.v, c.port);
  }

  /**
   * Reads from the request ring up to the end of the next message, never past it; returns the
   * message once complete, else null (more bytes needed, or the connection broke).
   */
  private readMessage(c: RingConnection): XsMessage | null {
    if (c.head === null) {
      const avail = c.req.available();
      if (avail < 0) return this.breakConnection(c, 'request ring indices corrupt');
      const got = c.req.read(Math.min(avail, XSD_SOCKMSG_SIZE - c.hdrFill));
      c.hdr.set(got, c.hdrFill);
      c.hdrFill += got.length;
      if (c.hdrFill < XSD_SOCKMSG_SIZE) return null;
      const h = parseHeader(c.hdr)!;
      if (h.len > XENSTORE_PAYLOAD_MAX) return this.breakConnection(c, `message of ${h.len} bytes announced (max ${XENSTORE_PAYLOAD_MAX})`);
      c.head = h;
      c.body = new Uint8Array(h.len);
      c.bodyFill = 0;
    }
    if (c.bodyFill < c.body.length) {
      const avail = c.req.available();
      if (avail < 0) return this.breakConnection(c, 'request ring indices corrupt');
      const got = c.req.read(Math.min(avail, c.body.length - c.bodyFill));
      c.body.set(got, c.bodyFill);
      c.bodyFill += got.length;
      if (c.bodyFill < c.body.length) return null;
    }
    const h = c.head;
    c.head = null;
    c.hdrFill = 0;
    return { type: h.type, reqId: h.reqId, txId: h.txId, payload: c.body };
  }

  private *handle(c: RingConnection, m: XsMessage): Generator<SimEvent<unknown>, void, unknown> {
    c.requests++;
    const out = c.session.handle(m);
    const reply = out.find((r) => r.type !== XS_WATCH_EVENT);
    const modified = MODIFYING.has(m.type) && reply !== undefined && reply.type === m.type;
    yield this.v.exec(this.costs.request + (modified ? this.costs.modify : 0), 'user');
    for (const r of out) c.out.push({ bytes: encodeMessage(r), isReply: r === reply });
  }

  /** Writes queued output into the response ring as far as it has room; true if anything went. */
  private flush(c: RingConnection): boolean {
    let wrote = false;
    while (c.out.length > 0) {
      const head = c.out[0]!;
      const space = c.rsp.space();
      if (space < 0) {
        this.breakConnection(c, 'response ring indices corrupt');
        return wrote;
      }
      if (space === 0) break;
      const n = c.rsp.write(head.bytes.subarray(c.outOffset));
      wrote = wrote || n > 0;
      c.outOffset += n;
      if (c.outOffset < head.bytes.length) break;
      c.out.shift();
      c.outOffset = 0;
      if (head.isReply) c.session.replyDelivered();
    }
    return wrote;
  }

  private breakConnection(c: RingConnection, reason: string): null {
    c.broken = reason;
    c.out.length = 0;
    c.session.close(); // xenstored ignores the connection: its watches and transactions go
    this.brokenConnections.push({ domid: c.domid, reason });
    return null;
  }
}
