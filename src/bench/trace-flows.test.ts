import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS } from '../sim/index.js';
import { Profile } from '../profile/index.js';
import { ETH, ETHERTYPE_ARP, ETHERTYPE_IPV4, IPPROTO_TCP, emitEthernet, emitIpv4, ipv4 } from '../net/index.js';
import { runCaseWithArtifacts, type CaseSpec } from './experiment.js';
import { frameKey } from './capture.js';

const profile = Profile.load('default');

interface Ev {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  dur?: number;
  id?: number;
  bp?: string;
  args?: Record<string, unknown>;
}

interface Trace {
  traceEvents: Ev[];
  otherData: { flows: { every: number; written: number; abandoned: number } };
}

/** A step of a flow: its flow event and the slice it binds to. */
interface Step {
  ph: string;
  ts: number;
  tid: number;
  slice: Ev;
}

/**
 * Checks what Perfetto and chrome://tracing need of a trace with flows, and returns the flows:
 * well-formed events; B/E balanced and nested per track; each flow one `s`, then `t`s, one
 * `f`, in nondecreasing time, each flow event bound to a slice (same cat, pid, tid, ts) on a
 * pCPU track.
 */
function checkTrace(text: string): { trace: Trace; flows: Map<number, Step[]> } {
  const trace = JSON.parse(text) as Trace;
  assert.ok(Array.isArray(trace.traceEvents), 'traceEvents is an array');
  const pcpuTracks = new Set(
    trace.traceEvents
      .filter((e) => e.ph === 'M' && e.pid === 0 && e.name === 'thread_name' && /pCPU\d+$/.test(String(e.args?.name)))
      .map((e) => e.tid),
  );
  const open = new Map<string, string[]>();
  const slices = new Map<string, Ev[]>();
  let last = -Infinity;
  for (const e of trace.traceEvents) {
    assert.equal(typeof e.name, 'string');
    assert.ok(['B', 'E', 'X', 'i', 'C', 'M', 's', 't', 'f'].includes(e.ph), `phase ${e.ph}`);
    assert.ok(Number.isFinite(e.ts) && e.ts >= 0, `ts ${e.ts}`);
    assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid), 'integer pid and tid');
    if (e.ph === 'M') continue;
    assert.ok(e.ts >= last, `events in time order (${e.ts} after ${last})`);
    last = e.ts;
    const track = `${e.pid}/${e.tid}`;
    if (e.ph === 'B') (open.get(track) ?? open.set(track, []).get(track)!).push(e.name);
    if (e.ph === 'E') assert.equal(open.get(track)?.pop(), e.name, `E ${e.name} on ${track} closes the slice it began`);
    if (e.ph === 'X') {
      assert.ok(typeof e.dur === 'number' && e.dur >= 0, 'X has a duration');
      const k = `${e.cat}/${track}/${e.ts}`;
      (slices.get(k) ?? slices.set(k, []).get(k)!).push(e);
    }
  }
  for (const [track, stack] of open) assert.equal(stack.length, 0, `slices left open on ${track}`);
  const flows = new Map<number, Step[]>();
  for (const e of trace.traceEvents) {
    if (e.ph !== 's' && e.ph !== 't' && e.ph !== 'f') continue;
    assert.ok(typeof e.id === 'number' && e.cat === 'frame' && e.name === 'frame', 'a flow event has an id, a category and a name');
    if (e.ph !== 's') assert.equal(e.bp, 'e', 'steps and ends bind to the enclosing slice');
    const bound = slices.get(`${e.cat}/${e.pid}/${e.tid}/${e.ts}`);
    assert.equal(bound?.length, 1, `flow ${e.id} at ${e.ts} binds to one slice on its track`);
    assert.ok(e.pid === 0 && pcpuTracks.has(e.tid), `flow ${e.id} binds on a pCPU track (${e.pid}/${e.tid})`);
    (flows.get(e.id) ?? flows.set(e.id, []).get(e.id)!).push({ ph: e.ph, ts: e.ts, tid: e.tid, slice: bound[0]! });
  }
  for (const [id, steps] of flows) {
    assert.ok(steps.length >= 2, `flow ${id} has a start and an end`);
    assert.deepEqual(
      steps.map((s) => s.ph),
      ['s', ...steps.slice(1, -1).map(() => 't'), 'f'],
      `flow ${id}: one start, steps, one end`,
    );
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i]!.ts >= steps[i - 1]!.ts, `flow ${id}: steps in nondecreasing time`);
  }
  return { trace, flows };
}

/** Whether `vcpu` ran on pCPU `tid` at `ts`, its slice's ends included (the B/E slices of the pCPU tracks). */
function ranAt(trace: Trace, tid: number, ts: number, vcpu: unknown): boolean {
  let since: number | null = null;
  for (const e of trace.traceEvents) {
    if (e.pid !== 0 || e.tid !== tid || e.name !== vcpu || (e.ph !== 'B' && e.ph !== 'E')) continue;
    if (e.ph === 'B') since = e.ts;
    else {
      if (since !== null && since <= ts && ts <= e.ts) return true;
      since = null;
    }
    if (e.ts > ts) break;
  }
  return since !== null && since <= ts;
}

const spec = (path: string): CaseSpec => ({ path, test: 'tcp_rr', size: 1, guestType: 'hvm', seed: 3, warmupNs: 1 * MS, durationNs: 2 * MS });

/** The flows from guest `from` (domid) to guest `to`, txStart to rxDeliver. */
function journeys(flows: Map<number, Step[]>, from: number, to: number): Step[][] {
  return [...flows.values()].filter((f) => {
    const a = f[0]!.slice;
    const b = f[f.length - 1]!.slice;
    return a.name.startsWith('txStart') && a.args?.domid === from && b.name.startsWith('rxDeliver') && b.args?.domid === to;
  });
}

describe('--trace: flows of frames', () => {
  it('frameKey: a frame is known by its IPv4 source, destination, protocol and identification; other frames by nothing', () => {
    const f = new Uint8Array(ETH.HEADER_LEN + 40);
    emitEthernet({ dst: 2, src: 1, ethertype: ETHERTYPE_IPV4 }, f, 0);
    emitIpv4(
      {
        src: ipv4('10.0.0.1'),
        dst: ipv4('10.0.0.2'),
        protocol: IPPROTO_TCP,
        ident: 0x1234,
        ttl: 64,
        tos: 0,
        dontFragment: true,
        moreFragments: false,
        fragOffset: 0,
        payloadLen: 20,
      },
      f,
      ETH.HEADER_LEN,
    );
    assert.equal(frameKey(f), `${ipv4('10.0.0.1')}>${ipv4('10.0.0.2')}/6#${0x1234}`);
    const g = f.slice();
    g[ETH.HEADER_LEN + 5] = 0x35;
    assert.notEqual(frameKey(g), frameKey(f), 'another identification, another frame');
    emitEthernet({ dst: 2, src: 1, ethertype: ETHERTYPE_ARP }, g, 0);
    assert.equal(frameKey(g), null, 'ARP: not followed');
    assert.equal(frameKey(f.subarray(0, ETH.HEADER_LEN + 19)), null, 'too short for an IPv4 header');
  });

  it('pv: a frame goes from the sender’s txStart through netfront, netback’s grant copies on Dom0’s vCPUs and the bridge to the receiver’s rxDeliver', () => {
    const t = runCaseWithArtifacts(profile, spec('pv'), { wallMs: () => 0, traceEvents: 20000 });
    const { trace, flows } = checkTrace(t.trace!);
    assert.equal(trace.otherData.flows.written, flows.size);
    const js = journeys(flows, 1, 2);
    assert.ok(js.length > 20, `flows from vm1 to vm2: ${js.length}`);
    let notified = 0;
    for (const j of js) {
      const names = j.flatMap((s) => s.slice.name.split(' | '));
      assert.ok(names.includes('netback TX grant copy into Dom0'), names.join(' | '));
      assert.ok(names.includes('netback RX grant copy into the guest, RX response'), names.join(' | '));
      assert.ok(
        names.some((n) => n.includes('Domain-0 stackRx vif1.0') && n.includes('stackTx vif2.0')),
        `the bridge forwards vif1.0 to vif2.0: ${names.join(' | ')}`,
      );
      for (const s of j) {
        assert.ok(ranAt(trace, s.tid, s.ts, s.slice.args?.vcpu), `${s.slice.name}: on the pCPU its vCPU ran on then`);
        if (s.slice.name.startsWith('netback')) assert.match(String(s.slice.args?.vcpu), /d0v\d+$/, `${s.slice.name}: Dom0 work`);
      }
      assert.match(String(j[0]!.slice.args?.vcpu), /d1v0$/, 'sent on vm1’s vCPU');
      assert.match(String(j[j.length - 1]!.slice.args?.vcpu), /d2v0$/, 'delivered on vm2’s vCPU');
      if (names.includes('netback RX notify')) notified++;
    }
    assert.ok(notified > js.length / 2, `most frames of an RR exchange are notified to the receiver by netback: ${notified} of ${js.length}`);
  });

  it('hv2m: a frame goes from the sender’s txStart through Xen’s grant copy on the sender’s own vCPU to the receiver’s rxDeliver, no Dom0 on the way', () => {
    const t = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0, traceEvents: 20000 });
    const { trace, flows } = checkTrace(t.trace!);
    const js = journeys(flows, 2, 1);
    assert.ok(js.length > 20, `flows from vm2 to vm1: ${js.length}`);
    let notified = 0;
    for (const j of js) {
      const sender = j[0]!.slice.args?.vcpu;
      const named = (n: string): Step | undefined => j.find((s) => s.slice.name.split(' | ').includes(n));
      const copy = named('hv2m grant copy into the peer, RX response');
      assert.ok(copy !== undefined, j.map((s) => s.slice.name).join(' | '));
      assert.equal(copy.slice.args?.vcpu, sender, 'the copy ran on the sender’s vCPU');
      assert.ok(ranAt(trace, copy.tid, copy.ts, sender), 'on the pCPU the sender’s vCPU ran on');
      assert.ok(
        j.every((s) => !/d0v\d+$/.test(String(s.slice.args?.vcpu))),
        `no Dom0 step: ${j.map((s) => s.slice.args?.vcpu).join(' ')}`,
      );
      assert.match(String(j[j.length - 1]!.slice.args?.vcpu), /d1v0$/);
      const notify = named('hv2m notify');
      if (notify !== undefined) {
        notified++;
        assert.ok(notify.ts >= copy.ts && ranAt(trace, notify.tid, notify.ts, sender), 'the sender notifies after its copy, on its own vCPU');
      }
    }
    assert.ok(notified > js.length / 2, `most frames of an RR exchange are notified to the receiver: ${notified} of ${js.length}`);
  });

  it('wire: each host’s pCPUs are tracks of their own, and a frame’s flow goes from one host’s tracks to the other’s', () => {
    const t = runCaseWithArtifacts(profile, spec('wire'), { wallMs: () => 0, traceEvents: 20000 });
    const { trace, flows } = checkTrace(t.trace!);
    const names = new Map(
      trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === 0).map((e) => [e.tid, String(e.args?.name)]),
    );
    for (const e of trace.traceEvents) {
      if (e.pid !== 0 || e.ph !== 'B') continue;
      const host = names.get(e.tid)?.split(' ')[0];
      assert.ok(host !== undefined && e.name.startsWith(`${host}:`), `${e.name} on the track of ${names.get(e.tid)}`);
    }
    const across = [...flows.values()].filter(
      (f) => /^h1:d1v/.test(String(f[0]!.slice.args?.vcpu)) && /^h2:d1v/.test(String(f[f.length - 1]!.slice.args?.vcpu)),
    );
    assert.ok(across.length > 20, `flows from h1's guest to h2's: ${across.length}`);
    for (const f of across) {
      const hosts = f.map((s) => names.get(s.tid)!.split(' ')[0]);
      assert.deepEqual([...new Set(hosts)], ['h1', 'h2'], `through h1's pCPUs, then h2's: ${hosts.join(' ')}`);
    }
  });

  it('flows are sampled by --trace-flows (one in every n frames, or none) and following them changes nothing in the model', () => {
    const all = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0, traceEvents: 20000 });
    const third = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0, traceEvents: 20000, traceFlows: 3 });
    const none = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0, traceEvents: 20000, traceFlows: 0 });
    const plain = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0 });
    const n = (x: typeof all): number => checkTrace(x.trace!).flows.size;
    assert.ok(Math.abs(n(third) - n(all) / 3) <= 2, `one in three: ${n(third)} of ${n(all)}`);
    assert.equal(n(none), 0);
    assert.ok(!(JSON.parse(none.trace!) as Trace).traceEvents.some((e) => e.cat === 'frame'), 'no flow slices without flows');
    for (const x of [all, third, none]) assert.deepEqual(x.result, plain.result, 'the trace does not change what the model does');
    for (const path of ['pv', 'shmem', 'emulated']) {
      const traced = runCaseWithArtifacts(profile, spec(path), { wallMs: () => 0, traceEvents: 20000 });
      assert.ok(checkTrace(traced.trace!).flows.size > 10, `${path}: flows`);
      assert.deepEqual(
        traced.result,
        runCaseWithArtifacts(profile, spec(path), { wallMs: () => 0 }).result,
        `${path}: the same with and without the trace`,
      );
    }
  });

  it('the check fails on a flow that does not bind or does not end', () => {
    const t = runCaseWithArtifacts(profile, spec('hv2m'), { wallMs: () => 0, traceEvents: 5000 });
    const trace = JSON.parse(t.trace!) as Trace;
    const firstX = trace.traceEvents.findIndex((e) => e.ph === 'X');
    const unbound = { ...trace, traceEvents: trace.traceEvents.filter((_, i) => i !== firstX) };
    assert.throws(() => checkTrace(JSON.stringify(unbound)), /binds to one slice/);
    const lastF = trace.traceEvents.findLastIndex((e) => e.ph === 'f');
    const unended = { ...trace, traceEvents: trace.traceEvents.filter((_, i) => i !== lastF) };
    assert.throws(() => checkTrace(JSON.stringify(unended)), /one start, steps, one end|a start and an end/);
  });
});
