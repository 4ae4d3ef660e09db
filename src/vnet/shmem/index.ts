export * from './fifo.js';
export * from './costs.js';
export * from './shmem-end.js';
export * from './shmem-channel.js';
export * from './module.js';
export * from './shmem-path.js';
