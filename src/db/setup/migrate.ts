import { type DialectAdapter, type Kysely, Migrator, type MigrationResultSet, PostgresAdapter, PostgresDialect, sql } from 'kysely';
import { migrations } from './migrations/index.js';
import { withOneConnection } from './one-connection.js';

/** The database was migrated by a newer poolgraph: it has migrations this code does not know. */
export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/** The advisory lock that keeps two processes from migrating at once. */
const MIGRATION_LOCK_ID = 3853314791062309107n;

/**
 * PostgreSQL's Kysely adapter, with the migration lock held by the migration's transaction
 * (`pg_advisory_xact_lock`, released by its COMMIT or ROLLBACK) instead of the session. Kysely's
 * own lock is session-level: taken and released by two statements outside the transaction. Behind
 * a transaction pooler (PgBouncer, `DATABASE_POOLER=transaction`) those may run on two different
 * server connections, so the release can miss and the lock stays held on a pooled server
 * connection, and every later start then waits on it (seen: a second instance never started).
 */
class TransactionLockAdapter extends PostgresAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`select pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_ID)})`.execute(db);
  }

  override async releaseMigrationLock(): Promise<void> {
    // Released with the transaction.
  }
}

class MigrationDialect extends PostgresDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionLockAdapter();
  }
}

/**
 * Brings the database at `connectionString` to the latest schema with Kysely's `Migrator`, on a
 * connection of its own (closed before returning). Everything — the lock, the checks, every
 * migration — runs in ONE transaction, holding a transaction-level advisory lock, so processes
 * starting together do not race, a failed migration leaves nothing applied and no lock behind,
 * and a transaction pooler keeps it all on one server connection. Returns the names of the
 * migrations it applied.
 */
export async function migrateToLatest(connectionString: string): Promise<string[]> {
  return withOneConnection<string[], unknown>(
    connectionString,
    // Kysely's Migrator would open its transaction after taking the lock; ours must hold the
    // lock, so the Migrator runs inside it, on the same connection, with its own transactions off.
    (db) =>
      db.connection().execute(async (connection) => {
        await sql`begin`.execute(connection);
        try {
          const migrator = new Migrator({ db: connection, provider: { getMigrations: async () => migrations }, disableTransactions: true });
          const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
          if (error) throw migrationError(error, results);
          await sql`commit`.execute(connection);
          return (results ?? []).map((result) => result.migrationName);
        } catch (error) {
          // Nothing applied stays, and the lock goes with the transaction.
          await sql`rollback`.execute(connection).catch(() => undefined);
          throw error;
        }
      }),
    MigrationDialect,
  );
}

function migrationError(error: unknown, results: MigrationResultSet['results']): MigrationError {
  if (errorMessage(error).startsWith('corrupted migrations')) {
    return new MigrationError(
      'the database was migrated by a newer poolgraph (it has migrations this version does not ' +
        'know): run a newer poolgraph, or point DATABASE_URL at another database',
      { cause: error },
    );
  }
  const failed = results?.find((result) => result.status === 'Error');
  return new MigrationError(
    failed ? `migration ${failed.migrationName} failed: ${errorMessage(error)}` : `migrations could not run: ${errorMessage(error)}`,
    { cause: error },
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
