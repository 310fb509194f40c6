import { performance } from 'node:perf_hooks';
import { Kysely } from 'kysely';
import pg from 'pg';
import { DatabaseBusyError, DatabaseUnavailableError, StatementTimeoutError } from '../errors.js';
import type { Database } from './schema.js';
import { ScopeDialect } from './scope-dialect.js';

/** What one request did with the database, reported when its scope is released. */
export interface RequestScopeStats {
  /** SQL statements sent, `BEGIN`/`COMMIT`/`ROLLBACK` included. */
  statements: number;
  /**
   * Connections taken from the pool: 0 for a request that ran no SQL, otherwise 1 — or 2 when the
   * first was found dead at its first statement and replaced (`retried`).
   */
  connectionsTaken: number;
  /** True when the request's first connection was dead and its first statement ran again. */
  retried: boolean;
  /** `pg_backend_pid()` of the connection the request used, or null when it took none. */
  backendPid: number | null;
  /** Time spent waiting for the pool to hand out the connection, in milliseconds. */
  acquireWaitMs: number;
  /** True when no connection became free within the pool's timeout (`DATABASE_BUSY`). */
  acquireTimedOut: boolean;
  /** Time the connection was held, from acquire to release, in milliseconds. */
  heldMs: number;
  /** True when the connection was destroyed on release instead of returned (it broke). */
  destroyed: boolean;
}

/**
 * Where a scope takes its connection: a pool, or a {@link ReplicaRouter}-like source that may
 * hand read-only operations a connection to a replica.
 */
export interface ConnectionSource {
  /** Takes a connection; a `readOnly` scope may be given one to a read replica. */
  connect(readOnly: boolean): Promise<pg.PoolClient>;
  /**
   * Told when a connection it handed out turned out to be broken (the scope then destroys it and,
   * for a first read, asks for another), so a source can stop using a replica that went away.
   */
  connectionFailed?(client: pg.PoolClient, error: unknown): void;
}

/** A {@link ConnectionSource} over one pool: every scope takes its connection from it. */
export function poolSource(pool: pg.Pool): ConnectionSource {
  return { connect: () => pool.connect() };
}

/** Options of {@link RequestScope}. */
export interface RequestScopeOptions {
  /** The pool's acquire timeout, quoted in the `DATABASE_BUSY` message. */
  poolTimeoutMs: number;
  /** Called once, after the connection went back to the pool (or when none was taken). */
  onRelease?: (stats: RequestScopeStats) => void;
  /** Receives what `onRelease` threw; it is not rethrown. */
  onObserverError?: (error: unknown) => void;
}

/** A statement was attempted after the request's scope had been released. */
export class RequestFinishedError extends Error {
  constructor() {
    super('This request has finished; its database connection was already released.');
    this.name = 'RequestFinishedError';
  }
}

/** A statement that may change rows (Kysely writes them in lower case; a CTE may hide a write). */
const WRITE_STATEMENT = /^\s*(insert|update|delete|merge|with)\b/i;

/** A write on a connection idle at least this long is preceded by a ping (see `#needsPrePing`). */
export const PRE_PING_AFTER_IDLE_MS = 250;

/** When each healthy connection last went back to the pool (`performance.now()`). */
const lastReturned = new WeakMap<pg.PoolClient, number>();

/** The message pg-pool rejects `connect()` with when `connectionTimeoutMillis` elapses. */
const POOL_TIMEOUT_MESSAGE = 'timeout exceeded when trying to connect';

/**
 * The database side of one request: a Kysely instance (`db`) whose every statement runs on the
 * same pooled connection. The connection is taken lazily, at the first statement, so a request
 * that runs no SQL takes none; `release()` returns it on every path.
 *
 * Release is safe to call while resolvers are still running (a client abort, an error that
 * short-circuited execution): it refuses new statements outside a transaction, waits for the
 * statements in flight and for an open transaction to finish, then returns the connection. A
 * connection that broke, or that would go back with a transaction still open, is destroyed
 * instead (pg-pool resets nothing on release). Only then can no statement of this request land on
 * a connection another request is using.
 *
 * Transactions of one scope are serialised: two resolvers of the same request cannot interleave
 * `BEGIN`s on the one connection. Statements of the same request that run outside the transaction
 * while it is open join it, since they share the connection.
 */
export class RequestScope {
  /** Kysely bound to this request's connection. Never use it after the response has finished. */
  readonly db: Kysely<Database>;

  readonly #source: ConnectionSource;
  readonly #options: RequestScopeOptions;
  #client: Promise<pg.PoolClient> | undefined;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #released: Promise<void> | undefined;
  #inFlight = 0;
  #lastStatement: Promise<void> = Promise.resolve();
  /** Who opened the transaction now open (Kysely's connection object for it), if any. */
  #transactionOwner: object | undefined;
  #transactionLock: Promise<void> = Promise.resolve();
  #unlockTransaction: (() => void) | undefined;
  #connectionsTaken = 0;
  #answeredOnConnection = 0;
  #writes = false;
  #retried = false;
  #whenQuiet: (() => void) | undefined;
  #broken: unknown;
  #statements = 0;
  #backendPid: number | null = null;
  #acquireWaitMs = 0;
  #acquireTimedOut = false;
  #acquiredAt = 0;
  #heldMs = 0;

  #readOnly = false;

  constructor(source: ConnectionSource, options: RequestScopeOptions) {
    this.#source = source;
    this.#options = options;
    this.db = new Kysely<Database>({ dialect: new ScopeDialect(this) });
  }

  /** What this request did with the database so far. */
  get stats(): RequestScopeStats {
    return {
      statements: this.#statements,
      connectionsTaken: this.#connectionsTaken,
      retried: this.#retried,
      backendPid: this.#backendPid,
      acquireWaitMs: this.#acquireWaitMs,
      acquireTimedOut: this.#acquireTimedOut,
      heldMs: this.#heldMs,
      destroyed: this.#broken !== undefined,
    };
  }

  /**
   * Runs one statement on the request's connection, taking it from the pool first if needed.
   * Pool and connection failures become `DATABASE_BUSY`, `DATABASE_UNAVAILABLE` or
   * `STATEMENT_TIMEOUT` errors; any other PostgreSQL error is passed on for the caller to map.
   */
  async query(sql: string, parameters: readonly unknown[] = []): Promise<pg.QueryResult> {
    if (this.#state === 'closed' || (this.#state === 'closing' && this.#transactionOwner === undefined)) {
      throw new RequestFinishedError();
    }
    this.#inFlight += 1;
    // One statement at a time, in call order: loaders of the same tick ask concurrently, and pg 8
    // only queues a second query on a busy client with a deprecation warning (pg 9 refuses).
    const previous = this.#lastStatement;
    let done!: () => void;
    this.#lastStatement = new Promise((resolve) => (done = resolve));
    try {
      await previous;
      let client = await this.#connection();
      if (this.#needsPrePing(sql, client)) client = await this.#prePing(client);
      this.#statements += 1;
      try {
        const result = await client.query(sql, [...parameters]);
        this.#answeredOnConnection += 1;
        return result;
      } catch (error) {
        if (!this.#mayRetry(sql, error)) throw error;
        // The connection was dead before this request used it (the server restarted, a proxy
        // dropped it): nothing ran, so run the statement once more on a fresh connection.
        const fresh = await this.#replaceDeadConnection(client, error);
        this.#statements += 1;
        const result = await fresh.query(sql, [...parameters]);
        this.#answeredOnConnection += 1;
        return result;
      }
    } catch (error) {
      throw this.#translate(error, WRITE_STATEMENT.test(sql));
    } finally {
      done();
      this.#inFlight -= 1;
      this.#checkQuiet();
    }
  }

  /**
   * Starts a transaction for `owner` (`BEGIN` or `START TRANSACTION ...`), after any open one has
   * ended. The transaction counts as open from the moment BEGIN is sent, so a release that starts
   * meanwhile waits for its COMMIT or ROLLBACK instead of returning a connection mid-transaction.
   */
  async beginTransaction(sql: string, owner: object): Promise<void> {
    const previous = this.#transactionLock;
    let unlock!: () => void;
    this.#transactionLock = new Promise((resolve) => (unlock = resolve));
    await previous;
    if (this.#state !== 'open') {
      unlock();
      throw new RequestFinishedError();
    }
    this.#transactionOwner = owner;
    this.#unlockTransaction = unlock;
    try {
      await this.query(sql);
    } catch (error) {
      this.#closeTransaction();
      throw error;
    }
  }

  /**
   * Ends `owner`'s transaction with `COMMIT` or `ROLLBACK` and returns the command PostgreSQL
   * reported. Does nothing (and returns undefined) when `owner`'s transaction is not the open one:
   * Kysely sends ROLLBACK after a failed COMMIT, when that transaction has already ended and the
   * next one of the request may have begun.
   */
  async endTransaction(command: 'commit' | 'rollback', owner: object): Promise<string | undefined> {
    if (owner !== this.#transactionOwner) return undefined;
    try {
      const result = await this.query(command);
      return result.command;
    } catch (error) {
      // The transaction's state on the server is unknown now: never hand this connection on.
      this.#broken ??= error;
      if (command === 'commit' && error instanceof DatabaseUnavailableError) {
        throw new DatabaseUnavailableError(error.cause, true);
      }
      throw error;
    } finally {
      this.#closeTransaction();
    }
  }

  /**
   * Declares that this request may write outside a transaction (a mutation), so a failed first
   * statement is never run twice: a dead connection may have failed after the server ran it.
   */
  markWrites(): void {
    this.#writes = true;
    this.#readOnly = false;
  }

  /**
   * Declares that everything this request will run only reads (a query operation, not part of a
   * batch), before its first statement: its connection may then come from a read replica.
   */
  markReadOnly(): void {
    if (this.#client === undefined && !this.#writes) this.#readOnly = true;
  }

  /**
   * A failed statement may run again, once, when it was the first on its connection and failed
   * because the connection was already gone, and running it twice cannot write twice: the request
   * only reads, or the statement is the BEGIN of a transaction.
   */
  #mayRetry(sql: string, error: unknown): boolean {
    return (
      !this.#retried &&
      this.#state === 'open' &&
      this.#answeredOnConnection === 0 &&
      (!this.#writes || /^(begin|start transaction)\b/i.test(sql)) &&
      isConnectionFailure(error)
    );
  }

  /**
   * A write sent as the first statement on a connection cannot run again if that connection turns
   * out to be dead (it may have failed after the server ran it). A connection that sat in the pool
   * for a while is the one that may have died unnoticed, so such a write is preceded by a ping
   * (SQLAlchemy's `pool_pre_ping`), which can be retried. Under load connections are never idle
   * that long, and writes pay nothing.
   */
  #needsPrePing(sql: string, client: pg.PoolClient): boolean {
    if (!this.#writes || this.#answeredOnConnection > 0 || this.#retried || !WRITE_STATEMENT.test(sql)) return false;
    const idleSince = lastReturned.get(client);
    return idleSince === undefined || performance.now() - idleSince >= PRE_PING_AFTER_IDLE_MS;
  }

  async #prePing(client: pg.PoolClient): Promise<pg.PoolClient> {
    this.#statements += 1;
    try {
      await client.query(';');
      this.#answeredOnConnection += 1;
      return client;
    } catch (error) {
      if (!isConnectionFailure(error)) throw error;
      return this.#replaceDeadConnection(client, error);
    }
  }

  async #replaceDeadConnection(dead: pg.PoolClient, error: unknown): Promise<pg.PoolClient> {
    this.#retried = true;
    this.#source.connectionFailed?.(dead, error);
    dead.removeListener('error', this.#onClientError);
    dead.release(toError(error));
    this.#broken = undefined;
    this.#client = this.#acquire();
    return this.#client;
  }

  #closeTransaction(): void {
    this.#transactionOwner = undefined;
    this.#unlockTransaction?.();
    this.#unlockTransaction = undefined;
    this.#checkQuiet();
  }

  /**
   * Returns the connection to the pool (or destroys it if it broke) once the statements in flight
   * and any open transaction have finished. Idempotent: every call returns the same promise.
   */
  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  async #release(): Promise<void> {
    this.#state = 'closing';
    try {
      await this.#quiet();
      const client = await this.#client?.catch(() => undefined);
      if (client) {
        client.removeListener('error', this.#onClientError);
        this.#heldMs = performance.now() - this.#acquiredAt;
        // Last line of defence: whatever happened above, a connection whose server side is still
        // in a transaction ('T') or a failed one ('E') must not reach the next request.
        if (this.#broken === undefined && client.getTransactionStatus() !== 'I') {
          this.#broken = new Error('connection released inside a transaction');
        }
        if (this.#broken === undefined) lastReturned.set(client, performance.now());
        // pg-pool destroys a client released with a truthy error instead of pooling it.
        client.release(this.#broken === undefined ? undefined : toError(this.#broken));
      }
    } finally {
      this.#state = 'closed';
      try {
        this.#options.onRelease?.(this.stats);
      } catch (error) {
        // A failing observer must not turn a finished response into an error.
        this.#options.onObserverError?.(error);
      }
    }
  }

  #connection(): Promise<pg.PoolClient> {
    this.#client ??= this.#acquire();
    return this.#client;
  }

  async #acquire(): Promise<pg.PoolClient> {
    const started = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.#source.connect(this.#readOnly);
    } catch (error) {
      if (error instanceof Error && error.message === POOL_TIMEOUT_MESSAGE) {
        this.#acquireTimedOut = true;
        throw new DatabaseBusyError(this.#options.poolTimeoutMs);
      }
      throw new DatabaseUnavailableError(error);
    } finally {
      // Added up: a request whose first connection was dead waited for two.
      this.#acquireWaitMs += performance.now() - started;
    }
    this.#connectionsTaken += 1;
    this.#acquiredAt = performance.now();
    // pg-pool listens for errors only on idle clients; while we hold this one, an `error` event
    // (the server closed the connection) would crash the process without a listener of ours.
    client.on('error', this.#onClientError);
    this.#backendPid = (client as pg.PoolClient & { processID?: number }).processID ?? null;
    return client;
  }

  readonly #onClientError = (error: Error): void => {
    this.#broken ??= error;
  };

  /** `wrote`: the failed statement was a write, whose outcome a lost connection leaves unknown. */
  #translate(error: unknown, wrote: boolean): unknown {
    if (error instanceof DatabaseBusyError || error instanceof DatabaseUnavailableError) {
      return error;
    }
    if (error instanceof pg.DatabaseError && error.code === '57014') {
      return new StatementTimeoutError(error);
    }
    if (this.#broken !== undefined || isConnectionFailure(error)) {
      if (this.#broken === undefined) {
        void this.#client?.then((client) => this.#source.connectionFailed?.(client, error), () => undefined);
      }
      this.#broken ??= error;
      return new DatabaseUnavailableError(error, wrote && this.#transactionOwner === undefined);
    }
    return error;
  }

  #quiet(): Promise<void> {
    if (this.#inFlight === 0 && this.#transactionOwner === undefined) return Promise.resolve();
    return new Promise((resolve) => (this.#whenQuiet = resolve));
  }

  #checkQuiet(): void {
    if (this.#whenQuiet && this.#inFlight === 0 && this.#transactionOwner === undefined) {
      const resolve = this.#whenQuiet;
      this.#whenQuiet = undefined;
      resolve();
    }
  }
}

/**
 * True when the error means the connection itself is gone or unusable (the server shut down or
 * terminated the backend, the socket closed, the client-side `query_timeout` fired), as opposed
 * to an error in one statement or a bug on our side, which leave the connection healthy.
 */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    // Class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
    return error.code?.startsWith('08') === true || /^57P0[123]$/.test(error.code ?? '');
  }
  if (!(error instanceof Error)) return false;
  const code = (error as Error & { code?: unknown }).code;
  return (
    (typeof code === 'string' && /^E(CONNRESET|PIPE|TIMEDOUT|CONNREFUSED|HOSTUNREACH|NETUNREACH)$/.test(code)) ||
    /Connection terminated|not queryable|Query read timeout/i.test(error.message)
  );
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
