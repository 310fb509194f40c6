import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../schema.js';

/**
 * Runs `work` on a Kysely of its own over one connection to `connectionString`, and closes it
 * afterwards on every path. For one-off jobs (migrations, the seed, tools), never for requests:
 * those borrow from the process's pool through their request scope. `Dialect` may be a subclass
 * of Kysely's PostgreSQL dialect (migrations use one with a transaction-level lock).
 */
export async function withOneConnection<Result, DB = Database>(
  connectionString: string,
  work: (db: Kysely<DB>) => Promise<Result>,
  Dialect: typeof PostgresDialect = PostgresDialect,
): Promise<Result> {
  const db = new Kysely<DB>({
    dialect: new Dialect({ pool: new pg.Pool({ connectionString, max: 1 }) }),
  });
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}
