export * from './common.js';
export * from './ping.js';
export * from './rr.js';
export * from './stream.js';
