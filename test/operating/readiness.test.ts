import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { scrape } from '../support/metrics.js';
import { eventually, startTestServer, useTestEnvironment } from '../support/server.js';
import { W1 } from '../support/workloads.js';

const POOL = { size: 1, maxOverflow: 1, timeoutMs: 3_000 };

const t = useTestEnvironment(POOL, { readiness: { maxWaiting: 0, timeoutMs: 500 } });

const at = (path: string) => new URL(path, t.server.url).toString();

interface ReadyBody {
  ready: boolean;
  reason?: string;
  message?: string;
  pool: { total: number; idle: number; waiting: number; max: number };
}

async function ready(baseUrl: string): Promise<{ status: number; body: ReadyBody }> {
  const response = await fetch(new URL('/ready', baseUrl));
  expect(response.headers.get('content-type')).toContain('application/json');
  return { status: response.status, body: (await response.json()) as ReadyBody };
}

/** A TCP server that accepts connections and never answers: a database that hangs. */
async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('GET /health and GET /ready', () => {
  it('/health answers 200 without touching the database; /ready pings it through the pool', async () => {
    const acquired = t.server.acquired.length;
    const health = await fetch(at('/health'));
    expect(health.status).toBe(200);
    expect(t.server.acquired.length).toBe(acquired);

    const { status, body } = await ready(t.server.url);
    expect(status).toBe(200);
    expect(body).toEqual({ ready: true, pool: { total: 1, idle: 1, waiting: 0, max: 2 } });
    // The ping borrowed one pooled connection, and gave it back.
    expect(t.server.acquired.length).toBe(acquired + 1);
    expect(t.server.server.pool.idleCount).toBe(t.server.server.pool.totalCount);
  });

  it('is 503 while requests wait for a connection (pool waiting > 0), and 200 again once they are served', async () => {
    const { pool } = t.server.server;
    const acquiredBefore = t.server.acquired.length;
    const holders = Array.from({ length: POOL.size + POOL.maxOverflow }, () => t.server.graphql('{ sleep(seconds: 1) }'));
    expect(await eventually(() => t.server.acquired.length === acquiredBefore + 2 && pool.idleCount === 0)).toBe(true);

    // All in use, nobody waiting yet: ready, and no ping (it would queue behind requests).
    const acquired = t.server.acquired.length;
    expect((await ready(t.server.url)).status).toBe(200);
    expect(t.server.acquired.length).toBe(acquired);

    const waiter = t.server.graphql(W1);
    expect(await eventually(() => pool.waitingCount > 0)).toBe(true);
    const metrics = await scrape(at('/metrics'));
    expect(metrics.value('poolgraph_pool_waiting')).toBeGreaterThan(0);
    expect(metrics.value('poolgraph_pool_connections_in_use')).toBe(2);

    const saturated = await ready(t.server.url);
    expect(saturated.status).toBe(503);
    expect(saturated.body).toMatchObject({ ready: false, reason: 'POOL_SATURATED', pool: { waiting: 1 } });
    expect(saturated.body.message).toContain('1 requests are waiting');

    await Promise.all(holders);
    expect((await waiter).status).toBe(200);
    expect((await scrape(at('/metrics'))).value('poolgraph_pool_waiting')).toBe(0);
    expect((await ready(t.server.url)).status).toBe(200);
  });

  it('answers only its exact path: a GraphQL request whose URL ends in /ready stays a GraphQL request', async () => {
    const acquired = t.server.acquired.length;
    const response = await fetch(`${t.server.url}?x=/ready`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
    expect(t.server.acquired.length).toBe(acquired);
  });

  it('shares one ping among concurrent checks', async () => {
    const acquired = t.server.acquired.length;
    const reports = await Promise.all(Array.from({ length: 10 }, () => t.server.server.readiness.check()));
    expect(reports.filter((report) => !report.ready)).toEqual([]);
    expect(t.server.acquired.length).toBe(acquired + 1);
  });

  it('is 503 when the database does not answer within READY_TIMEOUT_MS, or cannot be reached', async () => {
    const silent = await startSilentServer();
    const url = new URL(t.database.url);
    url.port = String(silent.port);
    const hanging = await startTestServer(url.toString(), { size: 0, maxOverflow: 1, timeoutMs: 1_000 }, {
      readiness: { timeoutMs: 200 },
    });
    try {
      expect((await fetch(new URL('/health', hanging.url))).status).toBe(200);
      const started = performance.now();
      const { status, body } = await ready(hanging.url);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(status).toBe(503);
      expect(body).toMatchObject({ ready: false, reason: 'DATABASE_TIMEOUT' });
      expect(body.message).toContain('200 ms');
    } finally {
      await silent.close();
      await hanging.close();
    }

    url.port = String(silent.port); // closed now: connections are refused
    const refused = await startTestServer(url.toString(), { size: 0, maxOverflow: 1 });
    try {
      const { status, body } = await ready(refused.url);
      expect(status).toBe(503);
      expect(body).toMatchObject({ ready: false, reason: 'DATABASE_UNAVAILABLE' });
      expect(JSON.stringify(body)).not.toContain('ECONNREFUSED');
    } finally {
      await refused.close();
    }
  });

  it('turns 503 as soon as draining starts, while GraphQL still answers', async () => {
    t.server.server.startDraining();
    const { status, body } = await ready(t.server.url);
    expect(status).toBe(503);
    expect(body).toMatchObject({ ready: false, reason: 'DRAINING' });
    expect((await fetch(at('/health'))).status).toBe(200);
    expect((await t.server.graphql(W1)).status).toBe(200);
  });
});
