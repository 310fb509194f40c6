import { WritesRolledBackError } from '../../errors.js';
import { BEGIN_STATEMENT, WRITE_STATEMENT } from './request-connection.js';

/**
 * The settings a request needs behind a pooler in transaction mode (`DATABASE_POOLER=transaction`,
 * PgBouncer): the timeouts PostgreSQL would otherwise get as startup parameters, which such a
 * pooler refuses.
 */
export interface PoolerSettings {
  /** Sent as `SET LOCAL statement_timeout`; 0: no limit. */
  statementTimeoutMs: number;
  /** Sent as `SET LOCAL idle_in_transaction_session_timeout` in the operation's transaction. */
  idleInTransactionTimeoutMs: number;
}

/**
 * What one request does differently behind a transaction pooler, which gives each transaction a
 * server connection of its choice:
 * - the timeouts are set with `SET LOCAL`: in the operation's transaction, or, for a statement
 *   outside one, pipelined before it in the same round trip (one implicit transaction), see
 *   {@link TransactionPoolerSemantics.timeoutPrefix};
 * - an operation that may run several statements (`runsAtMostOneStatement` in
 *   ./statement-plan.ts) runs them in ONE transaction, so they all run on one server connection
 *   (I1 on the server side): begun at its first statement, committed by the scope's `finish()`;
 * - in that transaction, each write gets a savepoint, so a failed write leaves the others
 *   standing, as it would outside it, and a Kysely transaction becomes a savepoint.
 *
 * The request scope asks this object at each of those points; it sends nothing itself.
 */
export class TransactionPoolerSemantics {
  readonly #settings: PoolerSettings;
  /** The operation's own transaction: wanted, open, or neither. */
  #state: 'none' | 'wanted' | 'open' = 'none';
  /** A write of the operation's transaction succeeded (a COMMIT that rolls back loses it). */
  #wrote = false;

  constructor(settings: PoolerSettings) {
    this.#settings = settings;
  }

  /** The operation's transaction is open. */
  get open(): boolean {
    return this.#state === 'open';
  }

  /** The operation's transaction is to begin at its first statement. */
  get wanted(): boolean {
    return this.#state === 'wanted';
  }

  /** An operation of several statements wants its transaction (only before its first statement). */
  plan(atMostOne: boolean, connectionRequested: boolean): void {
    if (!atMostOne && this.#state === 'none' && !connectionRequested) this.#state = 'wanted';
  }

  /**
   * Opens the operation's transaction: from now on it counts as open (so no timeout prefix goes
   * before its BEGIN), and returns that BEGIN with its timeouts, to send in one round trip.
   */
  beginOperation(): string {
    this.#state = 'open';
    return (
      `begin; set local statement_timeout = ${this.#settings.statementTimeoutMs}; ` +
      `set local idle_in_transaction_session_timeout = ${this.#settings.idleInTransactionTimeoutMs}`
    );
  }

  /** The BEGIN failed: no transaction is open. */
  beginFailed(): void {
    this.#state = 'none';
  }

  /**
   * The `SET LOCAL statement_timeout` to pipeline before `sql`, or undefined: a statement outside
   * any transaction carries the timeout with it, and so does a BEGIN, since the transaction it
   * opens continues that implicit one, and the setting with it.
   */
  timeoutPrefix(sql: string, inTransaction: boolean): string | undefined {
    const timeoutMs = this.#settings.statementTimeoutMs;
    if (timeoutMs <= 0 || this.#state === 'open' || (inTransaction && !BEGIN_STATEMENT.test(sql))) return undefined;
    return `set local statement_timeout = ${timeoutMs}`;
  }

  /**
   * True when `sql` needs a savepoint first: inside the operation's transaction a failed statement
   * would abort every later one, so a write outside a Kysely transaction gets one to roll back to.
   */
  needsWriteSavepoint(sql: string, inTransaction: boolean): boolean {
    return this.#state === 'open' && !inTransaction && WRITE_STATEMENT.test(sql);
  }

  /** `sql` succeeded: a write inside the operation's transaction is remembered. */
  succeeded(sql: string): void {
    if (this.#state === 'open' && WRITE_STATEMENT.test(sql)) this.#wrote = true;
  }

  /** What a Kysely transaction's BEGIN becomes: a savepoint inside the operation's transaction. */
  beginStatement(sql: string): string {
    return this.#state === 'none' ? sql : 'savepoint poolgraph_transaction';
  }

  /** What a Kysely transaction's end becomes inside the operation's transaction, or undefined. */
  endStatement(command: 'commit' | 'rollback'): string | undefined {
    if (this.#state === 'none') return undefined;
    return command === 'commit' ? 'release savepoint poolgraph_transaction' : 'rollback to savepoint poolgraph_transaction';
  }

  /**
   * Checks the operation's COMMIT: PostgreSQL answers ROLLBACK when a statement aborted the
   * transaction (its error is in the response already). Reads lose nothing; writes that reported
   * success were undone, which the client must learn.
   */
  committed(command: string): void {
    if (command === 'ROLLBACK' && this.#wrote) throw new WritesRolledBackError();
  }

  /** The operation's transaction has ended (committed, or given up with its connection). */
  ended(): void {
    this.#state = 'none';
  }
}
