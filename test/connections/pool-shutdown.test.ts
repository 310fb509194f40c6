import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, endPool, warmUpPool } from '../../src/db/pools/pool.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_POOL } from '../support/server.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

describe('closing the pool on shutdown', () => {
  it('returns only once every connection has closed, so a database stopped next terminates none of them', async () => {
    const pool = createPool({ ...TEST_POOL, connectionString: database.url, size: 3 });
    await warmUpPool(pool, 3);
    let closed = 0;
    pool.on('remove', () => (closed += 1));
    expect(pool.totalCount).toBe(3);

    await endPool(pool);
    // pg-pool's own end() resolves when it has asked the connections to close, before any of
    // them has: `remove` comes when a close has completed.
    expect(closed).toBe(3);
  });

  it('returns at once for a pool that never opened a connection', async () => {
    const pool = createPool({ ...TEST_POOL, connectionString: database.url });
    await endPool(pool);
    expect(pool.ended).toBe(true);
  });
});
