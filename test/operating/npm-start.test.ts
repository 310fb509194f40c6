import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BANNER,
  bannerPort,
  DATABASE_STOP_TIMEOUT_MS,
  eventually,
  exitCode,
  npmStart,
  output,
  processes,
  START_TIMEOUT_MS,
  stopWithSigterm,
} from '../support/npm-start.js';

/**
 * The README's promise: `npm start` with no `DATABASE_URL` brings up a working GraphQL server on
 * an embedded PostgreSQL, stops cleanly on SIGTERM, keeps its data across restarts, and refuses
 * a bad setting with a readable message. Everything here runs the real `npm start`.
 */

const dataDirs: string[] = [];

afterAll(async () => {
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh, empty folder under the system temp folder, which the `postgres` user can reach. */
async function freshDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'poolgraph-npm-start-'));
  dataDirs.push(dir);
  return dir;
}

/** True once no PostgreSQL is left in `dataDir`: no postmaster.pid, no process naming it. */
async function databaseStopped(dataDir: string): Promise<boolean> {
  if (existsSync(join(dataDir, 'postmaster.pid'))) return false;
  return !(await processes()).some((entry) => entry.args.includes(dataDir));
}

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string }[];
}

async function graphql(port: number, query: string): Promise<GraphQLBody> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as GraphQLBody;
  expect(body.errors).toBeUndefined();
  return body;
}

describe('npm start without DATABASE_URL (embedded PostgreSQL)', () => {
  it('serves the seeded items, and on SIGTERM exits 0 and leaves no PostgreSQL running', { timeout: 90_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir);
    const port = await bannerPort(run);
    // The data really lives in DATA_DIR (not in a fallback), so the checks below mean something.
    expect(run.stdout).toContain(`database: embedded PostgreSQL in ${dataDir}`);
    // No key configured: the banner says that anyone may write.
    expect(run.stdout).toContain('writes:   ANYONE may create, change and delete items (AUTH_MODE=open)');
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(true);

    const { data } = await graphql(port, '{ items { number } }');
    const numbers = (data?.items as { number: number }[]).map((item) => item.number);
    expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

    await stopWithSigterm(run);
    expect(await eventually(() => databaseStopped(dataDir), DATABASE_STOP_TIMEOUT_MS)).toBe(true);
  });

  it('keeps created items across a restart and does not seed again', { timeout: 150_000 }, async () => {
    const dataDir = await freshDataDir();
    const first = npmStart(dataDir);
    const firstPort = await bannerPort(first);
    const created = await graphql(
      firstPort,
      'mutation { createItem(input: {number: 4242, label: "kept"}) { id } }',
    );
    const id = (created.data?.createItem as { id: string }).id;
    await stopWithSigterm(first);

    const second = npmStart(dataDir);
    const port = await bannerPort(second);
    const { data } = await graphql(
      port,
      `{
        item(id: ${JSON.stringify(id)}) { number label }
        categories(first: 100) { id }
        itemsAfterSeed: items(first: 1, after: "10000") { id }
      }`,
    );
    expect(data?.item).toEqual({ number: 4242, label: 'kept' });
    // A second seed would have truncated and refilled the tables: the created item would be gone.
    expect((data?.categories as unknown[]).length).toBe(100);
    expect(data?.itemsAfterSeed).toEqual([{ id }]);
    await stopWithSigterm(second);
  });

  it('stops the embedded database when SIGTERM arrives while the server is still starting', { timeout: 90_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir);
    // Wait until PostgreSQL runs from this data directory, but the server does not serve yet.
    const started = await eventually(
      async () => !BANNER.test(run.stdout) && (await processes()).some((entry) => entry.args.includes(`postgres -D ${dataDir}`)),
      START_TIMEOUT_MS,
    );
    expect(started, output(run)).toBe(true);
    await stopWithSigterm(run);
    expect(await eventually(() => databaseStopped(dataDir), DATABASE_STOP_TIMEOUT_MS)).toBe(true);
  });

  // SIGINT is PostgreSQL's fast shutdown, which ends every session at once: it fails when the
  // database shares our process group. SIGTERM (its smart shutdown lets sessions finish) fails
  // when npm's forwarded copy of the signal is taken for a second one, cutting the drain short.
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s to its whole process group (Ctrl-C, kill -- -PGID) lets a request in flight finish on the embedded database',
    { timeout: 120_000 },
    async (signal) => {
      const dataDir = await freshDataDir();
      const run = npmStart(dataDir, {}, { ownProcessGroup: true });
      const port = await bannerPort(run);
      const pid = run.child.pid;
      if (pid === undefined) throw new Error('npm start has no pid');
      // The embedded database's port is the fourth line of its postmaster.pid.
      const dbPort = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[3]);
      const holder = new pg.Client({
        connectionString: `postgres://postgres:poolgraph@127.0.0.1:${dbPort}/poolgraph`,
        application_name: 'poolgraph-test',
      });
      holder.on('error', () => undefined);
      await holder.connect();
      try {
        // The request in flight: W1 waits for a lock this test holds, so it lasts as long as the
        // test wants, and PostgreSQL shows when it is waiting.
        await holder.query('begin');
        await holder.query('lock table items in access exclusive mode');
        const inFlight = graphql(port, '{ items { number } }').then(
          (body) => ({ body }),
          (error: unknown) => ({ error }),
        );
        const waiting = await eventually(async () => {
          const { rows } = await holder.query(
            "select 1 from pg_stat_activity where application_name = 'poolgraph' and wait_event_type = 'Lock'",
          );
          return rows.length === 1;
        }, 20_000);
        expect(waiting, output(run)).toBe(true);

        process.kill(-pid, signal);
        expect(await eventually(async () => run.stdout.includes('shutting down: finishing requests in flight'), 20_000), output(run)).toBe(true);
        // Had the signal reached PostgreSQL, its backends (this one too) would be ending now.
        await holder.query('commit');
        const outcome = await inFlight;
        expect(outcome, output(run)).toEqual({ body: { data: { items: expect.any(Array) } } });
        expect(await exitCode(run), output(run)).toBe(0);
        expect(run.stdout + run.stderr).not.toMatch(/terminating connection|connection failed/);
        expect(await eventually(() => databaseStopped(dataDir), DATABASE_STOP_TIMEOUT_MS)).toBe(true);
      } finally {
        await holder.end().catch(() => undefined);
      }
    },
  );

  it.each([
    ['POOL_SIZE', 'abc', 'must be a whole number'],
    ['POOL_SIZE', '-1', 'must be at least 0'],
    ['PORT', '99999', 'must be at most 65535'],
  ])('refuses %s=%s with a readable message, before starting anything', { timeout: 30_000 }, async (name, value, rule) => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir, { [name]: value });
    expect(await exitCode(run, 20_000), output(run)).toBeGreaterThan(0);

    expect(run.stderr).toContain(`${name}="${value}": ${rule}`);
    expect(run.stderr).not.toMatch(/^ {4}at /m);
    expect(run.stdout).not.toMatch(BANNER);
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(false);
  });
});
