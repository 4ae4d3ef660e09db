export * from './policy.js';
export * from './discoveryd.js';
