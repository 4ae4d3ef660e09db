import type { Command } from 'commander';
import { XenStoreDaemon, isRealDomid } from '../xen/xenstore/index.js';

interface XenstoredOptions {
  socket: string;
  verbose?: boolean;
  introduce?: string;
  maxQueuedBytes?: string;
}

function parseDomids(list: string): number[] {
  return list.split(',').map((s) => {
    const n = /^[0-9]+$/.test(s.trim()) ? Number(s.trim()) : NaN;
    if (!isRealDomid(n) || n === 0) throw new Error(`--introduce: "${s}" is not a domain id from 1 to 32751`);
    return n;
  });
}

/**
 * `hv2m xenstored --socket PATH`: the XenStore daemon on a Unix socket, speaking the real wire
 * protocol, for Debian's xenstore-utils (`XENSTORED_PATH=PATH xenstore-ls /`).
 */
export function registerXenstoredCommand(program: Command): void {
  program
    .command('xenstored')
    .description('run the XenStore daemon on a Unix socket (clients: XENSTORED_PATH=PATH xenstore-ls /)')
    .requiredOption('--socket <path>', 'Unix socket to listen on')
    .option('--introduce <domids>', 'comma-separated domain ids to introduce at start, as the toolstack would (e.g. 1,2)')
    .option('--max-queued-bytes <n>', 'drop a client that leaves more than n bytes of replies and events unread', '1048576')
    .option('-v, --verbose', 'log every request and its result')
    .action(async (opts: XenstoredOptions) => {
      const maxQueued = /^[0-9]+$/.test(opts.maxQueuedBytes ?? '') ? Number(opts.maxQueuedBytes) : NaN;
      if (!Number.isSafeInteger(maxQueued)) throw new Error(`--max-queued-bytes: "${opts.maxQueuedBytes}" is not a number of bytes`);
      const domids = opts.introduce === undefined ? [] : parseDomids(opts.introduce);
      const daemon = new XenStoreDaemon({
        socketPath: opts.socket,
        verbose: opts.verbose === true,
        maxQueuedBytes: maxQueued,
        log: (line) => process.stderr.write(`xenstored: ${line}\n`),
      });
      for (const d of domids) daemon.store.introduceDomain(d);
      // Handlers first: a signal that arrives as soon as the socket is announced still
      // gets a clean shutdown.
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`xenstored: ${signal}, shutting down\n`);
        daemon.stop().then(
          () => process.exit(0),
          (e: unknown) => {
            process.stderr.write(`xenstored: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      await daemon.start();
    });
}
