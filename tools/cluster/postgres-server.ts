import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { type ManagedProcess, spawnManaged, type StopStep } from './managed-process.js';
import type { OsUser } from './service-user.js';
import { type DatabaseEndpoint, endpointUrl, queryOnce } from './sql.js';

/** The app's role and database on every server of the cluster. */
export const APP_ROLE = 'poolgraph';
/** The role the replica streams as (REPLICATION, not a superuser). */
export const REPLICATION_ROLE = 'replicator';
/** PostgreSQL's superuser, as initdb names it with `-U`. */
export const SUPERUSER = 'postgres';

/** Fast shutdown (SIGINT: ends sessions, checkpoints), then immediate (SIGQUIT), then SIGKILL. */
const STOP_LADDER: readonly StopStep[] = [
  { signal: 'SIGINT', waitMs: 30_000 },
  { signal: 'SIGQUIT', waitMs: 5_000 },
  { signal: 'SIGKILL', waitMs: 5_000 },
];
/** A primary is ready in about a second; a standby once it has reached a consistent state. */
const START_TIMEOUT_MS = 30_000;
const READY_LINE = /database system is ready to accept (read-only )?connections/;

/** Passwords of the three roles every server of one cluster shares (a replica copies them). */
export interface PostgresPasswords {
  superuser: string;
  app: string;
  replication: string;
}

/** What {@link PostgresServer} needs to run `postgres` on an initialised data directory. */
export interface PostgresServerSettings {
  /** `primary`, `replica`: names the process in errors and in `ps` (`cluster_name`). */
  name: string;
  port: number;
  /** The server's folder: `data/` inside it is PGDATA, the folder itself holds the Unix socket. */
  dir: string;
  maxConnections: number;
  passwords: PostgresPasswords;
  runAs: OsUser | undefined;
  binDir: string;
  /** Receives every log line of the server. */
  onLine?: (line: string) => void;
}

/**
 * A PostgreSQL server process on 127.0.0.1 that we started and stop by its PID; primary or hot
 * standby. Its data directory survives {@link stop}, so {@link start} can run it again;
 * {@link destroy} also deletes its folder.
 */
export class PostgresServer {
  /** See {@link PostgresServerSettings.name}. */
  readonly name: string;
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  /** The server's folder (PGDATA is `data/` in it; the Unix socket is here too). */
  readonly dir: string;
  /** PGDATA. */
  readonly dataDir: string;
  /** `max_connections`, as the server was started with. */
  readonly maxConnections: number;
  /** The folder of the PostgreSQL programs it runs (a replica must use the same major version). */
  readonly binDir: string;
  /** The app's role on the app's database: what poolgraph connects as. */
  readonly app: DatabaseEndpoint;
  /** The superuser on the app's database: for checks (pg_stat_activity, pg_stat_statements). */
  readonly superuser: DatabaseEndpoint;
  /** The replication role (the `database` field is unused by replication connections). */
  readonly replication: DatabaseEndpoint;
  protected readonly settings: PostgresServerSettings;
  #process: ManagedProcess | undefined;

  /** For `startPostgres` and `startReplica`, which initialise the data directory first. */
  constructor(settings: PostgresServerSettings) {
    this.settings = settings;
    this.name = settings.name;
    this.port = settings.port;
    this.dir = settings.dir;
    this.dataDir = join(settings.dir, 'data');
    this.maxConnections = settings.maxConnections;
    this.binDir = settings.binDir;
    const on = { host: '127.0.0.1', port: settings.port };
    this.app = { ...on, database: APP_ROLE, user: APP_ROLE, password: settings.passwords.app };
    this.superuser = { ...on, database: APP_ROLE, user: SUPERUSER, password: settings.passwords.superuser };
    this.replication = { ...on, database: 'replication', user: REPLICATION_ROLE, password: settings.passwords.replication };
  }

  /** `postgres://poolgraph:…@127.0.0.1:<port>/poolgraph`: what poolgraph's `DATABASE_URL` would be. */
  get url(): string {
    return endpointUrl(this.app);
  }

  /** The superuser's URL on the app's database. */
  get superuserUrl(): string {
    return endpointUrl(this.superuser);
  }

  /** The postmaster's PID while it runs. */
  get pid(): number | undefined {
    return this.#process?.running ? this.#process.pid : undefined;
  }

  /** True while the postmaster runs. */
  get running(): boolean {
    return this.#process?.running ?? false;
  }

  /** The server's last log lines. */
  tail(count?: number): string {
    return this.#process?.tail(count) ?? '';
  }

  /** Runs one statement as the superuser on the app's database, on a connection of its own. */
  query<Row extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<Row[]> {
    return queryOnce<Row>(this.superuserUrl, text, params);
  }

  /**
   * Starts `postgres` on the data directory and waits until it accepts connections (a standby:
   * read-only ones). Settings go on the command line, so they beat whatever the data directory's
   * files say (a replica's files are the primary's copy). Rejects, with the server's last log
   * lines, if it exits or is not ready within 30 s.
   */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    const { binDir, runAs, maxConnections, onLine } = this.settings;
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port: this.port,
      unix_socket_directories: this.dir,
      max_connections: maxConnections,
      shared_preload_libraries: 'pg_stat_statements',
      wal_level: 'replica',
      max_wal_senders: 10,
      hot_standby: 'on',
      cluster_name: `poolgraph-${this.name}`,
    };
    const child = spawnManaged({
      name: this.name,
      command: join(binDir, 'postgres'),
      args: ['-D', this.dataDir, ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`])],
      env: postgresEnv(),
      runAs,
      abandonSignal: 'SIGQUIT',
      ...(onLine ? { onLine } : {}),
    });
    this.#process = child;
    try {
      await child.waitForLine(READY_LINE, START_TIMEOUT_MS);
    } catch (error) {
      await child.stop(STOP_LADDER);
      throw error;
    }
  }

  /**
   * Fast shutdown (SIGINT) by the postmaster's PID, then SIGQUIT and SIGKILL if it lingers; keeps
   * the data directory. Does nothing when it is not running.
   */
  async stop(): Promise<void> {
    await this.#process?.stop(STOP_LADDER);
  }

  /** Stops the server and deletes its folder. */
  async destroy(): Promise<void> {
    await this.stop();
    if (existsSync(this.dir)) await rm(this.dir, { recursive: true, force: true });
  }
}

/** The environment PostgreSQL's programs run with: nothing of ours (no PGPASSWORD, no PGHOST). */
export function postgresEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
}
