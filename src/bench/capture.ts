/**
 * Sinks a bench case can attach to its environment's trace bus: a pcap of one stack's
 * device (what tcpdump on that interface would show), and a Chrome/Perfetto trace of the
 * host's pCPUs — which vCPU ran when, with the exits, hypercalls, copies, notifications and
 * upcalls as instants on the pCPU where they happened. The model never formats output; these
 * subscribe to its trace points.
 */
import type { Env, TracePoint } from '../sim/index.js';
import { ETH, ETHERTYPE_IPV4, IP, PcapWriter, readU16, readU32, stackRx, stackTx } from '../net/index.js';
import { TP_SCHED_SWITCH } from '../xen/index.js';
import { TP_CHANNEL_FRAME, TP_FRAME_STEP, TP_RX_DELIVER, TP_TX_START } from '../vnet/index.js';

/**
 * Every capture point of a case at once (`--pcap`): each stack's devices — the guests'
 * interfaces and Dom0's bridge ports (vifs, taps, physical NICs) — and each HV²M/shmem
 * channel (the frames its two guests diverted into it, both directions), one pcap per point
 * that saw a frame, named `<stack>_<dev>` and `<path>_d<a>-d<b>`.
 */
export class CaptureSet {
  private readonly writers = new Map<string, PcapWriter>();
  private readonly offs: (() => void)[] = [];

  constructor(env: Env) {
    const put = (name: string, t: number, data: Uint8Array): void => {
      let w = this.writers.get(name);
      if (w === undefined) this.writers.set(name, (w = new PcapWriter()));
      w.write(t, data);
    };
    const dev = (t: number, p: { stack: string; dev: string; pkt: { data: Uint8Array } }): void => put(`${p.stack}_${p.dev}`, t, p.pkt.data);
    this.offs.push(
      env.trace.on(stackTx, dev),
      env.trace.on(stackRx, dev),
      env.trace.on(TP_CHANNEL_FRAME, (t, p) => put(`${p.path}_d${Math.min(p.domid, p.peer)}-d${Math.max(p.domid, p.peer)}`, t, p.pkt.data)),
    );
  }

  /** Each capture's file bytes, by name (file-safe: `:` and `/` become `-`). */
  close(): Record<string, Uint8Array> {
    for (const off of this.offs) off();
    const out: Record<string, Uint8Array> = {};
    for (const [name, w] of [...this.writers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[name.replace(/[:/]/g, '-')] = w.bytes();
    return out;
  }
}

/** Frames sent and received by stack `stack` on device `dev`, as a pcap. */
export class PcapSink {
  readonly writer = new PcapWriter();
  private readonly offs: (() => void)[] = [];

  constructor(env: Env, stack: string, dev: string) {
    const take = (t: number, p: { stack: string; dev: string; pkt: { data: Uint8Array } }): void => {
      if (p.stack === stack && p.dev === dev) this.writer.write(t, p.pkt.data);
    };
    this.offs.push(env.trace.on(stackTx, take), env.trace.on(stackRx, take));
  }

  close(): Uint8Array {
    for (const off of this.offs) off();
    return this.writer.bytes();
  }
}

interface ChromeEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'M' | 'C' | 'X' | 's' | 't' | 'f';
  ts: number;
  pid: number;
  tid: number;
  s?: 't';
  cat?: string;
  dur?: number;
  id?: number;
  bp?: 'e';
  args?: Record<string, unknown>;
}

/**
 * What identifies one frame at every place it passes, read from its own bytes: the IPv4
 * source, destination, protocol and identification (the sending stack numbers each datagram
 * it builds: RFC 791 section 3.2, Linux's ip_select_ident). Every path copies the frame into
 * new buffers on its way (netback into Dom0, Xen into the receiver), so an object identity
 * would not survive; the header does, because those are the bytes that really move. Null for
 * a frame that is not IPv4 (ARP, an HV²M fence): no flow follows it. A frame split on its way
 * (TSO in e1000, shmem's GSO or fragmentation) is followed by its first part, which keeps the
 * original identification.
 */
export function frameKey(f: Uint8Array): string | null {
  const ip = ETH.HEADER_LEN;
  if (f.length < ip + IP.HEADER_LEN || readU16(f, ETH.TYPE) !== ETHERTYPE_IPV4) return null;
  return `${readU32(f, ip + IP.SRC)}>${readU32(f, ip + IP.DST)}/${f[ip + IP.PROTOCOL]!}#${readU16(f, ip + IP.IDENT)}`;
}

/** One place a followed frame passed: a zero-length slice on the pCPU that did the work. */
interface FlowStep {
  name: string;
  ts: number;
  tid: number;
  args: Record<string, unknown>;
}

/** Track numbers per host: host i's pCPUs are tracks i * PCPU_TRACKS_PER_HOST + n (their pCPU numbers on one host). */
export const PCPU_TRACKS_PER_HOST = 1000;

/** A host whose pCPUs the trace draws: its tag (Hypervisor.tag) and what each pCPU runs when the trace begins (a vCPU's name, or null). */
export interface ChromeTraceHost {
  tag: string;
  running: readonly (string | null)[];
}

/** Frames followed at once (sent, not yet delivered): beyond this the oldest is given up (a frame dropped on its way never ends). */
const MAX_PENDING_FLOWS = 1024;

export interface ChromeTraceFlows {
  /**
   * Follow one in every `every` IPv4 frames a guest device sends (txStart), from the first: 1
   * follows each, 0 none. Default 1; a flow costs two events per step out of the trace's limit.
   */
  every?: number;
  /** The vCPU that runs stack `stack`'s work now (Dom0's bridge ports), or null: the sink places stackRx/stackTx steps with it. */
  stackVcpu?: (stack: string) => string | null;
}

/**
 * A Chrome trace (JSON Object Format, which Perfetto and chrome://tracing open) of the first
 * `limit` events: one track per pCPU of each host with the running vCPU as slices, other trace points as
 * instants on the pCPU the vCPU named in them ran on. It stops recording at the limit (and
 * says so in the file's metadata) so that a long stream does not make a gigabyte file.
 *
 * Flows follow frames from the sending guest's device (txStart) through each mechanism that
 * moves them (frameStep: netfront's requests, netback's grant copies, HV²M's grant copy into
 * the receiver, the notifications, qemu, a shmem FIFO; Dom0's bridge ports) to the receiving guest's device
 * (rxDeliver): each place is a zero-length slice named after the step on the pCPU whose vCPU
 * did the work, at the instant it finished, and a flow event (`s`, `t`…, `f`, bound to that
 * slice: same category, pid, tid and ts, `bp: "e"`) joins them, which Perfetto and
 * chrome://tracing draw as arrows. A flow is written once its frame is delivered, so every flow
 * in the file is complete; frames still on their way when the trace stops are left out.
 */
export class ChromeTraceSink {
  private readonly events: ChromeEvent[] = [];
  /** What each pCPU track runs now, and the track each vCPU last ran on. */
  private readonly running = new Map<number, string>();
  private readonly where = new Map<string, number>();
  /** Host tags in the order of `hosts`: host i's pCPU n is track i * PCPU_TRACKS_PER_HOST + n. */
  private readonly tags: readonly string[];
  private readonly totals = new Map<string, number>();
  private readonly pending = new Map<string, FlowStep[]>();
  /** The step slices written, by pCPU and instant. */
  private readonly stepSlices = new Map<string, ChromeEvent>();
  private readonly flowEvery: number;
  private readonly stackVcpu: (stack: string) => string | null;
  private framesSent = 0;
  private flowsWritten = 0;
  private flowsAbandoned = 0;
  private off: (() => void) | null;
  private truncated = false;
  private stoppedAt: number | null = null;

  /**
   * `hosts`: each host's tag and what each of its pCPUs runs when recording starts (a vCPU's
   * name, or null when idle); host i's pCPU n is the track `i * PCPU_TRACKS_PER_HOST + n`.
   */
  constructor(
    env: Env,
    private readonly limit: number,
    private readonly hosts: readonly ChromeTraceHost[],
    flows: ChromeTraceFlows = {},
  ) {
    this.tags = hosts.map((h) => h.tag);
    this.flowEvery = flows.every ?? 1;
    if (!Number.isInteger(this.flowEvery) || this.flowEvery < 0)
      throw new RangeError(`ChromeTraceSink: flows.every must be a whole number ≥ 0, not ${this.flowEvery}`);
    this.stackVcpu = flows.stackVcpu ?? (() => null);
    hosts.forEach((h, i) =>
      h.running.forEach((name, pcpu) => {
        if (name === null) return;
        const tid = i * PCPU_TRACKS_PER_HOST + pcpu;
        this.running.set(tid, name);
        this.where.set(name, tid);
        this.events.push({ name, ph: 'B', ts: env.now / 1000, pid: 0, tid, args: { reason: 'running when the trace began' } });
      }),
    );
    this.off = env.trace.onAny((t, payload, point) => this.take(t, payload, point));
  }

  private stop(t: number): void {
    this.truncated = true;
    this.stoppedAt = t;
    this.off?.();
    this.off = null;
  }

  private take(t: number, payload: unknown, point: TracePoint<unknown>): void {
    if (this.events.length >= this.limit) {
      this.stop(t);
      return;
    }
    const ts = t / 1000;
    if (point === (TP_SCHED_SWITCH as TracePoint<unknown>)) {
      const p = payload as { pcpu: number; from: string | null; to: string | null; reason: string };
      const tid = this.track(p.to ?? p.from, p.pcpu);
      const prev = this.running.get(tid);
      if (prev !== undefined) this.events.push({ name: prev, ph: 'E', ts, pid: 0, tid });
      if (p.to !== null) {
        this.running.set(tid, p.to);
        this.where.set(p.to, tid);
        this.events.push({ name: p.to, ph: 'B', ts, pid: 0, tid, args: { reason: p.reason } });
      } else this.running.delete(tid);
      return;
    }
    if (this.flowEvery > 0) {
      if (point === (TP_FRAME_STEP as TracePoint<unknown>)) {
        const p = payload as { path: string; domid: number; vcpu: string; step: string; len: number; frame: Uint8Array };
        this.flowStep(ts, p.frame, p.vcpu, p.step, { path: p.path, domid: p.domid, vcpu: p.vcpu, bytes: p.len }, 'step');
        return;
      }
      if (point === (TP_TX_START as TracePoint<unknown>) || point === (TP_RX_DELIVER as TracePoint<unknown>)) {
        const p = payload as { path: string; domid: number; dev: string; vcpu: string; frame: Uint8Array };
        const args = { path: p.path, domid: p.domid, dev: p.dev, vcpu: p.vcpu, bytes: p.frame.length };
        this.flowStep(ts, p.frame, p.vcpu, `${point.name} ${p.dev}`, args, point === (TP_TX_START as TracePoint<unknown>) ? 'start' : 'end');
      }
    } else if (point === (TP_FRAME_STEP as TracePoint<unknown>)) return;
    if (point.name === 'rxDeliver' || point.name === 'copy') {
      // Counters over time (Perfetto draws them as tracks): bytes each guest's devices handed up,
      // and bytes Xen's grant copies moved for each domain — cumulative, so their slope is a rate.
      const c = payload as { domid: number; len: number; status?: number };
      const key = `${point.name === 'copy' ? 'grant-copied' : 'delivered'} bytes d${c.domid}`;
      const total = (this.totals.get(key) ?? 0) + (point.name !== 'copy' || c.status === 0 ? c.len : 0);
      this.totals.set(key, total);
      if (point.name !== 'copy' || c.status === 0) this.events.push({ name: key, ph: 'C', ts, pid: 2, tid: 0, args: { bytes: total } });
    }
    if (point.name === 'stackTx' || point.name === 'stackRx') {
      const p = payload as { stack: string; dev: string; pkt: { length: number; data: Uint8Array } };
      this.events.push({ name: `${point.name} ${p.dev}`, ph: 'i', s: 't', ts, pid: 1, tid: 0, args: { stack: p.stack, bytes: p.pkt.length } });
      if (this.flowEvery > 0 && this.pending.size > 0) {
        const vcpu = this.stackVcpu(p.stack);
        if (vcpu !== null)
          this.flowStep(ts, p.pkt.data, vcpu, `${p.stack} ${point.name} ${p.dev}`, { stack: p.stack, dev: p.dev, vcpu, bytes: p.pkt.length }, 'step');
      }
      return;
    }
    const p = payload as Record<string, unknown>;
    const vcpu = typeof p.vcpu === 'string' ? p.vcpu : null;
    const tid = vcpu !== null ? (this.where.get(vcpu) ?? -1) : typeof p.pcpu === 'number' ? p.pcpu : -1;
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p)) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') args[k] = v;
    this.events.push({ name: point.name, ph: 'i', s: 't', ts, pid: 0, tid, args });
  }

  /** The track of `pcpu` of the host whose vCPU `vcpu` is (a vCPU's name begins with its host's tag: Vcpu.name). */
  private track(vcpu: string | null, pcpu: number): number {
    const colon = vcpu?.indexOf(':') ?? -1;
    const host = colon < 0 ? 0 : this.tags.indexOf(vcpu!.slice(0, colon));
    return Math.max(host, 0) * PCPU_TRACKS_PER_HOST + pcpu;
  }

  /** A followed frame (or one to follow, at `start`) passed a place on `vcpu`'s pCPU. */
  private flowStep(ts: number, frame: Uint8Array, vcpu: string, name: string, args: Record<string, unknown>, kind: 'start' | 'step' | 'end'): void {
    if (kind !== 'start' && this.pending.size === 0) return;
    const key = frameKey(frame);
    if (key === null) return;
    const tid = this.where.get(vcpu);
    if (kind === 'start') {
      if (this.framesSent++ % this.flowEvery !== 0 || tid === undefined) return;
      // A key sent again (its identification wrapped, or a frame lost on its way) starts over.
      if (this.pending.delete(key)) this.flowsAbandoned++;
      if (this.pending.size >= MAX_PENDING_FLOWS) {
        this.pending.delete(this.pending.keys().next().value!);
        this.flowsAbandoned++;
      }
      this.pending.set(key, [{ name, ts, tid, args }]);
      return;
    }
    const steps = this.pending.get(key);
    if (steps === undefined || tid === undefined) return;
    const last = steps[steps.length - 1]!;
    // Places passed in one instant on one pCPU (Dom0's bridge taking a frame in on one port and
    // out of another) are one slice: flow events bind to a slice by its pCPU and instant.
    if (last.ts === ts && last.tid === tid && kind === 'step') {
      last.name = `${last.name} → ${name}`;
      last.args = { ...last.args, then: args };
    } else steps.push({ name, ts, tid, args });
    if (kind === 'end') {
      this.pending.delete(key);
      this.writeFlow(steps);
    }
  }

  private writeFlow(steps: FlowStep[]): void {
    if (this.events.length + 2 * steps.length > this.limit) {
      this.flowsAbandoned++;
      this.stop(steps[steps.length - 1]!.ts * 1000);
      return;
    }
    const id = ++this.flowsWritten;
    steps.forEach((s, i) => {
      // Frames that pass one pCPU in the same instant (a batch of grant copies, a NAPI poll
      // delivering several) share one slice, which then belongs to each of their flows: Chrome
      // binds a flow event to the slice of its pid, tid and ts, so two there would be ambiguous.
      const at = `${s.tid}/${s.ts}`;
      const shared = this.stepSlices.get(at);
      if (shared === undefined) {
        const x: ChromeEvent = { name: s.name, cat: 'frame', ph: 'X', ts: s.ts, dur: 0, pid: 0, tid: s.tid, args: { ...s.args, frames: 1 } };
        this.stepSlices.set(at, x);
        this.events.push(x);
      } else {
        if (!shared.name.split(' | ').includes(s.name)) shared.name = `${shared.name} | ${s.name}`;
        (shared.args as { frames: number }).frames++;
      }
      const ph = i === 0 ? 's' : i === steps.length - 1 ? 'f' : 't';
      const e: ChromeEvent = { name: 'frame', cat: 'frame', ph, id, ts: s.ts, pid: 0, tid: s.tid };
      if (i > 0) e.bp = 'e';
      this.events.push(e);
    });
  }

  /** The trace as JSON text. */
  close(now: number): string {
    this.off?.();
    this.off = null;
    for (const [pcpu, name] of this.running) this.events.push({ name, ph: 'E', ts: (this.stoppedAt ?? now) / 1000, pid: 0, tid: pcpu });
    this.running.clear();
    this.flowsAbandoned += this.pending.size;
    this.pending.clear();
    // Flows are written when their frame arrives, after the events of its journey: in time order
    // again (stable, so events of one instant keep the order they happened in).
    this.events.sort((a, b) => a.ts - b.ts);
    const meta: ChromeEvent[] = [
      { name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'Xen host: pCPUs' } },
      { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: 'guest stacks' } },
      { name: 'process_name', ph: 'M', ts: 0, pid: 2, tid: 0, args: { name: 'counters' } },
      ...this.hosts.flatMap((h, i) =>
        h.running.map(
          (_, n): ChromeEvent => ({
            name: 'thread_name',
            ph: 'M',
            ts: 0,
            pid: 0,
            tid: i * PCPU_TRACKS_PER_HOST + n,
            args: { name: this.hosts.length > 1 ? `${h.tag} pCPU${n}` : `pCPU${n}` },
          }),
        ),
      ),
    ];
    return JSON.stringify({
      traceEvents: [...meta, ...this.events],
      displayTimeUnit: 'ns',
      otherData: {
        truncated: this.truncated,
        limit: this.limit,
        flows: { every: this.flowEvery, written: this.flowsWritten, abandoned: this.flowsAbandoned },
      },
    });
  }
}
