/**
 * Helpers for the XenStore tests: result unwrapping, a raw wire client, and the built daemon
 * run as a child process. Not used by the model.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { XsErrorName } from '../abi/xs-wire.js';
import type { XsConnection } from './connection.js';
import type { XsResult } from './result.js';
import { XenStore } from './store.js';
import { XsReassembler, encodeMessage, latin1ToBytes, type XsMessage } from './wire.js';

/** A store with `domids` introduced, and a dom0 connection. */
export function storeWith(...domids: number[]): { store: XenStore; dom0: XsConnection } {
  const store = new XenStore();
  for (const d of domids) store.introduceDomain(d);
  return { store, dom0: store.connect(0) };
}

export function val<T>(r: XsResult<T>): T {
  if (!r.ok) assert.fail(`expected success, got ${r.error}`);
  return r.value;
}

export function err(r: XsResult<unknown>): XsErrorName | 'ok' {
  return r.ok ? 'ok' : r.error;
}

export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
/** A payload from a string, one byte per character (NULs written as `\0`). */
export const bytes = (s: string): Uint8Array => latin1ToBytes(s);
export const msg = (type: number, payload: string | Uint8Array, reqId = 0, txId = 0): XsMessage => ({
  type,
  reqId,
  txId,
  payload: typeof payload === 'string' ? bytes(payload) : payload,
});

// ---- the daemon as a child process ----

const distCli = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cli', 'main.js');

export interface RunningDaemon {
  readonly dir: string;
  readonly socketPath: string;
  readonly proc: ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, wait for exit, remove the temp dir. */
  stop(): Promise<number | string>;
}

/**
 * Starts `node dist/cli/main.js xenstored --socket <dir>/xs.sock` and waits until it listens.
 * Without `sharedDir` it makes a temp dir, removed again by stop() or a failed start.
 */
export async function startDaemon(extraArgs: string[] = [], sharedDir?: string): Promise<RunningDaemon> {
  const dir = sharedDir ?? mkdtempSync(join(tmpdir(), 'hv2m-xs-'));
  const cleanup = (): void => {
    if (sharedDir === undefined) rmSync(dir, { recursive: true, force: true });
  };
  const socketPath = join(dir, 'xs.sock');
  const proc = spawn(process.execPath, [distCli, 'xenstored', '--socket', socketPath, ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((res) => proc.on('exit', (code, signal) => res(code ?? signal ?? -1)));
  // Poll up to 10 s (no wall clock outside cli/ and tests: count the polls).
  for (let polls = 0; !err.includes('listening on'); polls++) {
    if (proc.exitCode !== null || polls > 500) {
      proc.kill('SIGKILL');
      cleanup();
      throw new Error(`daemon did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async (): Promise<number | string> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    const code = await exited;
    clearTimeout(timer);
    cleanup();
    return code;
  };
  return { dir, socketPath, proc, stderr: () => err, exited, stop };
}

export function daemonAlive(d: RunningDaemon): boolean {
  return d.proc.exitCode === null && d.proc.signalCode === null && existsSync(d.socketPath);
}

// ---- a raw wire client ----

/** A socket client that sends raw bytes and reads whole messages, with timeouts. */
export class RawClient {
  private readonly input = new XsReassembler();
  private readonly queue: XsMessage[] = [];
  private waiter: (() => void) | undefined;
  private _closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(...this.input.push(chunk).messages);
      this.waiter?.();
    });
    socket.on('close', () => {
      this._closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((res, rej) => {
      const s = connect(path);
      s.once('connect', () => res(new RawClient(s)));
      s.once('error', rej);
    });
  }

  get closed(): boolean {
    return this._closed;
  }

  sendRaw(b: Uint8Array): void {
    this.socket.write(b);
  }

  send(m: XsMessage): void {
    this.socket.write(encodeMessage(m));
  }

  /** The next message from the daemon (reply or event). */
  async next(timeoutMs = 5000): Promise<XsMessage> {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      this.waiter?.();
    }, timeoutMs);
    try {
      while (this.queue.length === 0) {
        if (this._closed) throw new Error('connection closed by the daemon');
        if (timedOut) throw new Error(`no message within ${timeoutMs} ms`);
        await new Promise<void>((res) => (this.waiter = res));
        this.waiter = undefined;
      }
    } finally {
      clearTimeout(t);
    }
    return this.queue.shift()!;
  }

  /** Sends a request and returns the messages up to and including its reply. */
  async request(m: XsMessage): Promise<{ reply: XsMessage; events: XsMessage[] }> {
    this.send(m);
    const events: XsMessage[] = [];
    for (;;) {
      const r = await this.next();
      if (r.type === 15) events.push(r);
      else return { reply: r, events };
    }
  }

  /** Resolves true once the daemon has closed the connection (false on timeout). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    for (let waited = 0; !this._closed && waited < timeoutMs; waited += 10) await new Promise((r) => setTimeout(r, 10));
    return this._closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
