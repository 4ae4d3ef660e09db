import type { Env, Process, ProcessGenerator } from '../../sim/index.js';
import { IntegrityError, LatencyRecorder, fillPattern, must, verifyPattern, type Endpoints, type LatencySummary } from './common.js';

export interface PingOptions {
  /** Echo requests to send after `warmup` unrecorded ones; default 100 and 3. */
  count?: number;
  warmup?: number;
  /** ICMP data bytes (ping -s); default 56. */
  size?: number;
  /** Time between one reply and the next request, ns (ping -i); default 0 (flood-like, one outstanding). */
  interval?: number;
}

export interface PingResult {
  /** Round-trip times, ns. */
  rtt: LatencySummary;
  transmitted: number;
  received: number;
}

/** ping: echo request/reply round trips from client to server, one outstanding at a time. */
export function ping(env: Env, ends: Endpoints, opts: PingOptions = {}): Process<PingResult> {
  const count = opts.count ?? 100;
  const warm = opts.warmup ?? 3;
  const size = opts.size ?? 56;
  const rec = new LatencyRecorder();
  return env.process(
    (function* (): ProcessGenerator<PingResult> {
      const sock = ends.client.icmp.openPing();
      const data = new Uint8Array(size);
      let received = 0;
      for (let seq = 0; seq < count + warm; seq++) {
        fillPattern(data, 0, seq);
        const t0 = env.now;
        must('ping send', yield* sock.send(ends.serverAddr, seq & 0xffff, data));
        const r = yield* sock.recv();
        if (r.seq !== (seq & 0xffff)) throw new IntegrityError(`ping: reply ${r.seq} to request ${seq}`);
        if (r.data.length !== size) throw new IntegrityError(`ping: reply ${seq} carries ${r.data.length} bytes, sent ${size}`);
        verifyPattern(`ping reply ${seq}`, r.data, 0, seq);
        received++;
        if (seq >= warm) rec.record(env.now - t0);
        if (opts.interval !== undefined && opts.interval > 0) yield env.timeout(opts.interval);
      }
      sock.close();
      return { rtt: rec.summary(), transmitted: count + warm, received };
    })(),
    'ping',
  );
}
