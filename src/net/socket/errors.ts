import { wait, type SimEvent } from '../../sim/index.js';
import type { Stack } from '../stack.js';

/** Socket call failures, named as errno values (what a Linux application would see). */
export type SocketErrorCode =
  | 'ECONNREFUSED'
  | 'ECONNRESET'
  | 'ETIMEDOUT'
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  | 'ENOTCONN'
  | 'EPIPE'
  | 'EHOSTUNREACH'
  | 'EMSGSIZE'
  | 'EINVAL'
  | 'EISCONN'
  | 'EAGAIN';

export class SocketError {
  constructor(
    readonly code: SocketErrorCode,
    readonly message: string,
  ) {}
  toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isSocketError(v: unknown): v is SocketError {
  return v instanceof SocketError;
}

/**
 * Blocks the calling task on `ev` and, when woken, charges the wake-up and context switch
 * to the guest CPU (the cost of having slept rather than spun).
 */
export function* sleepOn<T>(stack: Stack, ev: SimEvent<T>): Generator<SimEvent<unknown>, T, unknown> {
  const v = yield* wait(ev);
  yield stack.cpu.exec(stack.costs.wakeup, 'kernel');
  return v;
}

/** Charges a system call plus copying `bytes` between user and kernel memory. */
export function syscallCost(stack: Stack, bytes: number): number {
  return stack.costs.syscall + Math.round(bytes * stack.costs.copyPerByte);
}

/** Succeeds a waiter if there is one; returns null to store back (`this.reader = wake(this.reader)`). */
export function wake(ev: SimEvent<void> | null): null {
  if (ev !== null) ev.succeed();
  return null;
}
