export * from './policy.js';
export * from './discoveryd.js';
export * from './table-watch.js';
export * from './handshake.js';
export * from './module.js';
export * from './channel.js';
export * from './costs.js';
export * from './hv2m-path.js';
