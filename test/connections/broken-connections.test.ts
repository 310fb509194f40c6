import { describe, expect, it } from 'vitest';
import { eventually, useTestEnvironment } from '../support/server.js';
import { W1 } from '../support/workloads.js';

const t = useTestEnvironment({ size: 2, maxOverflow: 1 });

const terminateAppBackends = (pids?: number[]) =>
  t.database.query(
    `select pg_terminate_backend(pid) from pg_stat_activity
     where datname = current_database() and application_name = 'poolgraph'
       and ($1::int[] is null or pid = any($1::int[]))`,
    [pids ?? null],
  );

describe('connections that break', () => {
  it('survives idle connections dying: the process keeps running and the next requests succeed', async () => {
    await Promise.all([t.server.graphql('{ a: backendPid sleep(seconds: 0.1) }'), t.server.graphql('{ b: backendPid sleep(seconds: 0.1) }')]);
    const { pool } = t.server.server;
    expect(pool.idleCount).toBeGreaterThan(0);
    const killed = await terminateAppBackends();
    expect(killed.length).toBeGreaterThan(0);
    // pg-pool notices and drops the dead idle clients (its `error` event, which we listen to).
    expect(await eventually(() => pool.totalCount === 0, 5_000)).toBe(true);
    for (let i = 0; i < 3; i += 1) {
      const { body } = await t.server.graphql(W1);
      expect(body.data?.items).toHaveLength(20);
    }
  });

  it('fails the request whose connection is killed with DATABASE_UNAVAILABLE and destroys that connection', async () => {
    const released = t.server.released.length;
    const running = t.server.graphql('{ backendPid sleep(seconds: 5) }');
    const { pool } = t.server.server;
    expect(await eventually(() => pool.totalCount - pool.idleCount === 1, 5_000)).toBe(true);
    // The pool counts the client as checked out while it still connects and runs `backendPid`:
    // wait (bounded) until the sleep itself shows in pg_stat_activity.
    let active: { pid: number } | undefined;
    const sleeping = await eventually(async () => {
      [active] = await t.database.query<{ pid: number }>(
        `select pid from pg_stat_activity
         where datname = current_database() and application_name = 'poolgraph' and query like '%pg_sleep%'`,
      );
      return active !== undefined;
    }, 4_000);
    expect(sleeping).toBe(true);
    await terminateAppBackends([active!.pid]);

    const { body } = await running;
    expect(body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    expect(JSON.stringify(body)).not.toMatch(/terminat|pg_sleep|select/i);
    expect(await eventually(() => t.server.released.length > released, 5_000)).toBe(true);
    expect(t.server.released.at(-1)).toMatchObject({ connectionsTaken: 1, destroyed: true });

    // The dead connection was not returned: every pooled connection answers.
    const pids = new Set<number>();
    for (let i = 0; i < 4; i += 1) {
      const response = await t.server.graphql('{ backendPid }');
      expect(response.body.errors).toBeUndefined();
      pids.add((response.body.data as { backendPid: number }).backendPid);
    }
    expect(pids.has(active!.pid)).toBe(false);
  });
});
