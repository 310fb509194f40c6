import pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type ConnectionSource, poolSource } from '../request/connection-source.js';
import type { PoolerSettings } from '../request/transaction-locals.js';
import { createPool, endPool, guardConnectionErrors, type PoolSettings } from './pool.js';
import { replicaConnectTimeoutMs, ReplicaRouter } from './replica-router.js';

/** Where a server's requests take their connections: pool settings, or a pool the host owns. */
export type DatabaseOption = PoolSettings | pg.Pool;

/** Options of {@link openConnections}. */
export interface ConnectionsOptions {
  /** The primary: settings (the pool is created here and ended by `close()`) or a lent pool. */
  database: DatabaseOption;
  /** A read replica, the same way, or undefined. */
  replica?: DatabaseOption | undefined;
  /** Where the pools' connection errors and the replica router's changes are logged. */
  logger: Logger;
  /** Where the replica router's metrics go, when metrics are on. */
  registry?: Registry | undefined;
}

/** The connections of one server, and the policy its request scopes follow on them. */
export interface Connections {
  /** The primary's pool. */
  pool: pg.Pool;
  /** The replica's pool, when there is a replica. */
  replicaPool: pg.Pool | undefined;
  /** Sends each request to the primary or the replica, when there is a replica. */
  replicaRouter: ReplicaRouter | undefined;
  /** Where each request scope takes its connection: the router, or the primary's pool. */
  source: ConnectionSource;
  /** The primary pool's acquire timeout (`POOL_TIMEOUT_MS`, or a lent pool's own). */
  poolTimeoutMs: number;
  /** Set behind a transaction pooler (`DATABASE_POOLER=transaction`): the scopes' SET LOCALs. */
  pooler: PoolerSettings | undefined;
  /** Whether scopes may run poolgraph's statements as named prepared statements. */
  preparedStatements: boolean;
  /** Stops the replica router and ends the pools created here (never a lent one). */
  close(): Promise<void>;
}

/**
 * Opens a server's connections: creates the pools it was given settings for (a lent pool gets
 * the same per-connection error listener, and is never ended here), a {@link ReplicaRouter} when
 * there is a replica, and decides the scopes' policy:
 * - behind PgBouncer in transaction mode the timeouts travel with each transaction (SET LOCAL);
 * - named prepared statements only on pools created here and not behind a transaction pooler,
 *   which may send a statement's Bind to a server connection that never saw its Parse (a lent
 *   pool's path is unknown).
 */
export function openConnections(options: ConnectionsOptions): Connections {
  const { database, replica, logger } = options;
  const ownsPool = !(database instanceof pg.Pool);
  const pool = ownsPool ? createPool(database, logger) : database;
  if (!ownsPool) guardConnectionErrors(pool, logger);
  const poolTimeoutMs = pool.options.connectionTimeoutMillis ?? 0;
  // The replica pool's connect timeout is half of POOL_TIMEOUT_MS, so that a read whose replica
  // does not answer still has the other half to get a primary connection (see ReplicaRouter).
  const ownsReplicaPool = replica !== undefined && !(replica instanceof pg.Pool);
  let replicaPool: pg.Pool | undefined;
  if (replica instanceof pg.Pool) {
    replicaPool = replica;
    guardConnectionErrors(replica, logger);
  } else if (replica !== undefined) {
    replicaPool = createPool({ ...replica, timeoutMs: replicaConnectTimeoutMs(replica.timeoutMs) }, logger);
  }
  const replicaRouter = replicaPool
    ? new ReplicaRouter({ primary: pool, replica: replicaPool, timeoutMs: poolTimeoutMs, logger, ...(options.registry ? { registry: options.registry } : {}) })
    : undefined;
  const pooler =
    ownsPool && database.pooler === 'transaction'
      ? {
          statementTimeoutMs: database.statementTimeoutMs,
          idleInTransactionTimeoutMs: database.idleInTransactionTimeoutMs ?? 30_000,
          openWrites: database.openWrites ?? false,
        }
      : undefined;
  const replicaMaySwitchSessions = replica !== undefined && (replica instanceof pg.Pool || replica.pooler === 'transaction');
  return {
    pool,
    replicaPool,
    replicaRouter,
    source: replicaRouter ?? poolSource(pool),
    poolTimeoutMs,
    pooler,
    preparedStatements: ownsPool && !pooler && !replicaMaySwitchSessions,
    async close() {
      try {
        try {
          await replicaRouter?.close();
        } finally {
          if (ownsReplicaPool && replicaPool) await endPool(replicaPool);
        }
      } finally {
        if (ownsPool) await endPool(pool);
      }
    },
  };
}
