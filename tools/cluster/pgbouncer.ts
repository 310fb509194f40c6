import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { type ManagedProcess, spawnManaged, type StopStep } from './managed-process.js';
import { ManagedService } from './managed-service.js';
import { createPrivateDir, serviceUser, writePrivateFile } from './service-user.js';
import { type DatabaseEndpoint, endpointUrl, queryOnce } from './sql.js';
import { waitUntil } from './wait.js';

/**
 * Debian's `pgbouncer` package: 1.18 on Debian 12, 1.24 on Debian 13, whose defaults differ
 * (`max_prepared_statements`, 0 before 1.24, is 200 since); {@link PgBouncer.version} says which ran.
 */
export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';

/** Options of {@link startPgBouncer}. */
export interface StartPgBouncerOptions {
  /** The server and the one role clients use (usually `primary.app`); its password goes in the auth file. */
  target: DatabaseEndpoint;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** `default_pool_size`: server connections per database and user. */
  poolSize: number;
  /** `max_client_conn`: client connections PgBouncer accepts in all. */
  maxClientConn: number;
  /** PgBouncer's folder (config, auth file), which must not exist yet. @default a new temp folder */
  dir?: string;
  /** Receives every log line. */
  onLine?: (line: string) => void;
}

/** SIGINT is PgBouncer's "safe shutdown" (waits for clients); SIGTERM its immediate one. */
const STOP_LADDER: readonly StopStep[] = [
  { signal: 'SIGTERM', waitMs: 10_000 },
  { signal: 'SIGKILL', waitMs: 5_000 },
];
const START_TIMEOUT_MS = 15_000;

/**
 * A PgBouncer process in transaction mode that we started and stop by its PID. Clients log in as
 * {@link PgBouncer.app}; the same role may open the admin console ({@link PgBouncer.admin}).
 */
export class PgBouncer extends ManagedService {
  /** Names it in errors and listings. */
  override readonly name = 'pgbouncer';
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  /** `default_pool_size`. */
  readonly poolSize: number;
  /** `max_client_conn`. */
  readonly maxClientConn: number;
  /** What a client connects to: the target's database and role, at PgBouncer's port. */
  readonly app: DatabaseEndpoint;

  /** Use {@link startPgBouncer}. */
  constructor(process: ManagedProcess, options: StartPgBouncerOptions, dir: string) {
    super(process, dir, STOP_LADDER);
    this.port = options.port;
    this.poolSize = options.poolSize;
    this.maxClientConn = options.maxClientConn;
    this.app = { ...options.target, host: '127.0.0.1', port: options.port };
  }

  /** `postgres://poolgraph:…@127.0.0.1:<port>/poolgraph`: the `DATABASE_URL` of instances behind it. */
  get url(): string {
    return endpointUrl(this.app);
  }

  /** The admin console (database `pgbouncer`), for `SHOW POOLS` and friends. */
  get adminUrl(): string {
    return endpointUrl({ ...this.app, database: 'pgbouncer' });
  }

  /** Runs one admin console command (`SHOW POOLS`) and returns its rows (values are strings). */
  admin<Row extends pg.QueryResultRow>(command: string): Promise<Row[]> {
    return queryOnce<Row>(this.adminUrl, command);
  }

  /** What it reports of itself (`PgBouncer 1.18.0`), so results can say which version gave them. */
  async version(): Promise<string> {
    const [row] = await this.admin<{ version: string }>('SHOW VERSION');
    return row?.version ?? 'PgBouncer (version unknown)';
  }
}

/**
 * Starts Debian's PgBouncer on 127.0.0.1 in front of `target`, configured with only what matters
 * for the cluster (transaction pooling, the pool sizes, `ignore_startup_parameters =
 * extra_float_digits`) and what it needs to run. Any database name is forwarded to the target
 * server. As root it runs as the OS user `postgres` (PgBouncer refuses root). Resolves once its
 * admin console answers; if it does not within 15 s, it is stopped and the error names its last
 * log lines.
 */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER_BINARY)) throw new Error(`${PGBOUNCER_BINARY} not found: apt-get install pgbouncer`);
  const runAs = serviceUser();
  const dir = await createPrivateDir(options.dir, 'poolgraph-pgbouncer-', runAs);
  const { target } = options;
  const configFile = join(dir, 'pgbouncer.ini');
  const authFile = join(dir, 'userlist.txt');
  let bouncer: PgBouncer | undefined;
  try {
    // PgBouncer logs in to PostgreSQL with the password it finds here, and checks clients' SCRAM
    // answers against it too (a plain-text entry serves both directions).
    await writePrivateFile(authFile, `"${target.user}" "${target.password}"\n`, runAs);
    await writePrivateFile(configFile, config(options, authFile), runAs);
    const process = spawnManaged({
      name: 'pgbouncer',
      command: PGBOUNCER_BINARY,
      args: [configFile],
      env: { PATH: globalThis.process.env.PATH ?? '/usr/bin:/bin' },
      runAs,
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
    bouncer = new PgBouncer(process, options, dir);
    const started = bouncer;
    await waitUntil(async () => ((await started.admin('SHOW VERSION')).length > 0 ? true : undefined), {
      what: 'PgBouncer to answer on its admin console',
      timeoutMs: START_TIMEOUT_MS,
      watch: started,
    });
    return bouncer;
  } catch (error) {
    await bouncer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** pgbouncer.ini: the settings the cluster is about, then the ones needed to run at all. */
function config(options: StartPgBouncerOptions, authFile: string): string {
  const { target } = options;
  return [
    '; Written by tools/cluster.',
    '[databases]',
    `* = host=${target.host} port=${target.port}`,
    '',
    '[pgbouncer]',
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    `max_client_conn = ${options.maxClientConn}`,
    // node-postgres never sends it, but JDBC and psql-based tools do.
    'ignore_startup_parameters = extra_float_digits',
    '',
    'listen_addr = 127.0.0.1',
    `listen_port = ${options.port}`,
    // No Unix socket: its default folder (/tmp) is shared, and loopback TCP is all we use.
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    `admin_users = ${target.user}`,
    '',
  ].join('\n');
}
