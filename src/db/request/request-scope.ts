import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { DatabaseBusyError, DatabaseUnavailableError, StatementTimeoutError, WritesRolledBackError } from '../../errors.js';
import { isPoolTimeout } from '../pools/pool.js';
import { isStalePreparedStatement, preparedName } from './prepared-statements.js';
import type { Database } from '../schema.js';
import { createScopeDb } from './scope-dialect.js';

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
  /**
   * Set when a pooler in transaction mode (PgBouncer) sits between the pool and PostgreSQL
   * (`DATABASE_POOLER=transaction`). It gives each transaction a server connection of its choice
   * and refuses timeouts as startup parameters, so:
   * - the timeouts are set with `SET LOCAL`: in the operation's transaction, or, for a statement
   *   outside one, pipelined before it in the same round trip (one implicit transaction);
   * - an operation that may run several statements (see {@link RequestScope.planStatements}) runs
   *   them in ONE transaction, so they all run on one server connection (I1 on the server side);
   *   its writes each get a savepoint, so a failed write leaves the others standing, as it would
   *   outside the transaction.
   */
  pooler?: { statementTimeoutMs: number; idleInTransactionTimeoutMs: number };
  /**
   * Runs poolgraph's own statements as named prepared statements (see `preparedName`): parsed
   * and planned once per connection instead of at every run. Only where each pooled connection is
   * one PostgreSQL session: not behind a transaction pooler, which may run a Bind on a server
   * connection that never saw its Parse. @default false
   */
  preparedStatements?: boolean;
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

/** A settled promise shared by every scope as "nothing to wait for" (two fewer objects a request). */
const SETTLED: Promise<void> = Promise.resolve();


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
  /**
   * Kysely bound to this request's connection. Never use it after the response has finished.
   * Cheap to make: only its executor is per request; compiler, adapter and driver are shared by
   * the process (see `createScopeDb`).
   */
  readonly db: Kysely<Database>;

  readonly #source: ConnectionSource;
  readonly #options: RequestScopeOptions;
  #client: Promise<pg.PoolClient> | undefined;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #released: Promise<void> | undefined;
  #inFlight = 0;
  #lastStatement: Promise<void> = SETTLED;
  /** Who opened the transaction now open (Kysely's connection object for it), if any. */
  #transactionOwner: object | undefined;
  #transactionLock: Promise<void> = SETTLED;
  #unlockTransaction: (() => void) | undefined;
  #connectionsTaken = 0;
  #answeredOnConnection = 0;
  #writes = false;
  #retried = false;
  #whenQuiet: (() => void) | undefined;
  #broken: unknown;
  /** A named statement was refused as stale on this connection: destroy it at release. */
  #stalePreparedStatement: unknown;
  #statements = 0;
  #backendPid: number | null = null;
  #acquireWaitMs = 0;
  #acquireTimedOut = false;
  #acquiredAt = 0;
  #heldMs = 0;

  #readOnly = false;
  /** Behind a transaction pooler: the operation's own transaction, wanted, open, or neither. */
  #operationTransaction: 'none' | 'wanted' | 'open' = 'none';
  /** A write of the operation's transaction succeeded (a COMMIT that rolls back loses it). */
  #wroteInOperation = false;

  constructor(source: ConnectionSource, options: RequestScopeOptions) {
    this.#source = source;
    this.#options = options;
    this.db = createScopeDb(this);
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
      if (this.#operationTransaction === 'wanted') client = await this.#beginOperationTransaction(client);
      // Inside the operation's transaction a failed statement would abort every later one: a
      // write gets a savepoint to roll back to, as a write outside it fails alone.
      const savepoint = this.#operationTransaction === 'open' && this.#transactionOwner === undefined && WRITE_STATEMENT.test(sql);
      if (savepoint) await this.#send(client, 'savepoint poolgraph_write');
      try {
        const result = await this.#send(client, sql, parameters);
        if (this.#operationTransaction === 'open' && WRITE_STATEMENT.test(sql)) this.#wroteInOperation = true;
        return result;
      } catch (error) {
        if (savepoint && !isConnectionFailure(error)) {
          await this.#send(client, 'rollback to savepoint poolgraph_write').catch((rollbackFailed: unknown) => {
            this.#broken ??= rollbackFailed;
          });
        }
        if (!this.#mayRetry(sql, error)) throw error;
        // The connection was dead before this request used it (the server restarted, a proxy
        // dropped it): nothing ran, so run the statement once more on a fresh connection.
        const fresh = await this.#replaceDeadConnection(client, error);
        return await this.#send(fresh, sql, parameters);
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
   * Says, before the operation's first statement, whether it may run more than one statement
   * (`runsAtMostOneStatement` in src/db/request/statement-plan.ts). Behind a transaction pooler an operation
   * of several statements runs them in one transaction, begun at its first statement and
   * committed by {@link finish}; one of a single statement pays no BEGIN/COMMIT. Without a pooler
   * this changes nothing.
   */
  planStatements(atMostOne: boolean): void {
    if (this.#options.pooler && !atMostOne && this.#operationTransaction === 'none' && this.#client === undefined) {
      this.#operationTransaction = 'wanted';
    }
  }

  /**
   * Commits the operation's transaction (behind a transaction pooler), once the operation has
   * run and before its response is sent, so that a failed COMMIT can still fail the response.
   * Nothing to do otherwise.
   */
  async finish(): Promise<void> {
    if (this.#operationTransaction !== 'open') return;
    await this.#lastStatement;
    if (this.#operationTransaction !== 'open') return;
    const client = await this.#connection();
    try {
      const result = await this.#send(client, 'commit');
      // A statement failed and aborted the transaction (its error is in the response already).
      // Reads lose nothing; writes that reported success were undone, which the client must learn.
      if (result.command === 'ROLLBACK' && this.#wroteInOperation) throw new WritesRolledBackError();
    } catch (error) {
      this.#broken ??= error;
      throw error instanceof DatabaseUnavailableError || !isConnectionFailure(error)
        ? error
        : new DatabaseUnavailableError(error, this.#writes);
    } finally {
      this.#operationTransaction = 'none';
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
      // Inside the operation's transaction (behind a pooler), a transaction is a savepoint.
      await this.query(this.#operationTransaction === 'none' ? sql : 'savepoint poolgraph_transaction');
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
      if (this.#operationTransaction !== 'none') {
        await this.query(command === 'commit' ? 'release savepoint poolgraph_transaction' : 'rollback to savepoint poolgraph_transaction');
        return command.toUpperCase();
      }
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
   * Sends one statement and counts it. Behind a transaction pooler, a statement outside any
   * transaction carries the statement timeout with it: `SET LOCAL` pipelined before it, in the
   * same round trip and the same implicit transaction (PgBouncer keeps both on one server
   * connection and refuses the timeout as a startup parameter). A BEGIN carries it too: the
   * transaction it opens continues that implicit one, and the setting with it.
   */
  async #send(client: pg.PoolClient, sql: string, parameters: readonly unknown[] = []): Promise<pg.QueryResult> {
    this.#statements += 1;
    const timeoutMs = this.#options.pooler?.statementTimeoutMs ?? 0;
    const result =
      timeoutMs > 0 &&
      this.#operationTransaction !== 'open' &&
      (this.#transactionOwner === undefined || /^(begin|start transaction)\b/i.test(sql))
        ? await queryWithPrefix(client, `set local statement_timeout = ${timeoutMs}`, sql, parameters)
        : await this.#run(client, sql, parameters);
    this.#answeredOnConnection += 1;
    return result;
  }

  /**
   * Runs one statement: as a named prepared statement when it is one of poolgraph's own (see
   * `preparedName`) and this scope may, else unnamed. A named statement PostgreSQL refuses as
   * stale did not run: outside a transaction block it runs once more unnamed, and in any case the
   * connection, whose record of its prepared statements is now wrong, is destroyed at release
   * instead of being pooled.
   */
  async #run(client: pg.PoolClient, sql: string, parameters: readonly unknown[]): Promise<pg.QueryResult> {
    const name = this.#options.preparedStatements ? preparedName(sql) : undefined;
    if (name === undefined) return client.query(sql, [...parameters]);
    try {
      return await queryNamed(client, name, sql, [...parameters]);
    } catch (error) {
      if (!isStalePreparedStatement(error)) throw error;
      this.#stalePreparedStatement ??= error;
      if (client.getTransactionStatus() !== 'I') throw error;
      this.#statements += 1;
      return client.query(sql, [...parameters]);
    }
  }

  /**
   * Begins the operation's transaction with its timeouts, in one round trip. Like a BEGIN of
   * Kysely's it may run again on a fresh connection when the first one was found dead.
   */
  async #beginOperationTransaction(client: pg.PoolClient): Promise<pg.PoolClient> {
    const { statementTimeoutMs = 0, idleInTransactionTimeoutMs = 0 } = this.#options.pooler ?? {};
    const begin =
      `begin; set local statement_timeout = ${statementTimeoutMs}; ` +
      `set local idle_in_transaction_session_timeout = ${idleInTransactionTimeoutMs}`;
    this.#operationTransaction = 'open';
    try {
      await this.#send(client, begin);
      return client;
    } catch (error) {
      if (!this.#mayRetry('begin', error)) {
        this.#operationTransaction = 'none';
        throw error;
      }
      const fresh = await this.#replaceDeadConnection(client, error);
      await this.#send(fresh, begin);
      return fresh;
    }
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
      if (client && this.#operationTransaction === 'open' && this.#broken === undefined) {
        // The response went without `finish()` (the client went away): keep what the operation
        // wrote, as a write outside a transaction would have been kept.
        await client.query('commit').catch((error: unknown) => (this.#broken ??= error));
        this.#operationTransaction = 'none';
      }
      if (client) {
        client.removeListener('error', this.#onClientError);
        this.#heldMs = performance.now() - this.#acquiredAt;
        // Last line of defence: whatever happened above, a connection whose server side is still
        // in a transaction ('T') or a failed one ('E') must not reach the next request.
        if (this.#broken === undefined && client.getTransactionStatus() !== 'I') {
          this.#broken = new Error('connection released inside a transaction');
        }
        this.#broken ??= this.#stalePreparedStatement;
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
      if (isPoolTimeout(error)) {
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

/**
 * Runs `sql` as the named prepared statement `name`. Given a config object (`{ name, text,
 * values }`), pg copies it property by property (`cloneQueryConfig`: 1.8 µs a statement in a
 * micro-benchmark, 3 % of `{ items { number } }`'s server time in a CPU profile); its `Query` made
 * from the text and values costs 0.1 µs, and the name is then set as its constructor would have
 * set it from a config.
 */
function queryNamed(client: pg.PoolClient, name: string, sql: string, values: unknown[]): Promise<pg.QueryResult> {
  return submitted(client, (done) => {
    const query = new pg.Query(sql, values, done);
    (query as { name?: string }).name = name;
    return query;
  });
}

/**
 * Submits the `pg.Query` that `make` builds around the callback it is given, and returns its
 * result as a promise (of a round trip of several statements, the last one's: the caller's).
 * Errors get a stack that leads back here, as pg gives those of its own promises, rather than one
 * that ends in `TCP.onStreamRead`.
 */
function submitted(client: pg.PoolClient, make: (done: QueryCallback) => object): Promise<pg.QueryResult> {
  return new Promise<pg.QueryResult>((resolve, reject) => {
    const query = make((error, result) => {
      if (error) reject(error);
      else resolve((Array.isArray(result) ? result[result.length - 1] : result) as pg.QueryResult);
    });
    // A Submittable: pg runs it as it is, without copying a config.
    (client.query as unknown as (query: object) => unknown)(query);
  }).catch((error: unknown) => {
    if (error instanceof Error) Error.captureStackTrace(error);
    throw error;
  });
}

/** pg's connection, as far as {@link queryWithPrefix} writes protocol messages to it. */
interface ProtocolConnection {
  parse(message: { text: string }): void;
  bind(message: Record<string, never>): void;
  execute(message: { portal: string }): void;
}

/** pg's `Query`, with the protocol step it runs for an extended-protocol statement. */
const PgQuery = pg.Query as unknown as new (config: pg.QueryConfig & { queryMode: 'extended'; callback: QueryCallback }) => {
  prepare(connection: ProtocolConnection): void;
};

/** What pg calls when a query it was handed finishes (several results for several statements). */
type QueryCallback = (error: Error | null | undefined, result?: pg.QueryResult | pg.QueryResult[]) => void;

/** A statement with another, parameterless one sent before it in the same round trip. */
class PrefixedQuery extends PgQuery {
  readonly #prefix: string;

  constructor(prefix: string, text: string, values: unknown[], callback: QueryCallback) {
    super({ text, values, queryMode: 'extended', callback });
    this.#prefix = prefix;
  }

  override prepare(connection: ProtocolConnection): void {
    connection.parse({ text: this.#prefix });
    connection.bind({});
    connection.execute({ portal: '' });
    super.prepare(connection);
  }
}

/**
 * Runs `prefix` (no parameters, no rows) and then `sql` in ONE round trip and one implicit
 * transaction: Parse/Bind/Execute of both, then a single Sync, so PostgreSQL commits them
 * together and a transaction pooler keeps them on one server connection. PostgreSQL warns that
 * `SET LOCAL` is outside a transaction block, and applies it until that implicit transaction ends.
 */
function queryWithPrefix(client: pg.PoolClient, prefix: string, sql: string, parameters: readonly unknown[]): Promise<pg.QueryResult> {
  return submitted(client, (done) => new PrefixedQuery(prefix, sql, [...parameters], done));
}
