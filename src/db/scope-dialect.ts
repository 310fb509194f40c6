import {
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import type { RequestScope } from './request-scope.js';

/**
 * A Kysely dialect that runs every statement on one {@link RequestScope}'s connection.
 *
 * Kysely's own `PostgresDriver` calls `pool.connect()` for every query (kysely #1745), so a
 * Kysely shared over the pool would spread one request over several connections. This driver
 * instead hands Kysely the scope's single connection every time; the scope owns acquire and
 * release, so Kysely's `releaseConnection` does nothing here.
 */
export class ScopeDialect implements Dialect {
  readonly #scope: RequestScope;

  constructor(scope: RequestScope) {
    this.#scope = scope;
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createDriver(): Driver {
    return new ScopeDriver(this.#scope);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createIntrospector(db: Parameters<Dialect['createIntrospector']>[0]): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

const AFFECTED_ROWS_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/** Kysely's view of the scope's connection. */
class ScopeConnection implements DatabaseConnection {
  readonly #scope: RequestScope;

  constructor(scope: RequestScope) {
    this.#scope = scope;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#scope.query(compiledQuery.sql, compiledQuery.parameters);
    return {
      rows: result.rows as R[],
      ...(AFFECTED_ROWS_COMMANDS.has(result.command)
        ? { numAffectedRows: BigInt(result.rowCount ?? 0) }
        : {}),
    };
  }

  // Not offered: a cursor would hold the request's single connection for as long as a consumer
  // keeps it open.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming queries are not supported on a request scope.');
  }
}

/**
 * Kysely's driver over the scope. Every `acquireConnection` returns a new connection object (all
 * running on the scope's one connection): Kysely passes that object to begin/commit/rollback, so
 * the scope can tell which transaction a COMMIT or ROLLBACK belongs to.
 */
class ScopeDriver implements Driver {
  readonly #scope: RequestScope;

  constructor(scope: RequestScope) {
    this.#scope = scope;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new ScopeConnection(this.#scope);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let sql = 'begin';
    if (settings.isolationLevel || settings.accessMode) {
      sql = 'start transaction';
      if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode) sql += ` ${settings.accessMode}`;
    }
    await this.#scope.beginTransaction(sql, connection);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // PostgreSQL answers COMMIT with a ROLLBACK tag when an earlier statement aborted the
    // transaction; treat that as the failure it is rather than as a successful write.
    const command = await this.#scope.endTransaction('commit', connection);
    if (command === 'ROLLBACK') {
      throw new Error('The transaction was aborted by an earlier error and rolled back.');
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await this.#scope.endTransaction('rollback', connection);
  }

  async releaseConnection(): Promise<void> {
    // The scope releases its connection once, when the response has finished.
  }

  async destroy(): Promise<void> {
    // Nothing is owned here: the pool belongs to the process and the connection to the scope.
  }
}
