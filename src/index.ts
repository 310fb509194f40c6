/**
 * poolgraph as a library: the server `npm start` runs, for programs that embed it (mounted under
 * a path of their own HTTP server, sharing their pool) and for tests and benchmarks.
 */
export { createServer, type CreateServerOptions, type PoolgraphServer, type ServerContext } from './app.js';
export { createPool, type PoolSettings, warmUpPool } from './db/pool.js';
export { migrateToLatest } from './db/migrate.js';
export { type FallbackReason, ReplicaRouter, type ReplicaRouterOptions } from './db/replica-router.js';
export { seed, type SeedSize } from './db/seed.js';
export type { RequestScopeStats } from './db/request-scope.js';
export type { RequestContext } from './context.js';
export { ErrorCode } from './errors.js';
export { createMetricsListener } from './metrics/metrics-listener.js';
export { Readiness, type ReadinessOptions, type ReadinessReport } from './readiness.js';
