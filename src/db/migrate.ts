import { Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from './migrations/index.js';
import { withOneConnection } from './one-connection.js';

/** The database was migrated by a newer poolgraph: it has migrations this code does not know. */
export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/**
 * Brings the database at `connectionString` to the latest schema with Kysely's `Migrator`, on a
 * connection of its own (closed before returning). Kysely takes a lock, so processes starting
 * together do not race. Returns the names of the migrations it applied.
 */
export async function migrateToLatest(connectionString: string): Promise<string[]> {
  return withOneConnection<string[], unknown>(connectionString, async (db) => {
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
    const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
    if (error) {
      if (errorMessage(error).startsWith('corrupted migrations')) {
        throw new MigrationError(
          'the database was migrated by a newer poolgraph (it has migrations this version does not ' +
            'know): run a newer poolgraph, or point DATABASE_URL at another database',
          { cause: error },
        );
      }
      const failed = results?.find((result) => result.status === 'Error');
      throw new MigrationError(
        failed
          ? `migration ${failed.migrationName} failed: ${errorMessage(error)}`
          : `migrations could not run: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    return (results ?? []).map((result) => result.migrationName);
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
