import { PathRegistry } from './path.js';
import { EmulatedPath } from './emulated/index.js';
import { PvPath } from './pv/index.js';
import { Hv2mPath } from './hv2m/index.js';
import { SriovPath } from './sriov/index.js';
import { ShmemPath } from './shmem/index.js';

/** Every I/O path this build has, registered under its name. */
export function defaultPaths(): PathRegistry {
  return new PathRegistry()
    .register(new PvPath())
    .register(new EmulatedPath())
    .register(new Hv2mPath())
    .register(new ShmemPath())
    .register(new SriovPath());
}
