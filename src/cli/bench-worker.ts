/**
 * A worker thread of `hv2m bench` (tinypool): runs one case and returns its result and the
 * captures asked for. The profile is loaded once per worker; the wall clock is read here, in
 * the harness, for the simulator's speed only.
 */
import { Profile } from '../profile/index.js';
import { runCaseWithArtifacts, type CaseArtifacts, type CaseSpec } from '../bench/experiment.js';

export interface CaseTask {
  /** Profile name or file, as given to --profile. */
  profile: string;
  spec: CaseSpec;
  pcap: boolean;
  /** Chrome trace events to record; 0 for none. */
  traceEvents: number;
  /** In the trace, follow one in every this many frames (0: none). */
  traceFlows: number;
}

export type CaseOutput = CaseArtifacts;

const profiles = new Map<string, Profile>();

export default function runTask(task: CaseTask): CaseOutput {
  let p = profiles.get(task.profile);
  if (p === undefined) {
    p = Profile.load(task.profile);
    profiles.set(task.profile, p);
  }
  try {
    return runCaseWithArtifacts(p, task.spec, {
      wallMs: () => performance.now(),
      pcap: task.pcap,
      traceEvents: task.traceEvents,
      traceFlows: task.traceFlows,
    });
  } catch (e) {
    const s = task.spec;
    throw new Error(`case ${s.path} ${s.test} ${s.size} (seed ${s.seed}): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, {
      cause: e,
    });
  }
}
