import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { eventually, startTestServer, type TestServer } from './support/server.js';
import { W2 } from './support/workloads.js';

const POOL = { size: 2, maxOverflow: 3, idleTimeoutMs: 300, timeoutMs: 30_000 };

let database: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.url, POOL);
});

afterAll(async () => {
  await server?.close();
  await database?.drop();
});

describe('a bounded pool (I3)', () => {
  it('serves 200 concurrent W2 requests with at most size + overflow connections, then shrinks to size', async () => {
    const limit = POOL.size + POOL.maxOverflow;
    let peak = 0;
    let polls = 0;
    let bursting = true;
    // Count the app's backends in pg_stat_activity throughout the burst, from a connection of our own.
    const poller = (async () => {
      while (bursting && polls < 10_000) {
        const { total } = await database.appConnections();
        peak = Math.max(peak, total);
        polls += 1;
      }
    })();

    const responses = await Promise.all(Array.from({ length: 200 }, () => server.graphql(W2)));
    bursting = false;
    await poller;

    expect(responses.filter((r) => r.status === 200 && !r.body.errors)).toHaveLength(200);
    expect(polls).toBeGreaterThan(5);
    expect(peak).toBeGreaterThan(POOL.size); // the burst really used the overflow
    expect(peak).toBeLessThanOrEqual(limit);
    expect(server.server.pool.totalCount).toBeLessThanOrEqual(limit);
    console.info(`I3: 200 concurrent W2, peak ${peak} app connections (limit ${limit}) over ${polls} polls`);

    // Overflow connections close after the idle timeout; `size` stay open.
    expect(await eventually(async () => (await database.appConnections()).total === POOL.size, 10_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, POOL.idleTimeoutMs * 3));
    expect((await database.appConnections()).total).toBe(POOL.size);
    expect(server.server.pool.totalCount).toBe(POOL.size);
  });
});
