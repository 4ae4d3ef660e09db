/**
 * Sinks a bench case can attach to its environment's trace bus: a pcap of one stack's
 * device (what tcpdump on that interface would show), and a Chrome/Perfetto trace of the
 * host's pCPUs — which vCPU ran when, with the exits, hypercalls, copies, notifications and
 * upcalls as instants on the pCPU where they happened. The model never formats output; these
 * subscribe to its trace points.
 */
import type { Env, TracePoint } from '../sim/index.js';
import { PcapWriter, stackRx, stackTx } from '../net/index.js';
import { TP_SCHED_SWITCH } from '../xen/index.js';
import { TP_CHANNEL_FRAME } from '../vnet/index.js';

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
  ph: 'B' | 'E' | 'i' | 'M' | 'C';
  ts: number;
  pid: number;
  tid: number;
  s?: 't';
  args?: Record<string, unknown>;
}

/**
 * A Chrome trace (JSON Object Format, which Perfetto and chrome://tracing open) of the first
 * `limit` events: one track per pCPU with the running vCPU as slices, other trace points as
 * instants on the pCPU the vCPU named in them ran on. It stops recording at the limit (and
 * says so in the file's metadata) so that a long stream does not make a gigabyte file.
 */
export class ChromeTraceSink {
  private readonly events: ChromeEvent[] = [];
  private readonly running = new Map<number, string>();
  private readonly where = new Map<string, number>();
  private readonly totals = new Map<string, number>();
  private off: (() => void) | null;
  private truncated = false;
  private stoppedAt: number | null = null;

  /** `running`: what each pCPU runs when recording starts (its vCPU's name, or null when idle). */
  constructor(
    env: Env,
    private readonly limit: number,
    running: readonly (string | null)[],
  ) {
    running.forEach((name, pcpu) => {
      if (name === null) return;
      this.running.set(pcpu, name);
      this.where.set(name, pcpu);
      this.events.push({ name, ph: 'B', ts: env.now / 1000, pid: 0, tid: pcpu, args: { reason: 'running when the trace began' } });
    });
    this.off = env.trace.onAny((t, payload, point) => this.take(t, payload, point));
  }

  private take(t: number, payload: unknown, point: TracePoint<unknown>): void {
    if (this.events.length >= this.limit) {
      this.truncated = true;
      this.stoppedAt = t;
      this.off?.();
      this.off = null;
      return;
    }
    const ts = t / 1000;
    if (point === (TP_SCHED_SWITCH as TracePoint<unknown>)) {
      const p = payload as { pcpu: number; from: string | null; to: string | null; reason: string };
      const prev = this.running.get(p.pcpu);
      if (prev !== undefined) this.events.push({ name: prev, ph: 'E', ts, pid: 0, tid: p.pcpu });
      if (p.to !== null) {
        this.running.set(p.pcpu, p.to);
        this.where.set(p.to, p.pcpu);
        this.events.push({ name: p.to, ph: 'B', ts, pid: 0, tid: p.pcpu, args: { reason: p.reason } });
      } else this.running.delete(p.pcpu);
      return;
    }
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
      const p = payload as { stack: string; dev: string; pkt: { length: number } };
      this.events.push({ name: `${point.name} ${p.dev}`, ph: 'i', s: 't', ts, pid: 1, tid: 0, args: { stack: p.stack, bytes: p.pkt.length } });
      return;
    }
    const p = payload as Record<string, unknown>;
    const vcpu = typeof p.vcpu === 'string' ? p.vcpu : null;
    const tid = vcpu !== null ? (this.where.get(vcpu) ?? -1) : typeof p.pcpu === 'number' ? p.pcpu : -1;
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p)) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') args[k] = v;
    this.events.push({ name: point.name, ph: 'i', s: 't', ts, pid: 0, tid, args });
  }

  /** The trace as JSON text. */
  close(pcpus: number, now: number): string {
    this.off?.();
    this.off = null;
    for (const [pcpu, name] of this.running) this.events.push({ name, ph: 'E', ts: (this.stoppedAt ?? now) / 1000, pid: 0, tid: pcpu });
    this.running.clear();
    const meta: ChromeEvent[] = [
      { name: 'process_name', ph: 'M', ts: 0, pid: 0, tid: 0, args: { name: 'Xen host: pCPUs' } },
      { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: 'guest stacks' } },
      { name: 'process_name', ph: 'M', ts: 0, pid: 2, tid: 0, args: { name: 'counters' } },
      ...Array.from({ length: pcpus }, (_, i): ChromeEvent => ({ name: 'thread_name', ph: 'M', ts: 0, pid: 0, tid: i, args: { name: `pCPU${i}` } })),
    ];
    return JSON.stringify({
      traceEvents: [...meta, ...this.events],
      displayTimeUnit: 'ns',
      otherData: { truncated: this.truncated, limit: this.limit },
    });
  }
}
