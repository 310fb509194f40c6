/**
 * The server process of `npm run bench`, one per measured target, so that its CPU time is its
 * own: `node --import tsx tools/bench/server.ts --mode poolgraph|unpooled|raw`.
 *
 * - `poolgraph`: the server `npm start` runs: `createServer` with the options `src/main.ts` passes
 *   (pool, read replica, limits, persisted documents, batching, metrics with prom-client's default
 *   metrics, readiness, all from the same environment variables), its pool warmed up to `POOL_SIZE`, on
 *   `createDrainableHttpServer`. Keep it in step with `src/main.ts`.
 * - `unpooled`: the same server on a `pg.Pool` with `maxUses: 1`: pg-pool destroys each connection
 *   when it is released, so every request that runs SQL opens a new connection (TCP, startup,
 *   SCRAM authentication) and closes it afterwards. `max` stays `POOL_SIZE + POOL_MAX_OVERFLOW`,
 *   so it is bounded like the pooled server.
 * - `raw`: the no-GraphQL baseline of `raw-server.ts` on a pool made by the same `createPool`.
 *
 * Authentication is configured from the environment as in `npm start` (`AUTH_*`): the bench sets
 * `AUTH_JWT_SECRET`, so every poolgraph server runs in `AUTH_MODE=jwt`, and `DATABASE_URL` logs in
 * as `poolgraph_app` (see `database.ts`).
 *
 * It reads `DATABASE_URL` and the pool settings from the environment, listens on 127.0.0.1 on a
 * free port and prints `bench-server-ready {"port":N}`. `GET /__bench/stats` answers the requests
 * that ran SQL and their statements (poolgraph: from `onScopeReleased`, whose `statements` counts what
 * the scope sent, one per round trip: a `set_config` pipelined before a statement is not counted). With `BENCH_PROFILE_FILE` it
 * profiles its main thread between `POST /__bench/profile/start` and `/stop`. SIGTERM drains and
 * exits 0.
 */
// First, before graphql-js loads, as in src/main.ts.
import '../../src/operating/production-mode.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { collectDefaultMetrics } from 'prom-client';
import { createServer } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { APPLICATION_NAME, createPool, warmUpPool } from '../../src/db/pools/pool.js';
import { createDrainableHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/logger.js';
import { readPersistedDocumentsManifest } from '../../src/graphql/persisted-documents-manifest.js';
import { createProfileHandler } from './profiler.js';
import { READY_PREFIX, STATS_PATH } from './protocol.js';
import { createRawHandler, type ServerCounters } from './raw-server.js';

const { values } = parseArgs({ options: { mode: { type: 'string' } } });
const mode = values.mode;
if (mode !== 'poolgraph' && mode !== 'unpooled' && mode !== 'raw') {
  process.stderr.write('bench server: --mode must be poolgraph, unpooled or raw\n');
  process.exit(2);
}

const config = loadConfig();
if (!config.databaseUrl) {
  process.stderr.write('bench server: DATABASE_URL must be set (the bench passes it)\n');
  process.exit(2);
}
const settings = { ...config.pool, connectionString: config.databaseUrl };
const logger = createLogger(config.logLevel);
const counters: ServerCounters = { requests: 0, statements: 0 };

let listener: (req: IncomingMessage, res: ServerResponse) => unknown;
let pool: pg.Pool;
let close: () => Promise<void>;
if (mode === 'raw') {
  pool = createPool(settings, logger);
  listener = createRawHandler(pool, counters);
  close = () => pool.end();
} else {
  // The unpooled pool is lent to the server; the pooled one the server makes itself, as in main.ts.
  const unpooled =
    mode === 'unpooled'
      ? new pg.Pool({
          connectionString: settings.connectionString,
          application_name: APPLICATION_NAME,
          max: settings.size + settings.maxOverflow,
          maxUses: 1,
          connectionTimeoutMillis: settings.timeoutMs,
          statement_timeout: settings.statementTimeoutMs,
          keepAlive: true,
        })
      : undefined;
  unpooled?.on('error', (error) => logger.warn({ err: error }, 'an idle connection failed'));
  const { mode: documentsMode, manifestPath } = config.persistedDocuments;
  const server = createServer({
    database: unpooled ?? settings,
    // As in main.ts: query operations on the read replica when DATABASE_REPLICA_URL is set.
    ...(config.replicaUrl ? { replica: { ...config.pool, connectionString: config.replicaUrl } } : {}),
    logger,
    persistedDocuments: {
      mode: documentsMode,
      documents: readPersistedDocumentsManifest(manifestPath, documentsMode === 'only'),
    },
    batchLimit: config.httpBatchLimit,
    fastPath: config.fastPath,
    limits: config.limits,
    metrics: { enabled: config.metrics.enabled, endpoint: config.metrics.port === undefined ? '/metrics' : false },
    readiness: config.readiness,
    // AUTH_JWT_SECRET (set by the bench) → AUTH_MODE=jwt: a token is verified (then cached) and its
    // claims pipelined with the request's statement as set_config('request.jwt.claims', ...).
    auth: config.auth,
    // As in main.ts: subscriptions (W6) on one LISTEN connection, at most MAX_SUBSCRIPTIONS.
    live: { listenUrl: config.live.listenUrl, maxSubscriptions: config.live.maxSubscriptions, tickMs: config.live.tickMs },
    // Requests that used the database: one the load generator cut off before its first statement
    // ran none, and must not lower the statements per request.
    onScopeReleased(stats) {
      if (stats.connectionsTaken === 0) return;
      counters.requests += 1;
      counters.statements += stats.statements;
    },
  });
  if (server.metrics) collectDefaultMetrics({ register: server.metrics });
  if (server.replicaPool) {
    await warmUpPool(server.replicaPool, config.pool.size).catch((error: unknown) => server.replicaRouter?.markDown(error));
  }
  pool = server.pool;
  listener = server.requestListener;
  close = async () => {
    await server.close();
    await unpooled?.end();
  };
}
if (mode !== 'unpooled') await warmUpPool(pool, config.pool.size);

const profileRequest = createProfileHandler(process.env.BENCH_PROFILE_FILE);

const http = createDrainableHttpServer((req, res) => {
  if (req.url === STATS_PATH) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(counters));
    return;
  }
  if (profileRequest(req, res)) return;
  return listener(req, res);
});
const port = await http.listen(0, '127.0.0.1');
process.stdout.write(`${READY_PREFIX}${JSON.stringify({ port })}\n`);

process.once('SIGTERM', () => {
  const draining = http.drain(5_000);
  void draining.done
    .then(close)
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`bench server: shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
});
