import type { Kysely } from 'kysely';
import type pg from 'pg';
import { DatabaseBusyError, DatabaseUnavailableError, StatementTimeoutError } from '../../errors.js';
import type { Database } from '../schema.js';
import { isConnectionFailure, isStatementTimeout, RequestFinishedError } from './connection-failures.js';
import type { ConnectionSource } from './connection-source.js';
import type { PrefixStatement } from './pg-protocol.js';
import { preparedName, runStatement } from './prepared-statements.js';
import { RequestConnection, type RequestScopeStats, WRITE_STATEMENT } from './request-connection.js';
import { createScopeDb, type StatementTarget } from './scope-dialect.js';
import { type PoolerSettings, TransactionLocals } from './transaction-locals.js';

export type { RequestScopeStats } from './request-connection.js';
export { RequestFinishedError } from './connection-failures.js';

/** Options of {@link RequestScope}. */
export interface RequestScopeOptions {
  /** The pool's acquire timeout, quoted in the `DATABASE_BUSY` message. */
  poolTimeoutMs: number;
  /** Called once, after the connection went back to the pool (or when none was taken). */
  onRelease?: (stats: RequestScopeStats) => void;
  /** Receives what `onRelease` threw; it is not rethrown. */
  onObserverError?: (error: unknown) => void;
  /** Behind a transaction pooler (`DATABASE_POOLER=transaction`): see {@link TransactionLocals}. */
  pooler?: PoolerSettings | undefined;
  /**
   * The caller's verified claims as JSON, set in each of the request's transactions (see
   * {@link TransactionLocals}); undefined for an anonymous request, whose statements carry nothing.
   */
  claims?: string | undefined;
  /**
   * Runs poolgraph's own statements as named prepared statements (see `preparedName`): parsed
   * and planned once per connection instead of at every run. Only where each pooled connection is
   * one PostgreSQL session: not behind a transaction pooler, which may run a Bind on a server
   * connection that never saw its Parse. @default false
   */
  preparedStatements?: boolean;
}


/** "Nothing to wait for", shared by every scope. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * The database side of one request: a Kysely instance (`db`) whose every statement runs on the
 * same pooled connection (a {@link RequestConnection}), taken lazily at the first statement, so a
 * request that runs no SQL takes none; `release()` returns it on every path. Its lifecycle:
 * - **acquire**: the first statement takes the connection;
 * - **serialize**: statements run one at a time, in call order, and transactions one after the
 *   other (two resolvers of the same request cannot interleave `BEGIN`s on the one connection;
 *   statements sent outside the transaction while it is open join it, since they share it);
 * - **release**: refuses new statements outside a transaction, waits for the statements in
 *   flight and for an open transaction to finish, then returns the connection, or destroys it
 *   when it broke or would go back with a transaction open. Only then can no statement of this
 *   request land on a connection another request is using. Safe while resolvers still run.
 *
 * Its other jobs live beside it: the connection and its retries (./request-connection.ts), what a
 * failure means (./connection-failures.ts), the transaction pooler's rules, prepared statements
 * and pg's internals (./transaction-locals.ts, ./prepared-statements.ts, ./pg-protocol.ts).
 */
export class RequestScope implements StatementTarget {
  /** Kysely bound to this request's connection. Never use it after the response has finished. */
  readonly db: Kysely<Database>;

  readonly #connection: RequestConnection;
  readonly #preparedStatements: boolean;
  /** Settings that live in the request's transactions (pooler timeouts, claims), if any. */
  readonly #locals: TransactionLocals | undefined;
  readonly #options: RequestScopeOptions;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #released: Promise<void> | undefined;
  #inFlight = 0;
  #lastStatement: Promise<void> = SETTLED;
  /** Who opened the transaction now open (Kysely's connection object for it), if any. */
  #transactionOwner: object | undefined;
  #transactionLock: Promise<void> = SETTLED;
  #unlockTransaction: (() => void) | undefined;
  #writes = false;
  #whenQuiet: (() => void) | undefined;

  constructor(source: ConnectionSource, options: RequestScopeOptions) {
    this.#connection = new RequestConnection(source, options.poolTimeoutMs);
    this.#preparedStatements = options.preparedStatements ?? false;
    this.#locals =
      options.pooler || options.claims !== undefined
        ? new TransactionLocals({ pooler: options.pooler, claims: options.claims, preparedStatements: this.#preparedStatements })
        : undefined;
    this.#options = options;
    this.db = createScopeDb(this);
  }

  /** What this request did with the database so far. */
  get stats(): RequestScopeStats {
    return this.#connection.stats;
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
    const [previous, done] = this.#nextTurn();
    try {
      await previous;
      const connection = this.#connection;
      let client = await connection.client();
      if (this.#writes && connection.needsPrePing(sql, client)) client = await connection.prePing(client);
      const locals = this.#locals;
      const inTransaction = this.#transactionOwner !== undefined;
      const prefix = locals?.before(sql, inTransaction);
      const savepoint = locals?.needsWriteSavepoint(sql, inTransaction) ?? false;
      try {
        const result = await this.#send(client, sql, parameters, prefix);
        locals?.succeeded(sql);
        return result;
      } catch (error) {
        if (savepoint && locals && !isConnectionFailure(error)) {
          await this.#send(client, locals.savepointRollback).catch((rollbackFailed: unknown) => {
            connection.markBroken(rollbackFailed);
          });
        }
        if (!this.#mayRetry(sql, error)) throw error;
        // The connection was dead before this request used it (the server restarted, a proxy
        // dropped it): nothing ran, so run the statement once more on a fresh connection, with
        // the operation's BEGIN again if it went with it.
        locals?.beginLost(prefix);
        const fresh = await connection.replaceDead(client, error);
        return await this.#send(fresh, sql, parameters, locals?.before(sql, inTransaction));
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
   * (`runsAtMostOneStatement` in ./statement-plan.ts). Behind a transaction pooler, or for a
   * caller with claims, an operation of several statements runs them in one transaction, committed
   * by {@link finish}; one of a single statement pays no BEGIN/COMMIT. Otherwise this changes
   * nothing (see {@link plansStatements}).
   */
  planStatements(atMostOne: boolean): void {
    this.#locals?.plan(atMostOne, this.#connection.requested);
  }

  /** True when {@link planStatements} matters: the walk that answers it can be skipped otherwise. */
  get plansStatements(): boolean {
    return this.#locals !== undefined;
  }

  /**
   * Commits the operation's transaction (see {@link planStatements}), once the operation has
   * run and before its response is sent, so that a failed COMMIT can still fail the response.
   * Nothing to do otherwise.
   */
  async finish(): Promise<void> {
    const locals = this.#locals;
    if (!locals?.open) return;
    // In the statement queue: a statement a resolver sends late runs after the COMMIT, with the
    // settings of a statement outside a transaction, never after it without them.
    const [previous, done] = this.#nextTurn();
    try {
      await previous;
      if (!locals.open) return;
      const client = await this.#connection.client();
      try {
        locals.committed((await this.#send(client, 'commit')).command);
      } catch (error) {
        this.#connection.markBroken(error);
        throw error instanceof DatabaseUnavailableError || !isConnectionFailure(error)
          ? error
          : new DatabaseUnavailableError(error, this.#writes);
      } finally {
        locals.ended();
      }
    } finally {
      done();
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
      await this.query(this.#locals ? this.#locals.beginStatement(sql) : sql);
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
      const inOperation = this.#locals?.endStatement(command);
      if (inOperation !== undefined) {
        await this.query(inOperation);
        return command.toUpperCase();
      }
      return (await this.query(command)).command;
    } catch (error) {
      // The transaction's state on the server is unknown now: never hand this connection on.
      this.#connection.markBroken(error);
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
    this.#locals?.markWrites();
    this.#connection.allowReplica(false);
  }

  /**
   * Declares that everything this request will run only reads (a query operation, not part of a
   * batch), before its first statement: its connection may then come from a read replica.
   */
  markReadOnly(): void {
    if (!this.#connection.requested && !this.#writes) this.#connection.allowReplica(true);
  }

  /**
   * Returns the connection to the pool (or destroys it if it broke) once the statements in flight
   * and any open transaction have finished. Idempotent: every call returns the same promise.
   */
  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  /** Takes the next place in the statement queue: wait for `previous`, call `done` after. */
  #nextTurn(): [previous: Promise<void>, done: () => void] {
    const previous = this.#lastStatement;
    let done!: () => void;
    this.#lastStatement = new Promise((resolve) => (done = resolve));
    return [previous, done];
  }

  #mayRetry(sql: string, error: unknown): boolean {
    return this.#state === 'open' && this.#connection.mayRetry(sql, error, this.#writes);
  }

  /** Sends one statement (with `prefix` pipelined before it, see {@link TransactionLocals}) and counts it. */
  async #send(
    client: pg.PoolClient,
    sql: string,
    parameters: readonly unknown[] = [],
    prefix?: readonly PrefixStatement[],
  ): Promise<pg.QueryResult> {
    this.#connection.sent();
    const name = this.#preparedStatements ? preparedName(sql) : undefined;
    const result = await runStatement(client, name, sql, parameters, this.#connection, prefix);
    this.#connection.answeredOne();
    return result;
  }

  #closeTransaction(): void {
    this.#transactionOwner = undefined;
    this.#unlockTransaction?.();
    this.#unlockTransaction = undefined;
    this.#checkQuiet();
  }

  async #release(): Promise<void> {
    this.#state = 'closing';
    try {
      await this.#quiet();
      const client = await this.#connection.settled();
      if (client && this.#locals?.open && !this.#connection.broken) {
        // The response went without `finish()` (the client went away): keep what the operation
        // wrote, as a write outside a transaction would have been kept.
        await client.query('commit').catch((error: unknown) => this.#connection.markBroken(error));
        this.#locals.ended();
      }
      this.#connection.release(client);
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

  /** `wrote`: the failed statement was a write, whose outcome a lost connection leaves unknown. */
  #translate(error: unknown, wrote: boolean): unknown {
    if (error instanceof DatabaseBusyError || error instanceof DatabaseUnavailableError) return error;
    if (isStatementTimeout(error)) return new StatementTimeoutError(error);
    if (this.#connection.broken || isConnectionFailure(error)) {
      this.#connection.reportFailure(error);
      this.#connection.markBroken(error);
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
