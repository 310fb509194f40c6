import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { runToCompletion } from './run-command.js';
import {
  APP_ROLE,
  type PostgresPasswords,
  PostgresServer,
  postgresEnv,
  REPLICATION_ROLE,
  SUPERUSER,
} from './postgres-server.js';
import { newestPostgresBinDir, requirePostgresBinaries } from './postgres-install.js';
import { createPrivateDir, serviceUser, writePrivateFile } from './service-user.js';
import { endpointUrl } from './sql.js';

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** TCP port on 127.0.0.1. */
  port: number;
  /**
   * The server's folder, which must not exist yet: PGDATA goes in `data/`, the Unix socket in the
   * folder itself. @default a new folder under the system temp folder
   */
  dir?: string;
  /** `max_connections` (tests read it back from {@link PostgresServer.maxConnections}). @default 50 */
  maxConnections?: number;
  /** The PostgreSQL programs' folder. @default the newest installed ({@link newestPostgresBinDir}) */
  binDir?: string;
  /** Receives every log line of the server. */
  onLine?: (line: string) => void;
}

const INITDB_TIMEOUT_MS = 60_000;

/**
 * Starts a PostgreSQL primary from Debian's binaries, on 127.0.0.1 only: `initdb`, then
 * `postgres` with `pg_stat_statements` preloaded and `wal_level=replica`, ready for a streaming
 * standby (see `startReplica`). Creates the role `poolgraph` (with a random password) owning the
 * database `poolgraph`, where `pg_stat_statements` is installed, and a replication role.
 * As root every PostgreSQL process runs as the OS user `postgres`, which owns the folder.
 *
 * Takes about 2 s. If a step fails, the server is stopped and its folder deleted before the error
 * (which names the step and the server's last log lines) is thrown.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresServer> {
  const binDir = options.binDir ?? newestPostgresBinDir();
  requirePostgresBinaries(binDir);
  const runAs = serviceUser();
  const dir = await createPrivateDir(options.dir, 'poolgraph-postgres-', runAs);
  const passwords: PostgresPasswords = { superuser: secret(), app: secret(), replication: secret() };
  const server = new PostgresServer({
    name: 'primary',
    port: options.port,
    dir,
    maxConnections: options.maxConnections ?? 50,
    passwords,
    runAs,
    binDir,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  try {
    await initialise(server, binDir, runAs, passwords.superuser);
    await server.start();
    await createRoles(server, passwords);
    return server;
  } catch (error) {
    await server.destroy();
    throw error;
  }
}

/** initdb (C locale, UTF-8, no fsync: a throwaway cluster) and our own pg_hba.conf. */
async function initialise(
  server: PostgresServer,
  binDir: string,
  runAs: ReturnType<typeof serviceUser>,
  superuserPassword: string,
): Promise<void> {
  const passwordFile = join(server.dir, 'superuser-password');
  await writePrivateFile(passwordFile, `${superuserPassword}\n`, runAs);
  try {
    await runToCompletion({
      name: 'initdb',
      command: join(binDir, 'initdb'),
      args: ['-D', server.dataDir, '-U', SUPERUSER, `--pwfile=${passwordFile}`, '--no-locale', '--encoding=UTF8', '--no-sync', '--no-instructions'],
      env: postgresEnv(),
      runAs,
      timeoutMs: INITDB_TIMEOUT_MS,
    });
  } finally {
    await rm(passwordFile, { force: true });
  }
  // The socket's folder is private to the service user (and root), so the socket may trust; TCP
  // comes only from loopback and always needs a password. Replication is allowed the same way.
  await writePrivateFile(
    join(server.dataDir, 'pg_hba.conf'),
    [
      '# Written by tools/cluster: trust on the private socket folder, passwords over loopback TCP.',
      'local  all          all                 trust',
      'local  replication  all                 trust',
      'host   all          all   127.0.0.1/32  scram-sha-256',
      'host   replication  all   127.0.0.1/32  scram-sha-256',
      '',
    ].join('\n'),
    runAs,
  );
}

/** The app's role and database (with pg_stat_statements), and the replication role. */
async function createRoles(server: PostgresServer, passwords: PostgresPasswords): Promise<void> {
  const admin = new pg.Client({ connectionString: endpointUrl({ ...server.superuser, database: 'postgres' }) });
  await admin.connect();
  try {
    const app = admin.escapeIdentifier(APP_ROLE);
    await admin.query(`create role ${app} login password ${admin.escapeLiteral(passwords.app)}`);
    await admin.query(
      `create role ${admin.escapeIdentifier(REPLICATION_ROLE)} login replication password ${admin.escapeLiteral(passwords.replication)}`,
    );
    await admin.query(`create database ${app} owner ${app}`);
  } finally {
    await admin.end();
  }
  await server.query('create extension pg_stat_statements');
}

/** A random password that needs no quoting in URLs, SQL literals or PgBouncer's auth file. */
function secret(): string {
  return randomBytes(12).toString('hex');
}
