import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import { type SeedSize, seed } from '../../src/db/setup/seed.js';

/** The seed tests use unless they ask for another: enough for W2 (20 categories x 10 items). */
export const TEST_SEED: SeedSize = { categories: 30, itemsPerCategory: 30 };

/** A throwaway database of one test file, migrated and seeded, dropped by `drop()`. */
export interface TestDatabase {
  /** As the superuser that made it: row-level security does not apply. */
  url: string;
  /**
   * As the server's own role (`poolgraph_app`, see src/db/setup/app-role.ts), which row-level
   * security binds: what `npm start` connects as.
   */
  appUrl: string;
  name: string;
  /** Runs one SQL statement on a connection of the test's own (not the app's pool). */
  query<Row extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<Row[]>;
  /** Connections of the app (application_name `poolgraph`) to this database, by state. */
  appConnections(): Promise<{ total: number; idleInTransaction: number }>;
  drop(): Promise<void>;
}

/** Creates, migrates and seeds a database of its own for one test file. */
export async function createTestDatabase(size: SeedSize = TEST_SEED): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `poolgraph_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${admin.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const appUrl = withDatabase(inject('appDatabaseUrl'), name);
  await migrateToLatest(url);
  await withOneConnection(url, (db) => seed(db, size));

  const observer = new pg.Pool({ connectionString: url, max: 1, application_name: 'poolgraph-test' });
  // pg-pool's end() resolves before its connections have closed; `drop database … with (force)`
  // then terminates a backend whose client is still ending. That client's `error` event, with no
  // listener, failed the run as an uncaught exception; so did the pool's own: pg-pool's listener
  // for idle clients stays on a client it ends, and re-emits the error on the pool (seen once in
  // CI, test/live/event-listener.test.ts: "terminating connection due to administrator command").
  observer.on('connect', (client) => client.on('error', () => undefined));
  observer.on('error', () => undefined);
  const query = async <Row extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
    (await observer.query<Row>(sql, params)).rows;
  return {
    url,
    appUrl,
    name,
    query,
    async appConnections() {
      const [row] = await query<{ total: number; idle_in_transaction: number }>(
        `select count(*)::int as total,
                count(*) filter (where state like 'idle in transaction%')::int as idle_in_transaction
         from pg_stat_activity where datname = current_database() and application_name = $1`,
        [APPLICATION_NAME],
      );
      return { total: row?.total ?? 0, idleInTransaction: row?.idle_in_transaction ?? 0 };
    },
    async drop() {
      await observer.end();
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      try {
        await dropper.query(`drop database if exists ${dropper.escapeIdentifier(name)} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
