import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/setup/embedded.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { bannerPort, eventually, exitCode, npmStart, output, stopWithSigterm } from '../support/npm-start.js';
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

describe('SIGTERM under load', () => {
  it('finishes the requests in flight, refuses new ones, ends the pool and exits 0', { timeout: 60_000 }, async () => {
    const run = npmStart(undefined, { DATABASE_URL: database.url, POOL_SIZE: '2', POOL_MAX_OVERFLOW: '2' });
    const port = await bannerPort(run);
    let stopping = false;
    const outcomes: string[] = [];
    const worker = async () => {
      for (let i = 0; i < 200 && !(stopping && outcomes.length > 0 && outcomes.at(-1) === 'refused'); i += 1) {
        try {
          const { status, body } = await post(port, W2);
          outcomes.push(status === 200 && !body.errors ? 'ok' : `http ${status}`);
        } catch {
          outcomes.push('refused');
          if (stopping) return;
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await eventually(async () => outcomes.length >= 50, 20_000);
    stopping = true;
    run.child.kill('SIGTERM');
    await Promise.all(workers);
    expect(await exitCode(run), output(run)).toBe(0);

    // Every request the server accepted was answered in full; after it stopped, connections were refused.
    expect(outcomes.filter((outcome) => outcome !== 'ok' && outcome !== 'refused')).toEqual([]);
    expect(outcomes.filter((outcome) => outcome === 'ok').length).toBeGreaterThanOrEqual(50);
    expect(outcomes).toContain('refused');
    expect(await database.appConnections()).toEqual({ total: 0, idleInTransaction: 0 });
  });
});
