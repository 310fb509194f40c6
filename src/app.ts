import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { parse } from 'graphql';
import pg from 'pg';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { RequestContext } from './graphql/context.js';
import { createPool, guardConnectionErrors, type PoolSettings } from './db/pools/pool.js';
import { createFastPath, type FastPathListener } from './http/fast-path.js';
import { replicaConnectTimeoutMs, ReplicaRouter } from './db/pools/replica-router.js';
import { poolSource } from './db/request/connection-source.js';
import type { RequestScopeStats } from './db/request/request-scope.js';
import { createLogger, toYogaLogger } from './logger.js';
import { registerPoolMetrics } from './operating/metrics/pool-metrics.js';
import { createRequestMetrics, type RequestMetrics } from './operating/metrics/request-metrics.js';
import { useBodyLimit } from './graphql/plugins/use-body-limit.js';
import { useCompiledExecution } from './graphql/plugins/use-compiled-execution.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { useLimits } from './graphql/plugins/use-limits.js';
import { useMetrics } from './graphql/plugins/use-metrics.js';
import { usePartialDataStatus } from './graphql/plugins/use-partial-data-status.js';
import { type PersistedDocumentsOptions, usePersistedDocuments } from './graphql/plugins/use-persisted-documents.js';
import { useReadiness } from './graphql/plugins/use-readiness.js';
import { useRequestErrorCode } from './graphql/plugins/use-request-error-code.js';
import { maskErrorKeepingCause } from './errors.js';
import { useRequestLog } from './graphql/plugins/use-request-log.js';
import { useRequestScope } from './graphql/plugins/use-request-scope.js';
import { useValidationCache } from './graphql/plugins/use-validation-cache.js';
import { DEFAULT_READINESS, Readiness, type ReadinessOptions } from './operating/readiness.js';
import { resolvers } from './graphql/resolvers/index.js';

/** `schema.graphql`, the source of truth for the schema, read at server creation. */
export const SCHEMA_PATH = fileURLToPath(new URL('../schema.graphql', import.meta.url));

/**
 * Any of these headers lets a request that a browser would send cross-site without a preflight
 * (GET, form or text/plain POST) through: graphql-yoga's own, and the two Apollo Server accepts.
 */
const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'];

/** The query GraphiQL opens with. */
export const GRAPHIQL_DEFAULT_QUERY = '{ items { number } }';

/** What graphql-yoga's Node adapter passes as the server context when mounted on `node:http`. */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
}

/** Options of {@link createServer}. Nothing here is read from the environment. */
export interface CreateServerOptions {
  /**
   * The database: pool settings (the server creates the pool and ends it on `close()`), or a
   * `pg.Pool` the host owns and ends itself (set its `connectionTimeoutMillis`: pg-pool otherwise
   * waits forever for a connection).
   */
  database: PoolSettings | pg.Pool;
  /**
   * A read replica (`DATABASE_REPLICA_URL`): pool settings (the server creates the pool, with half
   * of `timeoutMs` as its connect timeout, and ends it on `close()`) or a `pg.Pool` the host owns.
   * Query operations then run on it, mutations and batches on `database`; reads fall back to
   * `database` while it does not answer (see {@link ReplicaRouter}). @default no replica
   */
  replica?: PoolSettings | pg.Pool;
  /** Where GraphQL (and GraphiQL) is served. @default '/graphql' */
  graphqlEndpoint?: string;
  /** Where logs go. @default a pino logger at level `info` on stdout */
  logger?: Logger;
  /**
   * Extra type definitions and resolvers merged into the schema, for programs that embed
   * poolgraph and add fields of their own; their resolvers get the same `db` and `loaders`.
   */
  extend?: { typeDefs: string; resolvers: GraphQLResolverMap<RequestContext> };
  /** Called after each request released its connection, with what it did with the database. */
  onScopeReleased?: (stats: RequestScopeStats, request: Request) => void;
  /**
   * Operations clients may send by hash (a codegen manifest), and whether they may also send
   * full documents. @default every document is accepted, none by hash
   */
  persistedDocuments?: PersistedDocumentsOptions;
  /**
   * Most operations one HTTP request may carry as a JSON array (graphql-yoga's batching); 0 turns
   * batching off. The operations of a batch share the request's one connection and its loaders,
   * so their loads batch together. @default 0
   */
  batchLimit?: number;
  /**
   * How large a request may be (depth, aliases, tokens, directives, cost, body bytes); each
   * field left out keeps its default. @default {@link DEFAULT_LIMITS}
   */
  limits?: Partial<Limits>;
  /**
   * Prometheus metrics: kept in a registry of this server's own (`PoolgraphServer.metrics`) and
   * served at `endpoint` on the app, or not served by it (`endpoint: false`, to serve the
   * registry elsewhere, e.g. on another port). `enabled: false` records nothing at all.
   * @default { enabled: true, endpoint: '/metrics' }
   */
  metrics?: { enabled?: boolean; endpoint?: string | false };
  /**
   * When `GET /ready` answers 503 (see {@link Readiness}); `/health` always answers 200.
   * @default {@link DEFAULT_READINESS}, at '/ready'
   */
  readiness?: Partial<ReadinessOptions> & { endpoint?: string };
  /**
   * Whether `requestListener` answers JSON POSTs of one operation itself, without graphql-yoga's
   * HTTP layer (see `createFastPath`); false sends every request through graphql-yoga (tests
   * compare the two). @default true
   */
  fastPath?: boolean;
}

/** What {@link createServer} returns. */
export interface PoolgraphServer {
  /**
   * What to mount on a Node HTTP server (`http.createServer(server.requestListener)`): the fast
   * path for JSON POSTs of one operation, graphql-yoga for every other request.
   */
  requestListener: FastPathListener;
  /**
   * The graphql-yoga app: a Node request listener (every request through graphql-yoga's HTTP
   * layer) and a WHATWG `fetch` handler, for hosts that mount it elsewhere.
   */
  yoga: YogaServerInstance<ServerContext, RequestContext>;
  /** The pool every request borrows its one connection from (the primary's, with a replica). */
  pool: pg.Pool;
  /** The read replica's pool, when `replica` was given. */
  replicaPool: pg.Pool | undefined;
  /** Sends each request to the primary or the replica, when `replica` was given. */
  replicaRouter: ReplicaRouter | undefined;
  /** This server's metrics registry (Prometheus), or undefined when metrics are off. */
  metrics: Registry | undefined;
  /** Whether the server should get traffic, as `GET /ready` reports it. */
  readiness: Readiness;
  /**
   * Tells the server a graceful shutdown has begun: from now on `/ready` answers 503, so load
   * balancers stop sending requests while those in flight finish.
   */
  startDraining(): void;
  /**
   * Disposes the Yoga app and, when the server created the pools, ends them. Close the HTTP server
   * (and let its requests finish) first: Yoga does not wait for requests in flight.
   */
  close(): Promise<void>;
}

/**
 * Creates the poolgraph GraphQL server: `schema.graphql` with its resolvers, a per-request scope
 * (one lazily taken connection, per-request loaders) and GraphiQL. It does not listen: mount
 * `yoga` on a Node HTTP server (`http.createServer(server.yoga)`) or call `yoga.fetch`.
 */
export function createServer(options: CreateServerOptions): PoolgraphServer {
  const logger = options.logger ?? createLogger();
  const ownsPool = !(options.database instanceof pg.Pool);
  const pool = options.database instanceof pg.Pool ? options.database : createPool(options.database, logger);
  // A lent pool gets the same per-connection error listener createPool gives its own.
  if (!ownsPool) guardConnectionErrors(pool, logger);
  // createPool sets it from `timeoutMs`; a lent pool says its own.
  const poolTimeoutMs = pool.options.connectionTimeoutMillis ?? 0;
  // Behind PgBouncer in transaction mode the timeouts travel with each transaction (SET LOCAL).
  const pooler =
    !(options.database instanceof pg.Pool) && options.database.pooler === 'transaction'
      ? {
          statementTimeoutMs: options.database.statementTimeoutMs,
          idleInTransactionTimeoutMs: options.database.idleInTransactionTimeoutMs ?? 30_000,
        }
      : undefined;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const graphqlEndpoint = options.graphqlEndpoint ?? '/graphql';
  const { endpoint: readyEndpoint = '/ready', ...readinessOptions } = options.readiness ?? {};
  const readiness = new Readiness(pool, { ...DEFAULT_READINESS, ...readinessOptions }, logger);
  const metricsEnabled = options.metrics?.enabled ?? true;
  // One registry per server, never prom-client's global one: two servers in one process (tests,
  // a host embedding two) must not share, or collide on, metric names.
  const registry = metricsEnabled ? new Registry() : undefined;
  // The replica pool's connect timeout is half of POOL_TIMEOUT_MS, so that a read whose replica
  // does not answer still has the other half to get a primary connection (see ReplicaRouter).
  const ownsReplicaPool = options.replica !== undefined && !(options.replica instanceof pg.Pool);
  const replicaPool =
    options.replica === undefined || options.replica instanceof pg.Pool
      ? options.replica
      : createPool({ ...options.replica, timeoutMs: replicaConnectTimeoutMs(options.replica.timeoutMs) }, logger);
  if (replicaPool && !ownsReplicaPool) guardConnectionErrors(replicaPool, logger);
  const replicaRouter = replicaPool
    ? new ReplicaRouter({ primary: pool, replica: replicaPool, timeoutMs: poolTimeoutMs, logger, ...(registry ? { registry } : {}) })
    : undefined;
  const detachPoolMetrics = registry
    ? registerPoolMetrics(registry, [
        { name: 'primary', pool },
        ...(replicaPool ? [{ name: 'replica', pool: replicaPool }] : []),
      ])
    : undefined;
  const requestMetrics: RequestMetrics | undefined = registry ? createRequestMetrics(registry) : undefined;
  const requestLog = useRequestLog({ logger, graphqlEndpoint });
  const metrics = registry ? useMetrics({ registry, endpoint: options.metrics?.endpoint ?? '/metrics' }) : undefined;
  const requestScope = useRequestScope({
    batching: Boolean(options.batchLimit),
    connections: replicaRouter ?? poolSource(pool),
    ...(pooler ? { pooler } : {}),
    // Named prepared statements on the server's own pools only: behind a transaction pooler they
    // may be missing on the next server connection, and a lent pool's path is unknown to us.
    preparedStatements:
      ownsPool &&
      !pooler &&
      (options.replica === undefined || (!(options.replica instanceof pg.Pool) && options.replica.pooler !== 'transaction')),
    poolTimeoutMs,
    logger,
    onLoaderBatch: requestMetrics?.observeLoaderBatch,
    onScopeReleased(stats, request) {
      requestMetrics?.observeScope(stats);
      requestLog.recordScope(request, stats);
      options.onScopeReleased?.(stats, request);
    },
  });

  const yoga = createYoga<ServerContext, RequestContext>({
    // A federation v2 subgraph schema (`_service`, `_entities`) that is also a plain GraphQL API.
    schema: buildSubgraphSchema([
      { typeDefs: parse(readFileSync(SCHEMA_PATH, 'utf8')), resolvers },
      ...(options.extend
        ? [{ typeDefs: parse(options.extend.typeDefs), resolvers: options.extend.resolvers }]
        : []),
    ]),
    graphqlEndpoint,
    healthCheckEndpoint: '/health',
    batching: options.batchLimit ? { limit: options.batchLimit } : false,
    // Enforced by useBodyLimit instead (same checks and error, without a stream per request).
    maxRequestBodySize: false,
    // Parsed documents stay cached by graphql-yoga; validation results by useValidationCache.
    parserAndValidationCache: { validationCache: false },
    graphiql: { title: 'poolgraph', defaultQuery: GRAPHIQL_DEFAULT_QUERY },
    // GraphiQL's page and assets from npm (inlined), not from a CDN: it works offline.
    renderGraphiQL,
    landingPage: false,
    logging: toYogaLogger(logger),
    // Masked errors keep what they hide (never sent), for useRequestLog to log with the request id.
    maskedErrors: { maskError: maskErrorKeepingCause },
    plugins: [
      // First, so that its line times the whole request and every response carries the id.
      requestLog,
      useReadiness(readiness, readyEndpoint),
      ...(metrics ? [metrics] : []),
      // A browser sends a form or text/plain POST (or a GET) cross-site without a CORS preflight;
      // such requests must carry a header a form cannot set. JSON POSTs are preflighted: unaffected.
      useCSRFPrevention({ requestHeaders: CSRF_HEADERS }),
      useBodyLimit(limits.maxBodyBytes),
      useLimits(limits),
      useValidationCache(),
      ...(options.persistedDocuments ? [usePersistedDocuments(options.persistedDocuments)] : []),
      requestScope,
      usePartialDataStatus(),
      useRequestErrorCode(),
      // graphql-jit where it is correct; graphql-js's executor elsewhere, which stops resolving
      // fields of an operation whose client went away (graphql-yoga's useExecutionCancellation).
      useCompiledExecution(),
    ],
  });

  const requestListener = createFastPath({
    yoga,
    maxBodyBytes: limits.maxBodyBytes,
    // In plugin order, as graphql-yoga calls their hooks.
    hooks: [requestLog.fastPath, ...(metrics ? [metrics.fastPath] : []), requestScope.fastPath],
    logger,
    enabled: options.fastPath ?? true,
  });

  return {
    requestListener,
    yoga,
    pool,
    replicaPool,
    replicaRouter,
    metrics: registry,
    readiness,
    startDraining() {
      readiness.startDraining();
    },
    async close() {
      readiness.startDraining();
      try {
        await yoga.dispose();
      } finally {
        detachPoolMetrics?.();
        try {
          await replicaRouter?.close();
          if (ownsReplicaPool) await replicaPool?.end();
        } finally {
          if (ownsPool) await pool.end();
        }
      }
    },
  };
}
