/**
 * What every peer server process does for the bench, apart from serving GraphQL: the protocol of
 * tools/bench/protocol.ts (a ready line with the port, `GET /__bench/stats`, exit 0 on SIGTERM).
 * None of it is what a user of the peer would write; it is kept here so each server file shows
 * only the peer's own code.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createProfileHandler } from '../../profiler.js';
import { READY_PREFIX, STATS_PATH } from '../../protocol.js';

/**
 * What a peer has done, as `GET /__bench/stats` reports it: the requests that ran SQL and the
 * SQL statements sent (every statement, `begin`, `set_config` and `commit` included).
 */
export interface BenchCounters {
  requests: number;
  statements: number;
}

/** A Node request listener, as `http.createServer` takes it. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * An HTTP server that answers `GET /__bench/stats` and the profile endpoint (profiler.ts) itself
 * and hands every other request to `listener` (the peer's own handler).
 */
export function createBenchHttpServer(listener: RequestListener, counters: BenchCounters): Server {
  // With BENCH_PROFILE_FILE, the bench profiles the peer over the measured window, as poolgraph.
  const profileRequest = createProfileHandler(process.env.BENCH_PROFILE_FILE);
  return createServer((req, res) => {
    if (profileRequest(req, res)) return;
    if (req.url === STATS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(counters));
      return;
    }
    listener(req, res);
  });
}

/** Listens on 127.0.0.1 on a free port; resolves with the port. */
export function listenOnFreePort(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      // Listening: a later error is the server's, not this promise's (which would swallow it).
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('the server has no TCP address'));
      else resolve(address.port);
    });
  });
}

/** Prints the line the bench waits for (`bench-server-ready {"port":N}`). */
export function announceReady(port: number): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify({ port })}\n`);
}

/** How long a SIGTERM waits for `close` before the process exits anyway. */
const CLOSE_WAIT_MS = 5_000;

/**
 * On SIGTERM: stops accepting connections, runs `close` (the peer's own shutdown, then its pool's
 * end), and exits 0; exits 1 when `close` fails. A `close` that hangs (a connection still lent
 * out) does not keep the process: the bench would kill it 15 s later anyway.
 */
export function exitOnSigterm(server: Server, close: () => Promise<void>): void {
  process.once('SIGTERM', () => {
    server.close();
    server.closeIdleConnections();
    const timer = setTimeout(() => process.exit(0), CLOSE_WAIT_MS);
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        clearTimeout(timer);
        process.stderr.write(`peer server: shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
}
