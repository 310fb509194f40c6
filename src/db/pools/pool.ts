import pg from 'pg';
import type { Logger } from 'pino';

/**
 * How the one connection pool of a process is sized, in SQLAlchemy's terms. Read from the
 * environment by `src/config.ts`; see the README for the defaults.
 */
export interface PoolSettings {
  /** PostgreSQL connection string (`postgres://user:password@host:port/database`). */
  connectionString: string;
  /** Connections kept open when idle (SQLAlchemy `pool_size`, pg-pool `min`). */
  size: number;
  /** Extra connections opened under load and closed when idle (SQLAlchemy `max_overflow`). */
  maxOverflow: number;
  /** Longest wait for a connection before a request fails with `DATABASE_BUSY` (`pool_timeout`). */
  timeoutMs: number;
  /** Idle time after which a connection beyond `size` is closed; 0 keeps them open. */
  idleTimeoutMs: number;
  /** Close a connection once it is older than this many seconds (`pool_recycle`); 0 never. */
  recycleSeconds: number;
  /** Longest single SQL statement, sent as PostgreSQL's `statement_timeout`; 0 means no limit. */
  statementTimeoutMs: number;
  /**
   * Longest a transaction may sit idle before PostgreSQL ends its session
   * (`idle_in_transaction_session_timeout`); 0 means no limit. @default 30000
   */
  idleInTransactionTimeoutMs?: number;
  /**
   * `DATABASE_POOLER`: what sits between the server and PostgreSQL. `transaction`: a pooler in
   * transaction mode (PgBouncer), which hands each transaction a server connection of its choice
   * and refuses startup parameters it does not know. The timeouts are then not sent at connect
   * but with `SET LOCAL` inside each transaction, and an operation of several statements runs
   * them in one transaction (see `RequestScope`). @default 'none'
   */
  pooler?: Pooler;
  /**
   * `AUTH_MODE=open`: the connections carry `poolgraph.open_writes = on`, which the row-level
   * security policies read as "anyone may write" (migration 0002): a startup parameter, or behind
   * a transaction pooler a `SET LOCAL` in each transaction. @default false
   */
  openWrites?: boolean;
}

/** What sits between the server and PostgreSQL (`DATABASE_POOLER`). */
export type Pooler = 'none' | 'transaction';

/** How much longer than `statement_timeout` the client waits before giving up on a statement. */
const QUERY_TIMEOUT_MARGIN_MS = 1_000;

/** The `application_name` our connections carry, so operators (and tests) can find them. */
export const APPLICATION_NAME = 'poolgraph';

/**
 * Creates the process's one `pg.Pool`. It never holds more than `size + maxOverflow` connections,
 * keeps `size` of them open once opened, and waits at most `timeoutMs` for one (pg-pool waits
 * forever unless `connectionTimeoutMillis` is set).
 *
 * An `error` listener is attached: pg-pool emits `error` when an *idle* connection dies (a server
 * restart, `pg_terminate_backend`), and an `error` event without a listener would crash Node. The
 * pool has already dropped that connection, so logging it is all there is to do.
 */
export function createPool(settings: PoolSettings, logger?: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    application_name: APPLICATION_NAME,
    min: settings.size,
    max: settings.size + settings.maxOverflow,
    connectionTimeoutMillis: settings.timeoutMs,
    idleTimeoutMillis: settings.idleTimeoutMs,
    maxLifetimeSeconds: settings.recycleSeconds,
    // pg sends these as startup parameters (0 is PostgreSQL's "no limit"). A transaction left
    // open (a bug, a stuck client) cannot hold its locks and its connection longer than the idle
    // timeout: the server ends the session, and the pool replaces the connection. PgBouncer
    // refuses both ("unsupported startup parameter"): behind it the request scope sets them with
    // SET LOCAL instead.
    ...(settings.pooler === 'transaction'
      ? {}
      : {
          statement_timeout: settings.statementTimeoutMs,
          idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs ?? 30_000,
          ...(settings.openWrites ? { options: '-c poolgraph.open_writes=on' } : {}),
        }),
    // statement_timeout is enforced by the server, so it cannot end a wait on a server that has
    // vanished from the network: TCP keepalive notices a dead peer, and a client-side timeout a
    // little longer than the server's ends the statement (the connection is then destroyed).
    keepAlive: true,
    types: poolTypeParsers(),
    ...(settings.statementTimeoutMs > 0
      ? { query_timeout: settings.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS }
      : {}),
  });
  pool.on('error', (error, client) => {
    logger?.warn(connectionFailure(error, client), 'an idle database connection failed and was removed from the pool');
  });
  guardConnectionErrors(pool, logger);
  return pool;
}

/**
 * pg's type parsers for our pools' connections: the global ones (`pg.types`, left untouched for
 * the rest of the process), except that `timestamptz` stays PostgreSQL's text. Parsing it into a
 * `Date` costs a regular expression and a `Date` per row, and most reads never return the column
 * (W2 reads 200 `items` rows and selects no `createdAt`); `Item.createdAt` parses it when asked
 * (see `createdAtOf` in `repositories/items.ts`). A pool lent to `createServer` keeps its own
 * parsers, so rows may carry either a string or a `Date` there.
 */
function poolTypeParsers(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text', (value: string) => value);
  return types;
}

/**
 * Gives every connection of `pool` an `error` listener of its own for its whole life.
 *
 * pg-pool listens only while a connection is idle, and a borrower can attach its listener only
 * once `connect()` has resolved, a microtask later. When the server ends a connection right after
 * it opens (a restart, `pg_terminate_backend`), the FATAL message can arrive in the same TCP read
 * as ReadyForQuery: pg parses both in one go, between pg-pool removing its listener and the
 * borrower adding one, and an `error` event nobody listens to crashes the process (seen in
 * `npm run soak`). The borrower still learns of the failure: the connection is no longer
 * queryable, so its next statement fails.
 */
export function guardConnectionErrors(pool: pg.Pool, logger?: Logger): void {
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      logger?.debug(connectionFailure(error, client), 'a database connection failed');
    });
  });
}

/**
 * What a log line says about a failed connection: the error's message and code (PostgreSQL's
 * SQLSTATE, or Node's `ECONNRESET`...) and the backend's pid, to match against PostgreSQL's own
 * log. Never the error itself: pg-pool sets `error.client` on an idle connection's error, and a
 * serialised `Client` is kilobytes of state, its `secretKey` and connection parameters included.
 */
export function connectionFailure(
  error: Error,
  client: pg.PoolClient | pg.Client,
): { err: { message: string; code?: string }; backendPid?: number } {
  const { code } = error as Error & { code?: unknown };
  // `processID` is set once the server has answered the startup; pg's types omit it.
  const { processID } = client as typeof client & { processID?: unknown };
  return {
    err: { message: error.message, ...(typeof code === 'string' ? { code } : {}) },
    ...(typeof processID === 'number' ? { backendPid: processID } : {}),
  };
}

/**
 * Opens up to `count` connections at once and returns them to the pool, so that the `size`
 * connections the pool keeps are open before the first request instead of during it.
 */
export async function warmUpPool(pool: pg.Pool, count: number): Promise<void> {
  const opened = await Promise.allSettled(Array.from({ length: count }, () => pool.connect()));
  // Give back every connection that opened, even when another failed.
  for (const result of opened) if (result.status === 'fulfilled') result.value.release();
  const failed = opened.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The longest {@link endPool} waits for the pool's connections to finish closing. */
const END_WAIT_MS = 5_000;

/**
 * Ends `pool` and resolves once its connections have closed. pg-pool's own `end()` resolves as
 * soon as it has asked each connection to close (its `remove` event comes when the close has
 * completed): a database stopped right after it, as `npm start` stops the embedded one, would
 * still find those sessions open and terminate them, which each connection then reports as a
 * failure. Waits at most {@link END_WAIT_MS} for them.
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  let open = pool.totalCount;
  let timer: NodeJS.Timeout | undefined;
  let onRemove: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) return resolve();
    onRemove = () => {
      open -= 1;
      if (open <= 0) resolve();
    };
    pool.on('remove', onRemove);
    timer = setTimeout(resolve, END_WAIT_MS);
  });
  try {
    await pool.end();
    await closed;
  } finally {
    clearTimeout(timer);
    if (onRemove) pool.off('remove', onRemove);
  }
}
