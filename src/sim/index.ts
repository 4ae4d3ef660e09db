// The simulation kernel's public surface.
export { AllOf, AnyOf, type AnyOfResult } from './condition.js';
export { Deque } from './deque.js';
export { SimEnvironment, type Env, type RunOptions } from './environment.js';
export { LATE, NORMAL, URGENT } from './event-queue.js';
export { Interrupt, SimEvent, Timeout } from './event.js';
export { Process, wait, type ProcessGenerator } from './process.js';
export { Request, Resource } from './resource.js';
export { Rng } from './rng.js';
export { Store } from './store.js';
export { MS, NS, S, US, formatTime, isTime, type Time } from './time.js';
export { KernelThread, ThreadCpu, type ThreadCosts } from './threads.js';
export { MovableCpu } from './movable-cpu.js';
export { Timer } from './timer.js';
export { TraceBus, TracePoint, tracePoint, type TraceListener } from './trace.js';
export {
  EXEC_CONTEXTS,
  PRIO_IRQ,
  PRIO_KERNEL,
  PRIO_SOFTIRQ,
  PRIO_TASK,
  SimpleCpu,
  Work,
  WorkQueue,
  checkWork,
  defaultPriority,
  type ExecContext,
  type Executor,
} from './work.js';
