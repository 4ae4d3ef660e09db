import { PathRegistry } from './path.js';

/** Every I/O path this build has, registered under its name. */
export function defaultPaths(): PathRegistry {
  return new PathRegistry();
}
