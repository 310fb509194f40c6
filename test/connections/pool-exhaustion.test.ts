import { describe, expect, it } from 'vitest';
import { eventually, useTestEnvironment } from '../support/server.js';
import { W1 } from '../support/workloads.js';

const POOL = { size: 1, maxOverflow: 1, timeoutMs: 300 };

const t = useTestEnvironment(POOL);

describe('an exhausted pool (I6)', () => {
  it('fails a request with DATABASE_BUSY (HTTP 503) after POOL_TIMEOUT_MS, then recovers', async () => {
    const { pool } = t.server.server;
    // Hold every connection the pool may open.
    const holders = Array.from({ length: POOL.size + POOL.maxOverflow }, () => t.server.graphql('{ sleep(seconds: 1.5) }'));
    expect(await eventually(() => pool.totalCount === 2 && pool.idleCount === 0, 5_000)).toBe(true);

    const started = performance.now();
    const busy = await t.server.graphql(W1);
    const waitedMs = performance.now() - started;
    expect(busy.status).toBe(503);
    expect(busy.body.errors?.[0]?.extensions?.code).toBe('DATABASE_BUSY');
    expect(busy.body.errors?.[0]?.message).toContain('300 ms');
    // It waited for the pool rather than failing at once (a count of the timeout, not a speed limit).
    expect(waitedMs).toBeGreaterThanOrEqual(POOL.timeoutMs - 50);

    const held = await Promise.all(holders);
    expect(held.map((r) => r.body.data)).toEqual([{ sleep: true }, { sleep: true }]);
    const after = await t.server.graphql(W1);
    expect(after.status).toBe(200);
    expect(after.body.data?.items).toHaveLength(20);
    expect(pool.totalCount).toBeLessThanOrEqual(POOL.size + POOL.maxOverflow);
  });

  it('answers 200 when other fields of the operation produced data, 503 when nothing could run', async () => {
    const { pool } = t.server.server;
    const holders = Array.from({ length: 2 }, () => t.server.graphql('{ sleep(seconds: 1) }'));
    expect(await eventually(() => pool.totalCount === 2 && pool.idleCount === 0, 5_000)).toBe(true);

    const [partial, nothing] = await Promise.all([
      t.server.graphql('{ __typename item(id: "1") { id } }'),
      t.server.graphql('{ item(id: "1") { id } }'),
    ]);
    expect(partial.status).toBe(200);
    expect(partial.body.data).toEqual({ __typename: 'Query', item: null });
    expect(partial.body.errors?.[0]?.extensions?.code).toBe('DATABASE_BUSY');
    expect(nothing.status).toBe(503);
    expect(nothing.body.errors?.[0]?.extensions?.code).toBe('DATABASE_BUSY');
    await Promise.all(holders);
  });
});
