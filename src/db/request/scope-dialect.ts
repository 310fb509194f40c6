import {
  type CompiledQuery,
  type ConnectionProvider,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type KyselyProps,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
  DefaultQueryExecutor,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import type pg from 'pg';
import type { Database } from '../schema.js';

/**
 * The few things this dialect needs of a request scope (`RequestScope` implements them), declared
 * here as Kysely's drivers declare `DatabaseConnection`, so the dialect does not depend on the
 * scope's class.
 */
export interface StatementTarget {
  /** Runs one statement on the request's connection. */
  query(sql: string, parameters: readonly unknown[]): Promise<pg.QueryResult>;
  /** Opens `owner`'s transaction with `sql` (`BEGIN` or `START TRANSACTION ...`). */
  beginTransaction(sql: string, owner: object): Promise<void>;
  /** Ends `owner`'s transaction; the command PostgreSQL reported, or undefined when it was not open. */
  endTransaction(command: 'commit' | 'rollback', owner: object): Promise<string | undefined>;
}

/**
 * Builds the Kysely of one request scope: every statement it runs goes to
 * `scope.query`, every transaction through `scope.beginTransaction/endTransaction`.
 *
 * Kysely's own `PostgresDriver` calls `pool.connect()` for every query (kysely #1745), so a
 * Kysely shared over the pool would spread one request over several connections; each request
 * therefore needs a Kysely bound to its scope. `new Kysely({ dialect })` would build a driver, a
 * runtime driver, a connection provider, a query compiler, an adapter and an executor for it,
 * every request. Instead this builds only the two objects that know the scope
 * (a connection provider and the executor holding it) and a Kysely from {@link KyselyProps},
 * the way Kysely's own `withPlugin` does; the compiler, adapter, dialect and driver are made
 * once per process. Cost: three small objects per request.
 */
export function createScopeDb(scope: StatementTarget): Kysely<Database> {
  const executor = new DefaultQueryExecutor(COMPILER, ADAPTER, new ScopeConnectionProvider(scope));
  // Fields spelled out: spreading a module-level object here cost more than the rest together.
  return new Kysely<Database>({ config: SCOPE_CONFIG, dialect: SCOPE_DIALECT, driver: SCOPE_DRIVER, executor });
}

const AFFECTED_ROWS_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * Kysely's view of the scope's connection. A new one is made for every statement and every
 * transaction (all running on the scope's one connection): Kysely passes the one it got for a
 * transaction to begin/commit/rollback, so the scope can tell which transaction a COMMIT or
 * ROLLBACK belongs to, and the process-wide driver finds the scope through it.
 */
class ScopeConnection implements DatabaseConnection {
  readonly scope: StatementTarget;

  constructor(scope: StatementTarget) {
    this.scope = scope;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.scope.query(compiledQuery.sql, compiledQuery.parameters);
    return AFFECTED_ROWS_COMMANDS.has(result.command)
      ? { rows: result.rows as R[], numAffectedRows: BigInt(result.rowCount ?? 0) }
      : { rows: result.rows as R[] };
  }

  // Not offered: a cursor would hold the request's single connection for as long as a consumer
  // keeps it open.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming queries are not supported on a request scope.');
  }
}

/**
 * Lends Kysely a fresh {@link ScopeConnection} per statement or transaction. Nothing to release:
 * the scope returns its connection once, when the response has finished.
 */
class ScopeConnectionProvider implements ConnectionProvider {
  readonly #scope: StatementTarget;

  constructor(scope: StatementTarget) {
    this.#scope = scope;
  }

  async provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    return consumer(new ScopeConnection(this.#scope));
  }
}

/** The scope of a connection this module lent to Kysely. */
function scopeOf(connection: DatabaseConnection): StatementTarget {
  if (connection instanceof ScopeConnection) return connection.scope;
  throw new Error('Not a request scope connection.');
}

/**
 * Kysely's driver for every request scope of the process. It holds no state: the scope of a
 * transaction comes with the connection object Kysely hands back. Kysely never asks this driver
 * for a connection — {@link createScopeDb}'s executor lends them — so `acquireConnection` refuses.
 */
class ScopeDriver implements Driver {
  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    throw new Error('A request scope lends its connections through its Kysely; build one with createScopeDb(scope).');
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let sql = 'begin';
    if (settings.isolationLevel || settings.accessMode) {
      sql = 'start transaction';
      if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode) sql += ` ${settings.accessMode}`;
    }
    await scopeOf(connection).beginTransaction(sql, connection);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // PostgreSQL answers COMMIT with a ROLLBACK tag when an earlier statement aborted the
    // transaction; treat that as the failure it is rather than as a successful write.
    const command = await scopeOf(connection).endTransaction('commit', connection);
    if (command === 'ROLLBACK') {
      throw new Error('The transaction was aborted by an earlier error and rolled back.');
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await scopeOf(connection).endTransaction('rollback', connection);
  }

  // Kysely's controlled transactions call these with `?.`: left out, a savepoint would silently
  // do nothing. Refused with the message Kysely's RuntimeDriver (which wrapped this driver when
  // each request built its Kysely from a dialect) gives for a driver without savepoints.
  async savepoint(): Promise<void> {
    throw new Error('The `savepoint` method is not supported by this driver');
  }

  async rollbackToSavepoint(): Promise<void> {
    throw new Error('The `rollbackToSavepoint` method is not supported by this driver');
  }

  async releaseSavepoint(): Promise<void> {
    throw new Error('The `releaseSavepoint` method is not supported by this driver');
  }

  async releaseConnection(): Promise<void> {
    // The scope releases its connection once, when the response has finished.
  }

  async destroy(): Promise<void> {
    // Nothing is owned here: the pool belongs to the process and the connection to the scope.
  }
}

/**
 * One compiler for every scope of the process, as one Kysely shares its compiler among all its
 * concurrent queries. Safe: `compileQuery` is synchronous and resets its state (`#sql`,
 * `#parameters`, the node stack) at its start, and nothing it calls compiles another query, so two
 * compilations never interleave.
 */
const COMPILER = new PostgresQueryCompiler();
/** Stateless: says what PostgreSQL supports (RETURNING, transactional DDL, advisory-lock migrations). */
const ADAPTER = new PostgresAdapter();

/**
 * The dialect behind every scope's Kysely, for what Kysely asks of a dialect after construction
 * (`db.introspection`). Its driver is the process-wide one and cannot lend connections.
 */
const SCOPE_DIALECT: Dialect = {
  createAdapter: (): DialectAdapter => ADAPTER,
  createDriver: (): Driver => SCOPE_DRIVER,
  createQueryCompiler: (): QueryCompiler => COMPILER,
  createIntrospector: (db): DatabaseIntrospector => new PostgresIntrospector(db),
};

const SCOPE_DRIVER = new ScopeDriver();

/** `KyselyProps.config` of every scope's Kysely: Kysely keeps it and reads nothing from it once built. */
const SCOPE_CONFIG: KyselyProps['config'] = { dialect: SCOPE_DIALECT };
