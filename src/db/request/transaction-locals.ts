import { WritesRolledBackError } from '../../errors.js';
import type { PrefixStatement } from './pg-protocol.js';
import { BEGIN_STATEMENT, WRITE_STATEMENT } from './request-connection.js';

/**
 * The settings a request needs behind a pooler in transaction mode (`DATABASE_POOLER=transaction`,
 * PgBouncer): what PostgreSQL would otherwise get as startup parameters, which such a pooler
 * refuses.
 */
export interface PoolerSettings {
  /** Sent as `SET LOCAL statement_timeout`; 0: no limit. */
  statementTimeoutMs: number;
  /** Sent as `SET LOCAL idle_in_transaction_session_timeout` in the operation's transaction. */
  idleInTransactionTimeoutMs: number;
  /** `AUTH_MODE=open`: sent as `SET LOCAL poolgraph.open_writes = on` (see migration 0002). */
  openWrites?: boolean;
}

/** What {@link TransactionLocals} sets in each transaction of one request. */
export interface LocalSettings {
  /** Behind a transaction pooler. */
  pooler?: PoolerSettings | undefined;
  /**
   * The caller's verified claims as JSON: `set_config('request.jwt.claims', claims, true)`, which
   * row-level security policies read (migration 0002; docs/design.md, I7).
   */
  claims?: string | undefined;
  /** Whether the claims' `set_config` may run as a named prepared statement (see `preparedName`). */
  preparedStatements?: boolean;
}

const SET_CLAIMS = "select set_config('request.jwt.claims', $1, true)";
/** Its name as a prepared statement: parsed once per connection where statements are prepared. */
const SET_CLAIMS_NAME = 'poolgraph_set_claims';
const BEGIN: PrefixStatement = { text: 'begin' };
const OPEN_WRITES: PrefixStatement = { text: 'set local poolgraph.open_writes = on' };
const WRITE_SAVEPOINT: PrefixStatement = { text: 'savepoint poolgraph_write' };

/**
 * What one request does when some of its settings must live in its transactions, because they
 * cannot live in the session: behind a transaction pooler, which gives each transaction a server
 * connection of its choice (the timeouts), and for a caller with a token (the claims, which must
 * never reach the next request on the same connection: I7).
 * - A statement outside any transaction carries the settings with it, pipelined before it in the
 *   same round trip and the same implicit transaction ({@link TransactionLocals.before}); so does
 *   a BEGIN, since the transaction it opens continues that implicit one, and the settings with it.
 * - An operation that may run several statements (`runsAtMostOneStatement` in ./statement-plan.ts)
 *   runs them in ONE transaction (one server connection, I1; the claims set once): its BEGIN and
 *   the settings are pipelined with its first statement, and the scope's `finish()` commits it.
 * - In that transaction, each write gets a savepoint, so a failed write leaves the others
 *   standing, as it would outside it, and a Kysely transaction becomes a savepoint.
 *
 * The request scope asks this object at each of those points; it sends nothing itself.
 */
export class TransactionLocals {
  readonly #pooler: PoolerSettings | undefined;
  /** The caller's `set_config`, if any. */
  readonly #claims: PrefixStatement | undefined;
  /**
   * The statements to pipeline, made at first use (a request with claims and no pooler uses one):
   * by slot, `begin ? 2 : 0` (opening the operation's transaction, or before a lone statement)
   * `+ write ? 1 : 0` (with the open mode's write flag, which only writes need).
   */
  readonly #prefixes: (readonly PrefixStatement[] | undefined)[] = [];
  /** The operation's own transaction: wanted, open, or neither. */
  #state: 'none' | 'wanted' | 'open' = 'none';
  /** A write of the operation's transaction succeeded (a COMMIT that rolls back loses it). */
  #wrote = false;
  /** The operation may write (a mutation): its transaction carries the write flag too. */
  #writes = false;

  constructor(settings: LocalSettings) {
    const { pooler, claims } = settings;
    this.#pooler = pooler;
    this.#claims =
      claims === undefined
        ? undefined
        : { text: SET_CLAIMS, values: [claims], ...(settings.preparedStatements ? { name: SET_CLAIMS_NAME } : {}) };
  }

  #prefix(begin: boolean, write: boolean): readonly PrefixStatement[] {
    const slot = (begin ? 2 : 0) + (write ? 1 : 0);
    let prefix = this.#prefixes[slot];
    if (!prefix) {
      const pooler = this.#pooler;
      const statements: PrefixStatement[] = begin ? [BEGIN] : [];
      if (pooler && pooler.statementTimeoutMs > 0) statements.push({ text: `set local statement_timeout = ${pooler.statementTimeoutMs}` });
      if (pooler && begin) statements.push({ text: `set local idle_in_transaction_session_timeout = ${pooler.idleInTransactionTimeoutMs}` });
      if (pooler?.openWrites && write) statements.push(OPEN_WRITES);
      if (this.#claims) statements.push(this.#claims);
      this.#prefixes[slot] = prefix = statements;
    }
    return prefix;
  }

  /** The operation may write outside any transaction of its own (a mutation). */
  markWrites(): void {
    this.#writes = true;
  }

  /** The operation's transaction is open. */
  get open(): boolean {
    return this.#state === 'open';
  }

  /** An operation of several statements wants its transaction (only before its first statement). */
  plan(atMostOne: boolean, connectionRequested: boolean): void {
    if (!atMostOne && this.#state === 'none' && !connectionRequested) this.#state = 'wanted';
  }

  /**
   * What to pipeline before `sql` (`inTransaction`: a Kysely transaction is open), or undefined:
   * - the operation's BEGIN with the settings, when its transaction is wanted (it counts as open
   *   from now on);
   * - the settings, before a statement outside any transaction or a Kysely BEGIN;
   * - a savepoint, before a write in the operation's transaction outside a Kysely one: there a
   *   failed statement would abort every later one (roll back to it with {@link savepointRollback}).
   */
  before(sql: string, inTransaction: boolean): readonly PrefixStatement[] | undefined {
    let prefix: readonly PrefixStatement[] | undefined;
    if (this.#state === 'wanted') {
      this.#state = 'open';
      prefix = this.#prefix(true, this.#writes);
    } else if (this.#state === 'none') {
      const begins = BEGIN_STATEMENT.test(sql);
      if (!inTransaction || begins) {
        const settings = this.#prefix(false, this.#writes || begins || WRITE_STATEMENT.test(sql));
        if (settings.length > 0) prefix = settings;
      }
    }
    if (this.needsWriteSavepoint(sql, inTransaction)) prefix = [...(prefix ?? []), WRITE_SAVEPOINT];
    return prefix;
  }

  /** True when {@link before} put a savepoint before `sql`. */
  needsWriteSavepoint(sql: string, inTransaction: boolean): boolean {
    return this.#state === 'open' && !inTransaction && WRITE_STATEMENT.test(sql);
  }

  /** What undoes a failed write after its savepoint. */
  get savepointRollback(): string {
    return 'rollback to savepoint poolgraph_write';
  }

  /**
   * The statement that carried the operation's BEGIN never reached the server (its connection was
   * dead): its transaction is wanted again, to begin on the next connection.
   */
  beginLost(prefix: readonly PrefixStatement[] | undefined): void {
    if (prefix?.[0] === BEGIN) this.#state = 'wanted';
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
