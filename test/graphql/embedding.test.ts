import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type PoolgraphServer } from '../../src/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
let hostPool: pg.Pool;
let poolgraph: PoolgraphServer;
let host: ReturnType<typeof createHttpServer>;
let origin: string;

beforeAll(async () => {
  database = await createTestDatabase();
  // The host program owns the pool and lends it to poolgraph.
  hostPool = new pg.Pool({ connectionString: database.url, max: 3, connectionTimeoutMillis: 2_000 });
  // Its connections may still be closing when the database is dropped (see test/support/database.ts).
  hostPool.on('error', () => undefined);
  poolgraph = createServer({ database: hostPool, graphqlEndpoint: '/api/graphql', logger: pino({ level: 'silent' }) });
  host = createHttpServer((req, res) => {
    if (req.url?.startsWith('/api/graphql')) return poolgraph.requestListener(req, res);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('the host answers everything else');
  });
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

afterAll(async () => {
  host?.closeAllConnections();
  await new Promise<void>((resolve) => (host ? host.close(() => resolve()) : resolve()));
  await hostPool?.end();
  await database?.drop();
});

describe('embedding poolgraph in another Node HTTP server', () => {
  it('serves GraphQL under the host’s path, on the host’s pool, beside the host’s own routes', async () => {
    const acquiredBefore = hostPool.totalCount;
    const response = await fetch(`${origin}/api/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ items(first: 3) { number } }' }),
    });
    expect(await response.json()).toEqual({ data: { items: [{ number: 1 }, { number: 2 }, { number: 3 }] } });
    // Under a path of the host's choosing, the JSON POST still took the fast path.
    expect(poolgraph.requestListener.counts.answered).toBe(1);
    expect(hostPool.totalCount).toBeGreaterThanOrEqual(Math.max(acquiredBefore, 1));
    expect(poolgraph.pool).toBe(hostPool);
    expect(await (await fetch(`${origin}/elsewhere`)).text()).toBe('the host answers everything else');
  });

  it('closes without ending the pool it was lent', async () => {
    await poolgraph.close();
    const { rows } = await hostPool.query<{ one: number }>('select 1 as one');
    expect(rows).toEqual([{ one: 1 }]);
    expect(hostPool.ended).toBe(false);
  });
});
