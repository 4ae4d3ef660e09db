/** `npm run bench:notify`: event-channel notify latency across domains vs Dall et al. (see notify-latency.ts). */
import { Profile } from '../profile/index.js';
import { formatNotifyLatency, measureNotifyLatency } from './notify-latency.js';

const profile = Profile.load(process.env.HV2M_PROFILE ?? 'default');
console.log(formatNotifyLatency(measureNotifyLatency(profile), profile.clockGHz));
