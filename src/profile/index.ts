export { ENTRIES, type BytesEntry, type CountEntry, type EntryName, type PerByteEntry, type RatioEntry, type TimeEntry } from './entries.js';
export { Profile, ProfileError, bytesTime, profilesDir, type ProfileEntry, type ProfileFile } from './profile.js';
export { UNITS, toInternal, unitsOf, type Dimension } from './units.js';
