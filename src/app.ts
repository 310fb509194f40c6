import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga } from 'graphql-yoga';
import pg from 'pg';
import { Registry } from 'prom-client';
import { createTokenVerifier } from './auth/token-verifier.js';
import { startOutboxRetention } from './db/events/outbox-retention.js';
import { openConnections } from './db/pools/connections.js';
import { maskErrorKeepingCause } from './errors.js';
import type { RequestContext } from './graphql/context.js';
import { useAuthentication } from './graphql/plugins/use-authentication.js';
import { useBodyLimit } from './graphql/plugins/use-body-limit.js';
import { useCompiledExecution } from './graphql/plugins/use-compiled-execution.js';
import { useLimits } from './graphql/plugins/use-limits.js';
import { useLiveSubscriptions } from './graphql/plugins/use-live-subscriptions.js';
import { useMetrics } from './graphql/plugins/use-metrics.js';
import { usePartialDataStatus } from './graphql/plugins/use-partial-data-status.js';
import { usePersistedDocuments } from './graphql/plugins/use-persisted-documents.js';
import { useReadiness } from './graphql/plugins/use-readiness.js';
import { useRequestErrorCode } from './graphql/plugins/use-request-error-code.js';
import { useRequestLog } from './graphql/plugins/use-request-log.js';
import { useRequestScope } from './graphql/plugins/use-request-scope.js';
import { useValidationCache } from './graphql/plugins/use-validation-cache.js';
import { buildSchema } from './graphql/schema.js';
import { LiveHub, type LiveObserver } from './graphql/subscriptions/live-hub.js';
import { RequestScope } from './db/request/request-scope.js';
import type { Connections } from './db/pools/connections.js';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { createFastPath } from './http/fast-path.js';
import { lifecyclesOf } from './http/request-lifecycle.js';
import { DEFAULT_LIMITS } from './limits.js';
import { createLogger, toYogaLogger } from './logger.js';
import { registerPoolMetrics } from './operating/metrics/pool-metrics.js';
import { createLiveMetrics } from './operating/metrics/live-metrics.js';
import { createRequestMetrics } from './operating/metrics/request-metrics.js';
import { DEFAULT_READINESS, Readiness } from './operating/readiness.js';
import type { CreateServerOptions, PoolgraphServer, ServerContext } from './server-options.js';

export type { CreateServerOptions, PoolgraphServer, ServerContext } from './server-options.js';

/**
 * Any of these headers lets a request that a browser would send cross-site without a preflight
 * (GET, form or text/plain POST) through: graphql-yoga's own, and the two Apollo Server accepts.
 */
const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'];

/** The query GraphiQL opens with. */
export const GRAPHIQL_DEFAULT_QUERY = '{ items { number } }';

/**
 * Creates the poolgraph GraphQL server: `schema.graphql` with its resolvers, a per-request scope
 * (one lazily taken connection, per-request loaders) and GraphiQL. It does not listen: mount
 * `requestListener` on a Node HTTP server, or call `yoga.fetch`.
 *
 * The composition root, read top to bottom as the request's path is built: connections →
 * metrics → plugins (in the order graphql-yoga runs them) → yoga → the fast path in front of it.
 */
export function createServer(options: CreateServerOptions): PoolgraphServer {
  const logger = options.logger ?? createLogger();
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const graphqlEndpoint = options.graphqlEndpoint ?? '/graphql';
  // Before any pool opens: a host's schema extension that does not parse throws here.
  const schema = buildSchema(options.extend);
  // One registry per server, never prom-client's global one: two servers in one process (tests,
  // a host embedding two) must not share, or collide on, metric names.
  const registry = (options.metrics?.enabled ?? true) ? new Registry() : undefined;

  const tokens = options.auth?.tokens;
  const verifier = tokens && (tokens.secret !== undefined || tokens.jwksUrl !== undefined) ? createTokenVerifier(tokens) : undefined;
  const authMode = options.auth?.mode ?? (verifier ? 'jwt' : 'open');
  // Pool settings (not a lent pool): in open mode its connections say so to the policies.
  const database = options.database instanceof pg.Pool ? options.database : { ...options.database, openWrites: authMode === 'open' };

  const connections = openConnections({ database, replica: options.replica, logger, registry });
  const { pool, replicaPool } = connections;
  const { endpoint: readyEndpoint = '/ready', ...readinessOptions } = options.readiness ?? {};
  const readiness = new Readiness(pool, { ...DEFAULT_READINESS, ...readinessOptions }, logger);

  const detachPoolMetrics = registry
    ? registerPoolMetrics(registry, [{ name: 'primary', pool }, ...(replicaPool ? [{ name: 'replica', pool: replicaPool }] : [])])
    : undefined;
  const requestMetrics = registry ? createRequestMetrics(registry) : undefined;

  const requestLog = useRequestLog({ logger, graphqlEndpoint });
  const metrics = registry ? useMetrics({ registry, endpoint: options.metrics?.endpoint ?? '/metrics' }) : undefined;
  const authentication = useAuthentication({
    mode: authMode,
    verifier,
    onFailure: requestMetrics?.observeAuthFailure,
    onIdentified: (request, identity) => requestLog.recordCaller(request, identity.subject),
  });

  const requestScope = useRequestScope({
    batching: Boolean(options.batchLimit),
    connections: connections.source,
    ...(connections.pooler ? { pooler: connections.pooler } : {}),
    preparedStatements: connections.preparedStatements,
    poolTimeoutMs: connections.poolTimeoutMs,
    logger,
    onLoaderBatch: requestMetrics?.observeLoaderBatch,
    identityOf: authentication.identityOf,
    onScopeReleased(stats, request) {
      requestMetrics?.observeScope(stats);
      requestLog.recordScope(request, stats);
      options.onScopeReleased?.(stats, request);
    },
  });

  const live = createLiveHub(options, schema, connections, logger, registry ? createLiveMetrics(registry) : undefined);
  // Events are written whether anyone subscribes or not: the outbox is swept whenever the server
  // runs on a pool of its own (a host lending its pool sweeps it itself).
  const stopRetention =
    options.database instanceof pg.Pool
      ? undefined
      : startOutboxRetention(pool, {
          retentionS: options.live?.retentionS ?? 300,
          logger,
          ...(options.live?.retentionIntervalMs === undefined ? {} : { intervalMs: options.live.retentionIntervalMs }),
        });

  const plugins = [
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
    // Before the scope: the caller's claims go with the scope's every transaction.
    authentication,
    requestScope,
    ...(live
      ? [
          useLiveSubscriptions(live, {
            maskError: maskErrorKeepingCause,
            onMasked: (cause) => logger.error({ err: cause }, 'a live update carried an unexpected error; its subscribers got "Unexpected error."'),
          }),
        ]
      : []),
    usePartialDataStatus(),
    useRequestErrorCode(),
    // graphql-jit where it is correct; graphql-js's executor elsewhere, which stops resolving
    // fields of an operation whose client went away (graphql-yoga's useExecutionCancellation).
    useCompiledExecution(),
  ];

  const yoga = createYoga<ServerContext, RequestContext>({
    schema,
    graphqlEndpoint,
    healthCheckEndpoint: '/health',
    batching: options.batchLimit ? { limit: options.batchLimit } : false,
    // Enforced by useBodyLimit instead (same checks and error, without a stream per request).
    maxRequestBodySize: false,
    // Parsed documents stay cached by graphql-yoga; validation results by useValidationCache.
    parserAndValidationCache: { validationCache: false },
    // POST: GraphiQL's subscriptions (SSE) are then preflighted JSON requests, which CSRF
    // prevention lets through, as it does its queries.
    graphiql: { title: 'poolgraph', defaultQuery: GRAPHIQL_DEFAULT_QUERY, method: 'POST' },
    // GraphiQL's page and assets from npm (inlined), not from a CDN: it works offline.
    renderGraphiQL,
    landingPage: false,
    logging: toYogaLogger(logger),
    // Masked errors keep what they hide (never sent), for useRequestLog to log with the request id.
    maskedErrors: { maskError: maskErrorKeepingCause },
    plugins,
  });

  const requestListener = createFastPath({
    yoga,
    maxBodyBytes: limits.maxBodyBytes,
    // The lifecycles graphql-yoga runs through the plugins' derived hooks, in plugin order.
    hooks: lifecyclesOf(plugins),
    logger,
    enabled: options.fastPath ?? true,
  });

  return {
    requestListener,
    yoga,
    pool,
    replicaPool,
    replicaRouter: connections.replicaRouter,
    metrics: registry,
    readiness,
    live,
    startDraining() {
      readiness.startDraining();
      // Subscriptions end (their streams complete), so their connections can drain.
      void live?.close();
    },
    async close() {
      readiness.startDraining();
      stopRetention?.();
      try {
        await live?.close();
        await yoga.dispose();
      } finally {
        detachPoolMetrics?.();
        await connections.close();
      }
    },
  };
}

/**
 * The subscriptions' hub, when the server knows where to LISTEN: `live.listenUrl`, or the
 * database's own URL when nothing pools transactions between (LISTEN needs a session).
 */
function createLiveHub(
  options: CreateServerOptions,
  schema: GraphQLSchema,
  connections: Connections,
  logger: Logger,
  observer: LiveObserver | undefined,
): LiveHub | undefined {
  const database = options.database;
  const ownUrl = database instanceof pg.Pool ? database.options.connectionString : database.pooler === 'transaction' ? undefined : database.connectionString;
  const listenUrl = options.live?.listenUrl ?? ownUrl;
  if (listenUrl === undefined) return undefined;
  const scopeOptions = {
    poolTimeoutMs: connections.poolTimeoutMs,
    pooler: connections.pooler,
    preparedStatements: connections.preparedStatements,
  };
  return new LiveHub({
    schema,
    listenUrl,
    logger,
    maxSubscriptions: options.live?.maxSubscriptions ?? 10_000,
    queueLimit: options.live?.queueLimit ?? 256,
    tickMs: options.live?.tickMs ?? 40,
    observer,
    openScope: (claims) => new RequestScope(connections.source, { ...scopeOptions, claims }),
  });
}
