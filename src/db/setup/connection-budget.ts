import pg from 'pg';
import type { Logger } from 'pino';
import { describeDatabaseUrl } from './open-database.js';
import type { Pooler } from '../pools/pool.js';

/**
 * The connection budget: at start, how many connections each pool of this process may open
 * against what its PostgreSQL server has left. The first outage of a team that runs many
 * instances is the connection count (instances × pool max > `max_connections`); this says so in
 * the log before the load does. See docs/scaling.md.
 */

export type { Pooler };

/** One pool this process may open. */
export interface PoolMaximum {
  /** The pool's name in logs: `primary`, `replica`. */
  name: string;
  /** The most connections it may hold (`POOL_SIZE + POOL_MAX_OVERFLOW`). */
  max: number;
  /**
   * Connections the pool holds right now (pg-pool's `totalCount`). Without a pooler they are
   * among the server's connections in use, and also part of `max`: they are taken out of the
   * in-use count so that they are not counted twice. @default 0
   */
  open?: number;
}

/** A pool and the server its budget is read from. */
export interface BudgetedPool extends PoolMaximum {
  /** The connection string the pool uses (PgBouncer's, with `DATABASE_POOLER=transaction`). */
  url: string;
}

/** The connection counts of one PostgreSQL server, as {@link readServerConnections} reads them. */
export interface ServerConnections {
  /** `max_connections`. */
  maxConnections: number;
  /** `superuser_reserved_connections`: slots only superusers may take. */
  superuserReservedConnections: number;
  /**
   * `reserved_connections` (PostgreSQL 16+): slots for roles with `pg_use_reserved_connections`;
   * null on PostgreSQL 15 and older, which have no such setting.
   */
  reservedConnections: number | null;
  /**
   * Client backends connected now, not counting the one that read this. Sessions of other roles
   * whose type this role may not see (without `pg_read_all_stats`) are counted too: most of them
   * are client backends, and counting too many is the safe side.
   */
  inUse: number;
  /** How many of `inUse` were such sessions of unknown type (0 for a superuser). */
  inUseUnseen: number;
}

/** The verdict for one pool: {@link computeConnectionBudget}'s result, what the log lines name. */
export interface ConnectionBudget {
  /** The pool's name. */
  pool: string;
  /** The most connections it may open. */
  poolMax: number;
  /** The server's `max_connections`. */
  maxConnections: number;
  /** `superuser_reserved_connections` + `reserved_connections` (0 when the server has none). */
  reserved: number;
  /** Client backends in use by others than this pool (sessions of unknown type included). */
  inUse: number;
  /** Of `inUse`, sessions whose type the role could not see. */
  inUseUnseen: number;
  /** `maxConnections − reserved − inUse`, never below 0. */
  available: number;
  /** What sits in between; with `transaction` the numbers are those of the server behind PgBouncer. */
  pooler: Pooler;
  /**
   * `fits` or `does-not-fit` (poolMax > available) for direct connections; `pgbouncer-decides`
   * behind PgBouncer, where the pool's limit is PgBouncer's `max_client_conn`, not these numbers.
   */
  verdict: 'fits' | 'does-not-fit' | 'pgbouncer-decides';
}

/** Options of {@link readServerConnections}. */
export interface ReadServerConnectionsOptions {
  /** Longest wait to connect, and then for the one query. @default 5000 */
  timeoutMs?: number;
}

/** The `application_name` of the reading connection: not `poolgraph`, so it is not taken for the app's. */
export const BUDGET_APPLICATION_NAME = 'poolgraph-budget';

/**
 * Reads `max_connections`, the reserved connections and the client backends in use from the
 * server at `url`, over one short-lived connection of its own (not a pool's), closed on every
 * path. One statement, no startup parameters beyond `application_name`, and a client-side
 * timeout instead of `statement_timeout`, so it works through PgBouncer in transaction mode too
 * (which refuses a `statement_timeout` startup parameter). Throws when the server cannot be
 * reached or the query fails.
 */
export async function readServerConnections(
  url: string,
  options: ReadServerConnectionsOptions = {},
): Promise<ServerConnections> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const client = new pg.Client({
    connectionString: url,
    application_name: BUDGET_APPLICATION_NAME,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  // A connection that breaks mid-query also rejects the query, which is what reports it; without
  // a listener the `error` event would crash the process instead.
  client.on('error', () => undefined);
  try {
    await client.connect();
    // current_setting(name, true) is null where the setting does not exist (PostgreSQL ≤ 15).
    // backend_type is null for sessions of other roles unless this role has pg_read_all_stats;
    // auxiliary processes have no role (usesysid null), so a null type with a role is a session
    // we may not see into.
    const { rows } = await client.query<Record<string, unknown>>(
      `select current_setting('max_connections')::int as max_connections,
              current_setting('superuser_reserved_connections')::int as superuser_reserved_connections,
              current_setting('reserved_connections', true)::int as reserved_connections,
              count(*) filter (where backend_type = 'client backend')::int as visible,
              count(*) filter (where backend_type is null and usesysid is not null)::int as unseen
       from pg_stat_activity
       where pid <> pg_backend_pid()`,
    );
    const row = rows[0] ?? {};
    const visible = count(row, 'visible');
    const unseen = count(row, 'unseen');
    const reserved = row.reserved_connections;
    return {
      maxConnections: count(row, 'max_connections'),
      superuserReservedConnections: count(row, 'superuser_reserved_connections'),
      reservedConnections: reserved === null || reserved === undefined ? null : count(row, 'reserved_connections'),
      inUse: visible + unseen,
      inUseUnseen: unseen,
    };
  } finally {
    // Closing a connection that already failed may fail too; it is gone either way.
    await client.end().catch(() => undefined);
  }
}

function count(row: Record<string, unknown>, column: string): number {
  const value = row[column];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new Error(`unexpected ${column} from the server: ${String(value)}`);
  }
  return value;
}

/**
 * The verdict for one pool against what its server has left: `maxConnections − reserved −
 * inUse`, where reserved is `superuser_reserved_connections` plus `reserved_connections` (none
 * before PostgreSQL 16), and without a pooler the pool's own open connections are not counted
 * as in use (they are part of its maximum). Pure: no I/O.
 */
export function computeConnectionBudget(
  pool: PoolMaximum,
  server: ServerConnections,
  pooler: Pooler,
): ConnectionBudget {
  const reserved = server.superuserReservedConnections + (server.reservedConnections ?? 0);
  // Behind PgBouncer the pool's connections go to PgBouncer; the server backends are its own.
  const own = pooler === 'none' ? (pool.open ?? 0) : 0;
  const inUse = Math.max(0, server.inUse - own);
  const available = Math.max(0, server.maxConnections - reserved - inUse);
  const verdict = pooler === 'transaction' ? 'pgbouncer-decides' : pool.max <= available ? 'fits' : 'does-not-fit';
  return {
    pool: pool.name,
    poolMax: pool.max,
    maxConnections: server.maxConnections,
    reserved,
    inUse,
    inUseUnseen: Math.min(server.inUseUnseen, inUse),
    available,
    pooler,
    verdict,
  };
}

/**
 * Logs one budget: always one `info` line with every number (fields `pool`, `poolMax`,
 * `maxConnections`, `reserved`, `inUse`, `available`), plus a `warn` line naming them in words
 * when the pool's maximum does not fit in what is left. Behind PgBouncer the numbers are the
 * server's behind it: the `info` line says that PgBouncer's `max_client_conn` is the limit that
 * matters, and nothing is warned.
 */
export function logConnectionBudget(logger: Logger, budget: ConnectionBudget): void {
  const { pool, poolMax, maxConnections, reserved, inUse, inUseUnseen, available, pooler } = budget;
  const fields = {
    pool,
    poolMax,
    maxConnections,
    reserved,
    inUse,
    available,
    ...(inUseUnseen > 0 ? { inUseUnseen } : {}),
    ...(pooler === 'none' ? {} : { pooler }),
  };
  const server = `allows ${maxConnections}, reserves ${reserved} and ${inUse} are in use by others: ${available} left`;
  if (pooler === 'transaction') {
    logger.info(
      {
        ...fields,
        note: "behind PgBouncer: this pool's limit is PgBouncer's max_client_conn; these are the numbers of the PostgreSQL server behind it, which PgBouncer's own pool must fit",
      },
      `connection budget: pool ${pool} may open ${poolMax} connections to PgBouncer; the PostgreSQL behind it ${server}`,
    );
    return;
  }
  logger.info(fields, `connection budget: pool ${pool} may open ${poolMax} connections; PostgreSQL ${server}`);
  if (budget.verdict === 'does-not-fit') {
    logger.warn(
      fields,
      `pool ${pool} may open ${poolMax} connections but PostgreSQL ${server}. ` +
        `Under load PostgreSQL will refuse the connections beyond that (requests fail with DATABASE_UNAVAILABLE): ` +
        `lower POOL_SIZE + POOL_MAX_OVERFLOW, or put PgBouncer in front (docs/scaling.md)`,
    );
  }
}

/** Options of {@link checkConnectionBudget}. */
export interface CheckConnectionBudgetOptions {
  logger: Logger;
  /** `DATABASE_POOLER`: with `transaction` the numbers are logged without a warning. */
  pooler: Pooler;
  /** Reads one server; {@link readServerConnections} unless a test replaces it. */
  read?: (url: string) => Promise<ServerConnections>;
}

/**
 * What `npm start` calls once its pools are open: reads each pool's server (once per distinct
 * URL, one after the other), and logs each pool's budget. Never throws and never stops the
 * start: a server that cannot be read (no permission, not reachable) gets one `warn` line and
 * is left out. Costs one short connection per server. Returns the budgets it logged.
 */
export async function checkConnectionBudget(
  pools: readonly BudgetedPool[],
  options: CheckConnectionBudgetOptions,
): Promise<ConnectionBudget[]> {
  const read = options.read ?? ((url: string) => readServerConnections(url));
  const servers = new Map<string, ServerConnections | undefined>();
  const budgets: ConnectionBudget[] = [];
  for (const pool of pools) {
    if (!servers.has(pool.url)) {
      try {
        servers.set(pool.url, await read(pool.url));
      } catch (error) {
        servers.set(pool.url, undefined);
        options.logger.warn(
          {
            pool: pool.name,
            poolMax: pool.max,
            database: describeDatabaseUrl(pool.url),
            reason: error instanceof Error ? error.message : String(error),
          },
          `could not read the connection budget of pool ${pool.name}; starting anyway`,
        );
      }
    }
    const server = servers.get(pool.url);
    if (!server) continue;
    const budget = computeConnectionBudget(pool, server, options.pooler);
    logConnectionBudget(options.logger, budget);
    budgets.push(budget);
  }
  return budgets;
}
