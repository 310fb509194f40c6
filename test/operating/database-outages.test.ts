import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/setup/embedded.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { bannerPort, eventually, exitCode, npmStart, output, sleep, stopWithSigterm } from '../support/npm-start.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { startTcpProxy, unusedPort } from '../support/tcp-proxy.js';
import { W1, W2 } from '../support/workloads.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

async function post(port: number, query: string) {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] } };
}

describe('starting before the database answers', () => {
  it('waits with backoff, says so in its log, and serves once the database is there', { timeout: 60_000 }, async () => {
    const port = await unusedPort();
    const url = new URL(database.url);
    url.port = String(port);
    const run = npmStart(undefined, { DATABASE_URL: url.toString(), DATABASE_CONNECT_TIMEOUT_MS: '30000' });
    expect(await eventually(async () => run.stdout.includes('waiting for the database'), 20_000), output(run)).toBe(true);
    expect(run.stdout).not.toContain(`:${url.password}@`);

    // The database "comes up": a proxy to it starts listening on the port the server was given.
    const proxy = await startTcpProxy(Number(new URL(database.url).port), port);
    try {
      const serverPort = await bannerPort(run, 30_000);
      const { body } = await post(serverPort, W1);
      expect(body.data?.items).toHaveLength(20);
      await stopWithSigterm(run);
    } finally {
      await proxy.close();
    }
  });
});

describe('PostgreSQL stops for a while and comes back', () => {
  let folder: string;
  let embedded: EmbeddedDatabase | undefined;
  let server: TestServer;
  let port: number;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'poolgraph-outage-'));
    await chmod(folder, 0o755);
    embedded = await startEmbeddedDatabase({ dataDir: join(folder, 'data') });
    port = Number(new URL(embedded.url).port);
    await migrateToLatest(embedded.url);
    server = await startTestServer(embedded.url, { size: 2, maxOverflow: 1, timeoutMs: 10_000 });
  });

  afterAll(async () => {
    await server?.close();
    await embedded?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('fails requests fast with DATABASE_UNAVAILABLE meanwhile, and serves again without a restart', { timeout: 60_000 }, async () => {
    expect((await server.graphql('{ items { id } }')).body.data).toEqual({ items: [] });
    await embedded?.stop();
    embedded = undefined;

    for (let i = 0; i < 3; i += 1) {
      const started = Date.now();
      const { status, body } = await server.graphql('{ items { id } }');
      expect(status).toBe(503);
      expect(body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      // Fast: a refused connection, not a wait for POOL_TIMEOUT_MS (10 s here).
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    expect(server.server.pool.totalCount).toBe(0);

    embedded = await startEmbeddedDatabase({ dataDir: join(folder, 'data'), port });
    const { status, body } = await server.graphql('mutation { createItem(input: { number: 5 }) { number } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ createItem: { number: 5 } });
  });
});

describe('a transaction left idle', () => {
  it('is ended by PostgreSQL after IDLE_IN_TRANSACTION_TIMEOUT_MS, and the connection is replaced', async () => {
    const server = await startTestServer(database.url, { size: 1, maxOverflow: 0, idleInTransactionTimeoutMs: 300 });
    try {
      const { body } = await server.graphql('{ idleInTransaction(seconds: 1.5) }');
      expect((body.errors as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      expect(server.released.at(-1)).toMatchObject({ destroyed: true });
      expect((await database.appConnections()).idleInTransaction).toBe(0);
      expect((await server.graphql(W1)).body.data?.items).toHaveLength(20);
    } finally {
      await server.close();
    }
  });
});

describe('SIGTERM with requests in flight', () => {
  /**
   * Starts `npm start` on the test database and puts `count` W1 requests in flight: each waits
   * for a lock this test holds on `items`, so they last until `release()`, and PostgreSQL shows
   * them waiting. Every outcome is kept: a response, or the error fetch gave.
   */
  async function requestsInFlight(count: number, env: Record<string, string> = {}) {
    const run = npmStart(undefined, { DATABASE_URL: database.url, POOL_SIZE: '2', POOL_MAX_OVERFLOW: '2', ...env });
    const port = await bannerPort(run);
    const holder = new pg.Client({ connectionString: database.url, application_name: 'poolgraph-test' });
    // The database is dropped with (force) at the end, which may end this session first.
    holder.on('error', () => undefined);
    const release = async () => {
      await holder.query('commit').catch(() => undefined);
      await holder.end();
    };
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table items in access exclusive mode');
      const outcomes = Array.from({ length: count }, () =>
        post(port, W1).then(
          (response) => ({ status: response.status, items: (response.body.data?.items as unknown[] | undefined)?.length }),
          (error: unknown) => ({ error: errorCode(error) }),
        ),
      );
      const waiting = await eventually(async () => {
        const [row] = await database.query<{ waiting: number }>(
          "select count(*)::int as waiting from pg_stat_activity where application_name = 'poolgraph' and wait_event_type = 'Lock' and datname = current_database()",
        );
        return row?.waiting === count;
      }, 20_000);
      expect(waiting, output(run)).toBe(true);
      return { run, port, outcomes: Promise.all(outcomes), release };
    } catch (error) {
      // The lock must not outlive a failed set-up: the server under test would wait on it forever.
      await release();
      throw error;
    }
  }

  it('answers every request in flight in full, refuses new connections, ends the pool and exits 0', { timeout: 60_000 }, async () => {
    const { run, port, outcomes, release } = await requestsInFlight(4);
    try {
      run.child.kill('SIGTERM');
      expect(await eventually(async () => run.stdout.includes('shutting down: finishing requests in flight'), 20_000), output(run)).toBe(true);
      // A new connection is refused (not accepted and then dropped) while the four are waiting.
      const late = await post(port, W1).then(
        () => 'answered',
        (error: unknown) => errorCode(error),
      );
      expect(late).toBe('ECONNREFUSED');
    } finally {
      await release();
    }
    // Each of the four got its answer, none was cut off.
    expect(await outcomes, output(run)).toEqual(Array.from({ length: 4 }, () => ({ status: 200, items: 20 })));
    expect(await exitCode(run), output(run)).toBe(0);
    expect(await database.appConnections()).toEqual({ total: 0, idleInTransaction: 0 });
  });

  it('closes a request still running after SHUTDOWN_TIMEOUT_MS without an answer, then exits 0', { timeout: 60_000 }, async () => {
    const { run, outcomes, release } = await requestsInFlight(1, { SHUTDOWN_TIMEOUT_MS: '1000', STATEMENT_TIMEOUT_MS: '30000' });
    try {
      run.child.kill('SIGTERM');
      // The lock is still held, so the request cannot finish: the timeout closes its connection.
      const cut = await Promise.race([outcomes, sleep(20_000).then(() => 'no outcome 20 s after SIGTERM')]);
      expect(cut, output(run)).toEqual([{ error: 'UND_ERR_SOCKET' }]);
    } finally {
      // Its statement is still waiting in PostgreSQL (the pool ends once it is back); let it end.
      await release();
    }
    expect(await exitCode(run), output(run)).toBe(0);
    expect(run.stdout).toContain('"msg":"stopped"');
    expect(await database.appConnections()).toEqual({ total: 0, idleInTransaction: 0 });
  });
});

/** The code of a failed fetch: the socket error under undici's "fetch failed". */
function errorCode(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' ? cause.code : String(error);
}
