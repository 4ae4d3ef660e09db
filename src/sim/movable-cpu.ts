import type { SimEvent } from './event.js';
import type { Time } from './time.js';
import type { ExecContext, Executor } from './work.js';

/**
 * A guest kernel's view of one of its CPUs: the executor its stack, threads and applications
 * submit work to, bound to the virtual CPU that runs it now. Live migration rebinds it to the
 * same-numbered vCPU of the guest's new domain on another host (src/host/migration.ts), so
 * the kernel's objects — sockets, timers, queues — keep their CPU while what is under it
 * changes, as a Linux guest's per-CPU state survives a suspend/resume onto other hardware.
 * Work already queued when it moves is moved by the migration (its remaining time, in order).
 */
export class MovableCpu implements Executor {
  constructor(private target: Executor) {}

  /** The CPU it runs on now. */
  get current(): Executor {
    return this.target;
  }

  exec(ns: Time, ctx: ExecContext, priority?: number): SimEvent<void> {
    return this.target.exec(ns, ctx, priority);
  }

  rebind(to: Executor): void {
    this.target = to;
  }
}
