import { describe, expect, it } from 'vitest';
import { eventually, useTestEnvironment } from '../support/server.js';
import { W2 } from '../support/workloads.js';

const POOL = { size: 2, maxOverflow: 3, idleTimeoutMs: 300, timeoutMs: 30_000 };

const t = useTestEnvironment(POOL);

describe('a bounded pool (I3)', () => {
  it('serves 200 concurrent W2 requests with at most size + overflow connections, then shrinks to size', async () => {
    const limit = POOL.size + POOL.maxOverflow;
    let peak = 0;
    let polls = 0;
    let bursting = true;
    // Count the app's backends in pg_stat_activity throughout the burst, from a connection of our own.
    const poller = (async () => {
      while (bursting && polls < 10_000) {
        const { total } = await t.database.appConnections();
        peak = Math.max(peak, total);
        polls += 1;
      }
    })();

    const responses = await Promise.all(Array.from({ length: 200 }, () => t.server.graphql(W2)));
    bursting = false;
    await poller;

    expect(responses.filter((r) => r.status === 200 && !r.body.errors)).toHaveLength(200);
    expect(polls).toBeGreaterThan(5);
    expect(peak).toBeGreaterThan(POOL.size); // the burst really used the overflow
    expect(peak).toBeLessThanOrEqual(limit);
    expect(t.server.server.pool.totalCount).toBeLessThanOrEqual(limit);
    console.info(`I3: 200 concurrent W2, peak ${peak} app connections (limit ${limit}) over ${polls} polls`);

    // Overflow connections close after the idle timeout; `size` stay open.
    expect(await eventually(async () => (await t.database.appConnections()).total === POOL.size, 10_000)).toBe(true);
    // Kept: idle well past the timeout. (A wait for a condition that is a time: the pool's idle
    // timers were set before this one and expire first, so by now any close has begun, and pg-pool
    // drops a closing connection from totalCount at once.)
    await new Promise((resolve) => setTimeout(resolve, POOL.idleTimeoutMs * 3));
    expect((await t.database.appConnections()).total).toBe(POOL.size);
    expect(t.server.server.pool.totalCount).toBe(POOL.size);
  });
});
