// First, before graphql-js loads (see the module).
import { NODE_ENV_SET_BY_USER } from './operating/production-mode.js';
import type { Logger } from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { createServer } from './app.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { roleOf } from './db/setup/app-role.js';
import { checkConnectionBudget } from './db/setup/connection-budget.js';
import { migrateToLatest } from './db/setup/migrate.js';
import { withOneConnection } from './db/setup/one-connection.js';
import { describeDatabaseUrl, openDatabase } from './db/setup/open-database.js';
import { waitForDatabase } from './db/setup/wait-for-database.js';
import { warmUpPool } from './db/pools/pool.js';
import { DEFAULT_SEED_SIZE, isEmpty, seed } from './db/setup/seed.js';
import { createDrainableHttpServer } from './http/http-server.js';
import { attachGraphqlWs } from './graphql/subscriptions/websocket.js';
import { createProcessOutput, resolveLogFormat } from './logger.js';
import { createMetricsListener } from './operating/metrics/metrics-listener.js';
import { readPersistedDocumentsManifest } from './graphql/persisted-documents-manifest.js';

/**
 * The process entry of `npm start`: configuration → database (embedded unless `DATABASE_URL`)
 * → migrations (and the seed, for an empty embedded database) → pool → app → listen. On SIGINT
 * or SIGTERM it stops accepting connections, lets requests in flight finish (at most
 * `SHUTDOWN_TIMEOUT_MS`), ends the pool, stops the embedded database and exits 0.
 */
async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, NODE_ENV: NODE_ENV_SET_BY_USER });
  const { logger, print } = createProcessOutput(config.logLevel, resolveLogFormat(config.logFormat, process.stdout.isTTY === true));
  const { mode, manifestPath } = config.persistedDocuments;
  const persistedDocuments = { mode, documents: readPersistedDocumentsManifest(manifestPath, mode === 'only') };
  // Listen for signals before anything starts: a SIGTERM while the embedded database starts or
  // migrations run must still stop that database (the `finally` below), not kill the process.
  const shutdown = new ShutdownSignal();
  const database = await openDatabase(config, logger);
  try {
    await waitForDatabase(database.url, {
      timeoutMs: config.databaseConnectTimeoutMs,
      logger,
      cancelled: () => shutdown.requested !== undefined,
    });
    const applied = await migrateToLatest(database.ownerUrl);
    if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');
    if (database.embedded && !shutdown.requested) await seedIfEmpty(database.ownerUrl, logger);
    if (shutdown.requested) return;
    await checkWhoMayWrite(config.auth, database.url, logger);

    const server = createServer({
      database: { ...config.pool, connectionString: database.url },
      // Query operations on the replica; it need not answer at start (see below).
      ...(config.replicaUrl ? { replica: { ...config.pool, connectionString: config.replicaUrl } } : {}),
      logger,
      persistedDocuments,
      batchLimit: config.httpBatchLimit,
      fastPath: config.fastPath,
      limits: config.limits,
      // With METRICS_PORT, /metrics is served only there (below), not to the app's clients.
      metrics: { enabled: config.metrics.enabled, endpoint: config.metrics.port === undefined ? '/metrics' : false },
      readiness: config.readiness,
      auth: { mode: config.auth.mode, tokens: config.auth.tokens },
      live: {
        listenUrl: config.live.listenUrl,
        maxSubscriptions: config.live.maxSubscriptions,
        retentionS: config.live.retentionS,
        tickMs: config.live.tickMs,
      },
    });
    // CPU, memory, event-loop delay, GC: about this process, so added here rather than by createServer.
    if (server.metrics) collectDefaultMetrics({ register: server.metrics });
    const http = createDrainableHttpServer(server.requestListener);
    // graphql-ws on the same port and path; SSE is served by graphql-yoga itself.
    const webSockets = server.live ? attachGraphqlWs(http.server, server.yoga, persistedDocuments) : undefined;
    const metricsHttp =
      server.metrics && config.metrics.port !== undefined
        ? createDrainableHttpServer(createMetricsListener(server.metrics))
        : undefined;
    // From here on the pools, the replica router and both listeners are closed on every path: a
    // failed warm-up, a port in use or a signal during the start as much as a normal shutdown.
    try {
      await warmUpPool(server.pool, config.pool.size);
      // A replica that does not answer at start does not stop the start: reads go to the primary
      // (one warning) until the router's probe finds the replica answering.
      if (server.replicaPool) {
        await warmUpPool(server.replicaPool, config.pool.size).catch((error: unknown) => server.replicaRouter?.markDown(error));
      }
      const max = config.pool.size + config.pool.maxOverflow;
      // Subscriptions' one LISTEN connection counts too: beside the primary's pool, or on its own
      // URL when it bypasses a pooler (DATABASE_LISTEN_URL).
      const listenUrl = server.live ? (config.live.listenUrl ?? database.url) : undefined;
      await checkConnectionBudget(
        [
          { name: 'primary', max: max + (listenUrl === database.url ? 1 : 0), url: database.url, open: server.pool.totalCount },
          ...(listenUrl !== undefined && listenUrl !== database.url ? [{ name: 'listener', max: 1, url: listenUrl }] : []),
          ...(server.replicaPool && config.replicaUrl
            ? [{ name: 'replica', max, url: config.replicaUrl, open: server.replicaPool.totalCount }]
            : []),
        ],
        { logger, pooler: config.pool.pooler ?? 'none' },
      );
      const metricsPort =
        metricsHttp && !shutdown.requested
          ? await metricsHttp.listen(config.metrics.port ?? 0, config.host, 'METRICS_PORT')
          : undefined;
      const port = shutdown.requested ? undefined : await http.listen(config.port, config.host);
      if (port === undefined || shutdown.requested) return;
      const primaryAt = database.embedded
        ? `embedded PostgreSQL in ${database.embedded.dataDir}`
        : describeDatabaseUrl(database.url);
      const replicaAt = config.replicaUrl ? describeDatabaseUrl(config.replicaUrl) : undefined;
      const where = replicaAt ? `${primaryAt}, queries on the read replica ${replicaAt}` : primaryAt;
      logger.info({ port, metricsPort, database: primaryAt, replica: replicaAt, pool: config.pool }, 'poolgraph is serving');
      const { size, maxOverflow, timeoutMs, statementTimeoutMs } = config.pool;
      const metricsAt = !server.metrics
        ? 'off (METRICS_ENABLED=false)'
        : `http://localhost:${metricsPort ?? port}/metrics`;
      print(
        `\npoolgraph: GraphiQL at http://localhost:${port}${server.yoga.graphqlEndpoint}\n` +
          `  database: ${where}\n` +
          `  pool:     ${size} kept open + ${maxOverflow} overflow (max ${size + maxOverflow}), ` +
          `wait ≤ ${timeoutMs} ms, statements ≤ ${statementTimeoutMs || '∞'} ms\n` +
          `  writes:   ${config.auth.mode === 'open' ? 'ANYONE may create, change and delete items (AUTH_MODE=open)' : 'need a verified token; rows are changed only by their owner or an admin (AUTH_MODE=jwt)'}\n` +
          `  probes:   http://localhost:${port}/health (alive), http://localhost:${port}/ready (ready)\n` +
          `  metrics:  ${metricsAt}\n` +
          `  stop:     Ctrl-C (or SIGTERM)\n\n`,
      );

      const signal = await shutdown.received;
      logger.info({ signal }, 'shutting down: finishing requests in flight');
      // /ready answers 503 from now on (on connections still open), so balancers stop sending.
      server.startDraining();
      // Subscriptions have completed (startDraining); their sockets close now.
      await webSockets?.close();
      const draining = http.drain(config.shutdownTimeoutMs);
      const stopWaiting = shutdown.onRepeat(draining.cut);
      await draining.done;
      stopWaiting();
      // Metrics stay scrapeable while requests drain; then their port closes too.
      await metricsHttp?.drain(0).done;
    } finally {
      // Already closed after a drain; closing a server that is not listening does nothing.
      await webSockets?.close();
      http.server.close();
      metricsHttp?.server.close();
      await server.close();
    }
  } finally {
    await database.embedded?.stop();
    logger.info('stopped');
  }
}

/**
 * Says who may write, and stops the start where tokens would protect nothing: with `AUTH_MODE=jwt`
 * the server's role must be bound by row-level security (no superuser, no `BYPASSRLS`), or every
 * policy would be void for it.
 */
async function checkWhoMayWrite(auth: Config['auth'], url: string, logger: Logger): Promise<void> {
  const { role, bypassesRowSecurity } = await roleOf(url);
  if (auth.mode === 'jwt' && bypassesRowSecurity) {
    throw new Error(
      `AUTH_MODE=jwt, but DATABASE_URL's role "${role}" is a superuser or has BYPASSRLS, so row-level security would not apply: ` +
        `connect as a role without them (see the README, "Who may do what")`,
    );
  }
  if (auth.mode === 'open') {
    logger.warn({ authMode: 'open', role }, 'AUTH_MODE=open: anyone who reaches this server may create, change and delete items');
  } else {
    logger.info({ authMode: 'jwt', role, jwks: auth.tokens.jwksUrl, secret: auth.tokens.secret !== undefined }, 'writes need a verified token');
  }
}

async function seedIfEmpty(url: string, logger: Logger): Promise<void> {
  await withOneConnection(url, async (db) => {
    if (await isEmpty(db)) {
      await seed(db, DEFAULT_SEED_SIZE);
      logger.info(DEFAULT_SEED_SIZE, 'seeded the empty embedded database');
    }
  });
}

/**
 * How long after a signal the same signal again counts as that one. `npm start` forwards the
 * SIGINT/SIGTERM it receives to this process, so a signal sent to the whole process group (a
 * terminal's Ctrl-C, `kill -- -PGID`) arrives twice within moments: once straight, once from npm.
 * Taken as a second Ctrl-C, the copy would cut short the drain the first one started.
 */
const SAME_SIGNAL_WINDOW_MS = 1_000;

/**
 * SIGINT/SIGTERM, listened to from the very start until exit: the first one asks for a shutdown
 * (`received` resolves), later ones cut the draining short, except the same signal again within
 * {@link SAME_SIGNAL_WINDOW_MS} (npm's forwarded copy). Node never dies of these signals while
 * this listens, so the embedded database is always stopped on the way out.
 */
class ShutdownSignal {
  /** The first signal received, if any. */
  requested: NodeJS.Signals | undefined;
  /** Resolves with the first signal. */
  readonly received: Promise<NodeJS.Signals>;
  readonly #onRepeat = new Set<() => void>();
  #resolve!: (signal: NodeJS.Signals) => void;

  constructor() {
    this.received = new Promise((resolve) => (this.#resolve = resolve));
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  /** Calls `action` on every signal after the first, until the returned function is called. */
  onRepeat(action: () => void): () => void {
    this.#onRepeat.add(action);
    return () => this.#onRepeat.delete(action);
  }

  #last: { signal: NodeJS.Signals; at: number } | undefined;

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    const at = performance.now();
    const copy = this.#last?.signal === signal && at - this.#last.at < SAME_SIGNAL_WINDOW_MS;
    this.#last = { signal, at };
    if (this.requested === undefined) {
      this.requested = signal;
      this.#resolve(signal);
    } else if (!copy) {
      for (const action of this.#onRepeat) action();
    }
  };
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    const message = error instanceof ConfigError ? error.message : errorLine(error);
    process.stderr.write(`poolgraph: ${message}\n`);
    process.exit(1);
  },
);

function errorLine(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
