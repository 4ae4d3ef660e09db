import type { Time } from './time.js';

/**
 * A typed trace point: a named place in the model where something observable happens
 * (`vmexit`, `copy`, `notify`, `rxDeliver`…). Points are declared once, next to the code that
 * fires them; sinks (statistics, pcap, timelines) subscribe through an environment's TraceBus.
 */
export class TracePoint<P> {
  private static count = 0;
  /** @internal Dense index into a bus's subscriber table. */
  readonly index = TracePoint.count++;
  declare readonly _payload: P; // carries P for type inference only
  constructor(readonly name: string) {}
}

export function tracePoint<P>(name: string): TracePoint<P> {
  return new TracePoint<P>(name);
}

export type TraceListener<P> = (time: Time, payload: P, point: TracePoint<P>) => void;

/**
 * Subscribers by trace point. Model code asks `enabled(point)` before building a payload, so
 * an unobserved point costs one array read.
 */
export class TraceBus {
  private readonly subs: (TraceListener<unknown>[] | undefined)[] = [];
  private readonly anySubs: TraceListener<unknown>[] = [];

  constructor(private readonly clock: { readonly now: Time }) {}

  enabled(point: TracePoint<unknown>): boolean {
    return this.subs[point.index] !== undefined || this.anySubs.length > 0;
  }

  on<P>(point: TracePoint<P>, listener: TraceListener<P>): () => void {
    const l = listener as TraceListener<unknown>;
    (this.subs[point.index] ??= []).push(l);
    return () => {
      const list = this.subs[point.index];
      if (list === undefined) return;
      const i = list.indexOf(l);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.subs[point.index] = undefined;
    };
  }

  /** Subscribes to every point (for recorders that keep a whole timeline). */
  onAny(listener: TraceListener<unknown>): () => void {
    this.anySubs.push(listener);
    return () => {
      const i = this.anySubs.indexOf(listener);
      if (i >= 0) this.anySubs.splice(i, 1);
    };
  }

  emit<P>(point: TracePoint<P>, payload: P): void {
    const list = this.subs[point.index];
    const now = this.clock.now;
    const p = point as TracePoint<unknown>;
    if (list !== undefined) for (let i = 0; i < list.length; i++) list[i]!(now, payload, p);
    const any = this.anySubs;
    for (let i = 0; i < any.length; i++) any[i]!(now, payload, p);
  }
}
