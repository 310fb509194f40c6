/**
 * poolgraph as a library: the server `npm start` runs, for programs that embed it (mounted under
 * a path of their own HTTP server, sharing their pool) and for tests and benchmarks.
 */
export { createServer, type CreateServerOptions, type PoolgraphServer, type ServerContext } from './app.js';
export { createPool, type PoolSettings, warmUpPool } from './db/pools/pool.js';
export { migrateToLatest } from './db/setup/migrate.js';
export { type FallbackReason, ReplicaRouter, type ReplicaRouterOptions } from './db/pools/replica-router.js';
export { seed, type SeedSize } from './db/setup/seed.js';
export type { RequestScopeStats } from './db/request/request-scope.js';
export type { RequestContext } from './graphql/context.js';
export { ErrorCode } from './errors.js';
export { createMetricsListener } from './operating/metrics/metrics-listener.js';
export { Readiness, type ReadinessOptions, type ReadinessReport } from './operating/readiness.js';
