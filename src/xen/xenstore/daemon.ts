import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_TYPE_NAMES } from '../abi/xs-wire.js';
import { XsSession, describeRequest } from './server.js';
import { XenStore } from './store.js';
import { XsReassembler, bytesToLatin1, encodeMessage, type XsMessage } from './wire.js';

export interface DaemonOptions {
  /** Path of the Unix socket (what clients find through XENSTORED_PATH). */
  readonly socketPath: string;
  /** One line per connection open/close, per protocol error, and (verbose) per request. */
  readonly log: (line: string) => void;
  readonly verbose?: boolean;
  /**
   * Bytes a client may leave unread — replies in the socket's buffer plus events waiting to be
   * sent — before the daemon drops it: a client that never reads cannot grow its memory.
   */
  readonly maxQueuedBytes?: number;
  /** The store to serve (default: a fresh one). */
  readonly store?: XenStore;
}

/** Longest path `struct sockaddr_un` holds, with its NUL. */
const SUN_PATH_MAX = 108;
const DEFAULT_MAX_QUEUED = 1024 * 1024;
/** Events moved to the socket per round; more wait for 'drain'. */
const EVENT_BATCH = 64;

interface Client {
  readonly id: number;
  readonly socket: Socket;
  readonly session: XsSession;
  readonly input: XsReassembler;
  /** Why the daemon ended it, if it did. */
  dropped: string | undefined;
  /** A socket error that ended it. */
  socketError: string | undefined;
}

/**
 * xenstored on a Unix socket: the wire protocol (xen-abi.md §1.1) over each client's stream,
 * served by XsSession. Socket clients are dom0 (privileged), as in xenstored. A client that
 * breaks the framing (length > 4096) or stops reading is dropped; the others go on.
 */
export class XenStoreDaemon {
  readonly store: XenStore;
  private readonly clients = new Set<Client>();
  private server: Server | undefined;
  private nextId = 1;
  private readonly maxQueued: number;

  constructor(private readonly options: DaemonOptions) {
    this.store = options.store ?? new XenStore();
    this.maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED;
    if (!Number.isSafeInteger(this.maxQueued) || this.maxQueued < XENSTORE_PAYLOAD_MAX) {
      throw new RangeError(`max queued bytes ${this.maxQueued} must be an integer of at least ${XENSTORE_PAYLOAD_MAX}`);
    }
  }

  get connectionCount(): number {
    return this.clients.size;
  }

  /** Listens on the socket path; rejects with a message naming the problem. */
  async start(): Promise<void> {
    const path = this.options.socketPath;
    if (Buffer.byteLength(path) >= SUN_PATH_MAX) {
      throw new Error(`socket path ${path} is ${Buffer.byteLength(path)} bytes; a Unix socket path must be shorter than ${SUN_PATH_MAX}`);
    }
    const dir = dirname(path);
    if (!existsSync(dir)) throw new Error(`cannot listen on ${path}: directory ${dir} does not exist`);
    await this.clearStaleSocket(path);
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${path}: ${e.message}`, { cause: e })));
      server.listen(path, () => resolve());
    });
    server.on('error', (e) => this.options.log(`listener error: ${e.message}`));
    this.server = server;
    this.options.log(`listening on ${path}`);
  }

  /** Stops listening, closes every client and removes the socket file. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of this.clients) c.socket.destroy();
    await closed;
    try {
      if (lstatSync(this.options.socketPath).isSocket()) unlinkSync(this.options.socketPath);
    } catch {
      // Already gone.
    }
    this.options.log('stopped');
  }

  /**
   * An existing socket file is either a live daemon's (refuse) or a stale one left by a daemon
   * that died (remove it). Anything else at the path is not ours to replace.
   */
  private async clearStaleSocket(path: string): Promise<void> {
    let isSocket: boolean;
    try {
      isSocket = lstatSync(path).isSocket();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot check socket path ${path}: ${(e as Error).message}`, { cause: e });
    }
    if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    const live = await new Promise<boolean>((resolve) => {
      const probe = connect(path);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (live) throw new Error(`${path} is in use: another daemon accepted a connection on it`);
    unlinkSync(path);
    this.options.log(`removed stale socket ${path}`);
  }

  private accept(socket: Socket): void {
    const client: Client = {
      id: this.nextId++,
      socket,
      session: new XsSession(this.store, 0),
      input: new XsReassembler(),
      dropped: undefined,
      socketError: undefined,
    };
    this.clients.add(client);
    this.options.log(`conn ${client.id}: open`);
    client.session.onEventsPending = () => this.flushEvents(client);
    socket.on('data', (chunk: Buffer) => this.receive(client, chunk));
    socket.on('drain', () => this.flushEvents(client));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      client.socketError = e.code ?? e.message;
    });
    socket.on('close', () => {
      this.clients.delete(client);
      client.session.close();
      const partial = client.input.pending > 0 ? `, ${client.input.pending} bytes of an incomplete message discarded` : '';
      const why = client.dropped !== undefined ? ' by the daemon' : client.socketError !== undefined ? ` (${client.socketError})` : '';
      this.options.log(`conn ${client.id}: closed${why}${partial}`);
    });
  }

  private receive(client: Client, chunk: Buffer): void {
    if (client.dropped !== undefined) return;
    const { messages, error } = client.input.push(chunk);
    for (const m of messages) {
      if (client.dropped !== undefined) return;
      let out: XsMessage[];
      try {
        out = client.session.handle(m);
      } catch (e) {
        // A bug in the model, not the client's doing: say so, and keep serving the others.
        this.drop(client, `internal error on ${describeRequest(m)}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        return;
      }
      this.report(client, m, out);
      for (const o of out) this.send(client, o);
    }
    if (error !== undefined) {
      const name = XS_TYPE_NAMES[error.type] ?? `type ${error.type}`;
      this.drop(client, `protocol error: ${name} message announces ${error.len} payload bytes, more than ${XENSTORE_PAYLOAD_MAX}`);
    }
  }

  private report(client: Client, req: XsMessage, out: readonly XsMessage[]): void {
    const reply = out.find((o) => o.type === req.type || o.type === XS_ERROR);
    const error = reply?.type === XS_ERROR ? bytesToLatin1(reply.payload).replace(/\0$/, '') : undefined;
    if (error === 'ENOSYS')
      this.options.log(`conn ${client.id}: protocol error: ${describeRequest(req)} is not a request this daemon serves (ENOSYS)`);
    else if (this.options.verbose === true) this.options.log(`conn ${client.id}: ${describeRequest(req)} -> ${error ?? 'OK'}`);
  }

  private send(client: Client, m: XsMessage): void {
    if (client.dropped !== undefined) return;
    client.socket.write(encodeMessage(m));
    this.checkBacklog(client);
  }

  private flushEvents(client: Client): void {
    while (client.dropped === undefined && !client.socket.writableNeedDrain && client.session.pendingEventBytes > 0) {
      for (const ev of client.session.takeEvents(EVENT_BATCH)) client.socket.write(encodeMessage(ev));
    }
    this.checkBacklog(client);
  }

  private checkBacklog(client: Client): void {
    const queued = client.socket.writableLength + client.session.pendingEventBytes;
    if (client.dropped === undefined && queued > this.maxQueued) {
      this.drop(client, `client left ${queued} bytes of replies and events unread, more than ${this.maxQueued}`);
    }
  }

  private drop(client: Client, reason: string): void {
    if (client.dropped !== undefined) return;
    client.dropped = reason;
    this.options.log(`conn ${client.id}: dropping connection: ${reason}`);
    client.socket.destroy();
  }
}
