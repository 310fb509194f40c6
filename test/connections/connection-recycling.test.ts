import { describe, expect, it } from 'vitest';
import { useTestEnvironment } from '../support/server.js';

/**
 * POOL_RECYCLE_S (pg-pool's `maxLifetimeSeconds`): a connection older than the limit is closed
 * and replaced, idle or busy, and no request notices. One connection only, so every request
 * shows which backend the pool holds now.
 */
const t = useTestEnvironment({ size: 1, maxOverflow: 0, recycleSeconds: 1, idleTimeoutMs: 0 });

/** Bounds of the wait for a replacement, in requests and in time, far above the 1 s limit. */
const MAX_REQUESTS = 400;
const MAX_WAIT_MS = 15_000;

/** The backends of our app that PostgreSQL lists now. */
async function appBackends(): Promise<number[]> {
  const rows = await t.database.query<{ pid: number }>(
    "select pid from pg_stat_activity where datname = current_database() and application_name = 'poolgraph'",
  );
  return rows.map((row) => row.pid);
}

async function backendPid(): Promise<number> {
  const { status, body } = await t.server.graphql('{ backendPid }');
  expect({ status, errors: body.errors }).toEqual({ status: 200, errors: undefined });
  return body.data?.backendPid as number;
}

describe('POOL_RECYCLE_S', () => {
  it('replaces a connection older than the limit with a new backend, while requests keep succeeding', async () => {
    const first = await backendPid();
    const seen = [first];
    // Requests one after another until one runs on another backend; each must succeed.
    const deadline = Date.now() + MAX_WAIT_MS;
    for (let n = 0; n < MAX_REQUESTS && Date.now() < deadline && seen.at(-1) === first; n++) {
      seen.push(await backendPid());
      if (seen.at(-1) === first) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const replacement = seen.at(-1);
    expect(replacement).not.toBe(first);
    // The old backend is gone from PostgreSQL, not merely unused: the pool closed it.
    const backends = await appBackends();
    expect(backends).not.toContain(first);
    expect(backends.length).toBeLessThanOrEqual(1);
  });

  it('lets a request that outlives the limit finish on its connection, then replaces that connection', async () => {
    const before = await backendPid();
    // The statement runs past the 1 s lifetime: pg-pool must not end a connection in use.
    const { status, body } = await t.server.graphql('{ backendPid sleep(seconds: 1.5) }');
    expect({ status, errors: body.errors }).toEqual({ status: 200, errors: undefined });
    expect(body.data).toEqual({ backendPid: before, sleep: true });
    // Expired while in use: closed when given back, so the next request gets a new backend.
    const after = await backendPid();
    expect(after).not.toBe(before);
    expect(await appBackends()).not.toContain(before);
  });
});
