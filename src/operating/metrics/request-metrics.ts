import { Counter, Histogram, type Registry } from 'prom-client';
import type { RequestScopeStats } from '../../db/request/request-scope.js';
import type { AuthFailureReason } from '../../errors.js';
import type { LoaderBatchObserver } from '../../loaders/create-loaders.js';

/** What the metrics of one server record per request and per loader batch. */
export interface RequestMetrics {
  /** Records what a request did with the database, when its scope is released. */
  observeScope(stats: RequestScopeStats): void;
  /** Records one loader batch (pass it to `createLoaders`). */
  observeLoaderBatch: LoaderBatchObserver;
  /** Records one request refused for its token, or for having none where a write needs one. */
  observeAuthFailure(reason: AuthFailureReason): void;
}

/** Statements a request may run: W1 and W3 take 1, W2 3, a mutation BEGIN + its SQL + COMMIT. */
const STATEMENT_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50];
/** Keys per batch: a page is at most 100 rows, a gateway's `_entities` call may send more. */
const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
/** From an idle connection handed out at once (well under 1 ms) to `POOL_TIMEOUT_MS`. */
const WAIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** From one short statement to `STATEMENT_TIMEOUT_MS`. */
const HOLD_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Registers the per-request metrics on `registry`:
 * - `poolgraph_request_statements` (histogram): SQL statements per request, BEGIN/COMMIT included;
 * - `poolgraph_requests_total{connection="taken"|"none"}`: requests that reached execution, by
 *   whether they took a connection (a request that runs no SQL takes none);
 * - `poolgraph_pool_acquire_wait_seconds` (histogram): how long a request waited for its
 *   connection, timeouts included;
 * - `poolgraph_pool_connection_hold_seconds` (histogram): how long it held it;
 * - `poolgraph_pool_acquire_timeouts_total`: requests that got no connection within
 *   `POOL_TIMEOUT_MS` (`DATABASE_BUSY`);
 * - `poolgraph_loader_batch_size{loader}` (histogram) and `poolgraph_loader_batches_total{loader}`:
 *   keys per DataLoader batch, and batches, i.e. statements, per loader;
 * - `poolgraph_auth_failures_total{reason}`: requests refused for their token (`expired`,
 *   `signature`, …), a write without one (`missing`), or keys that could not be fetched
 *   (`unavailable`).
 */
export function createRequestMetrics(registry: Registry): RequestMetrics {
  const registers = [registry];
  const statements = new Histogram({
    name: 'poolgraph_request_statements',
    help: 'SQL statements one request ran (BEGIN and COMMIT included).',
    buckets: STATEMENT_BUCKETS,
    registers,
  });
  const requests = new Counter({
    name: 'poolgraph_requests_total',
    help: 'Requests that reached execution, by whether they took a database connection.',
    labelNames: ['connection'] as const,
    registers,
  });
  const acquireWait = new Histogram({
    name: 'poolgraph_pool_acquire_wait_seconds',
    help: 'Time a request waited for the pool to hand it a connection (timeouts included).',
    buckets: WAIT_BUCKETS,
    registers,
  });
  const held = new Histogram({
    name: 'poolgraph_pool_connection_hold_seconds',
    help: 'Time a request held its connection, from acquire to release.',
    buckets: HOLD_BUCKETS,
    registers,
  });
  const acquireTimeouts = new Counter({
    name: 'poolgraph_pool_acquire_timeouts_total',
    help: 'Requests that got no connection within POOL_TIMEOUT_MS (DATABASE_BUSY).',
    registers,
  });
  const batchSize = new Histogram({
    name: 'poolgraph_loader_batch_size',
    help: 'Keys in one DataLoader batch (one SQL statement).',
    labelNames: ['loader'] as const,
    buckets: BATCH_SIZE_BUCKETS,
    registers,
  });
  const batches = new Counter({
    name: 'poolgraph_loader_batches_total',
    help: 'DataLoader batches dispatched, one SQL statement each.',
    labelNames: ['loader'] as const,
    registers,
  });

  const authFailures = new Counter({
    name: 'poolgraph_auth_failures_total',
    help: 'Requests refused for their token, for lacking one where a write needs one, or because no key could be fetched.',
    labelNames: ['reason'] as const,
    registers,
  });

  return {
    observeAuthFailure(reason) {
      authFailures.inc({ reason });
    },
    observeScope(stats) {
      statements.observe(stats.statements);
      const taken = stats.connectionsTaken > 0;
      requests.inc({ connection: taken ? 'taken' : 'none' });
      if (taken || stats.acquireTimedOut) acquireWait.observe(stats.acquireWaitMs / 1000);
      if (taken) held.observe(stats.heldMs / 1000);
      if (stats.acquireTimedOut) acquireTimeouts.inc();
    },
    observeLoaderBatch(loader, size) {
      batchSize.observe({ loader }, size);
      batches.inc({ loader });
    },
  };
}
