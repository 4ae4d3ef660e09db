// Xen's public ABI, mirrored: constants, layouts and status codes with Xen's names.
export * from './xen.js';
export * from './grant-table.js';
export * from './event-channel.js';
export * from './hvm.js';
export * from './memory.js';
export * from './ring.js';
export * from './netif.js';
export * from './xenbus.js';
