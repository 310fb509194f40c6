import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedDatabase, freePort, startEmbeddedDatabase } from '../../src/db/setup/embedded.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { seed } from '../../src/db/setup/seed.js';
import {
  expectedFor,
  type OutboxEvent,
  outboxAfter,
  problemsOf,
  runConcurrently,
  shuffled,
  type Watcher,
  watchSse,
  watchWs,
  mixedSpec,
  UPDATED_ITEMS,
} from '../support/live-watchers.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';

/**
 * I8 across a PostgreSQL restart: a PostgreSQL of this file's own (persistent data, fixed port),
 * stopped while writes flow and started again on the same port and data. Every event committed
 * before, during and after reaches every subscriber, in id order, once: the listener reconnects
 * by itself and reads on from its cursor; the server replaces its broken pool connections.
 */
describe('subscriptions across a PostgreSQL restart', () => {
  let folder: string;
  let dataDir: string;
  let port: number;
  let embedded: EmbeddedDatabase | undefined;
  let server: TestServer;
  let writers: pg.Pool;
  let observer: pg.Pool;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'poolgraph-restart-'));
    // mkdtemp makes the folder 0700; the `postgres` user must be able to traverse it.
    await chmod(folder, 0o755);
    dataDir = join(folder, 'data');
    port = await freePort();
    embedded = await startEmbeddedDatabase({ dataDir, port, persistent: true });
    await migrateToLatest(embedded.url);
    await withOneConnection(embedded.url, (db) => seed(db, { categories: 5, itemsPerCategory: 20 }));
    server = await startTestServer(embedded.url, { size: 2, maxOverflow: 3 });
    writers = new pg.Pool({ connectionString: embedded.url, max: 4, application_name: 'poolgraph-test-writer' });
    writers.on('error', () => undefined);
    observer = new pg.Pool({ connectionString: embedded.url, max: 1, application_name: 'poolgraph-test' });
    observer.on('error', () => undefined);
  });
  afterAll(async () => {
    await server?.close();
    await writers?.end();
    await observer?.end();
    await embedded?.stop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  const query = async <Row extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await observer.query<Row>(sql, params)).rows;
  const numbersOf = async (ids: readonly string[]) =>
    new Map((await query<{ id: string; number: number }>('select id::text as id, number from items where id = any($1::bigint[])', [ids])).map((row) => [row.id, row.number]));

  /** `count` writes: inserts (categories 1-3), increments of items 11-20, deletes from `deleteFrom` on. */
  function writes(count: number, deleteFrom: number, seedValue: number): (() => Promise<unknown>)[] {
    const tasks: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < count; i++) {
      if (i % 3 === 0) tasks.push(() => writers.query('insert into items (number, label, category_id) values ($1, $2, $3)', [i, `new-${i}`, (i % 3) + 1 + (i % 2)]));
      else if (i % 3 === 1) tasks.push(() => writers.query('update items set number = number + 1 where id = $1', [UPDATED_ITEMS[i % UPDATED_ITEMS.length]]));
      else tasks.push(() => writers.query('delete from items where id = $1', [deleteFrom + Math.floor(i / 3)]));
    }
    return shuffled(tasks, seedValue);
  }

  it('delivers every event committed before and after PostgreSQL restarts, in id order, once', async () => {
    const watchers: Watcher[] = await Promise.all(Array.from({ length: 20 }, (_, i) => watchSse(server.url, mixedSpec(i), `restart-sse-${i}`)));
    for (let i = 0; i < 5; i++) watchers.push(watchWs(server.url, mixedSpec(i), `restart-ws-${i}`));
    try {
      expect(await eventually(() => server.server.live?.size === 25, 10_000)).toBe(true);
      const [{ last: after } = { last: '0' }] = await query<{ last: string }>('select coalesce(max(id), 0)::text as last from item_events');
      const before = await numbersOf(UPDATED_ITEMS);
      const pidBefore = server.server.live?.listenerPid;

      // Before: 30 writes, all committed.
      const first = await runConcurrently(writes(30, 51, 1), 4);
      expect(first.filter((outcome) => outcome.status === 'rejected')).toEqual([]);

      // During: 30 more, and PostgreSQL stops under them (some commit, some fail).
      let done = 0;
      const during = runConcurrently(
        writes(30, 61, 2).map((task) => async () => {
          try {
            return await task();
          } finally {
            done += 1;
          }
        }),
        4,
      );
      expect(await eventually(() => done >= 8, 10_000)).toBe(true);
      await embedded!.stop();
      embedded = undefined;
      const duringOutcomes = await during;
      await new Promise((resolve) => setTimeout(resolve, 500));
      embedded = await startEmbeddedDatabase({ dataDir, port, persistent: true });

      // After: 30 more directly, and 5 through the server's own (replaced) pool connections.
      const third = await runConcurrently(writes(30, 71, 3), 4);
      expect(third.filter((outcome) => outcome.status === 'rejected').map((outcome) => String((outcome as PromiseRejectedResult).reason))).toEqual([]);
      for (let i = 0; i < 5; i++) {
        const { body } = await server.graphql(`mutation { createItem(input: { number: ${i}, categoryId: "1" }) { id } }`);
        expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
      }

      let outbox: OutboxEvent[] = [];
      await eventually(async () => {
        outbox = await outboxAfter((sql, params) => query<OutboxEvent>(sql, params), after);
        return watchers.every((watcher) => watcher.results.length >= expectedFor(watcher, outbox).length || watcher.results.some((result) => result.errors));
      }, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      outbox = await outboxAfter((sql, params) => query<OutboxEvent>(sql, params), after);
      const failedDuring = duringOutcomes.filter((outcome) => outcome.status === 'rejected').length;
      console.info(
        `restart: ${outbox.length} events committed (${30 - failedDuring} of 30 writes under the stop succeeded), ` +
          `listener ${pidBefore} -> ${server.server.live?.listenerPid}, ${watchers.reduce((sum, watcher) => sum + watcher.results.length, 0)} results`,
      );
      expect(outbox.length).toBeGreaterThanOrEqual(30 + 30 + 5 + (30 - failedDuring));
      const problems = problemsOf(watchers, outbox, { before, after: await numbersOf(UPDATED_ITEMS) });
      expect(problems.slice(0, 20), `${problems.length} subscribers wrong`).toEqual([]);
      expect(server.server.live?.listenerPid).toBeGreaterThan(0);
      expect(server.server.live?.listenerPid).not.toBe(pidBefore);
    } finally {
      for (const watcher of watchers) watcher.close();
    }
    expect(await eventually(() => server.server.live?.size === 0, 10_000)).toBe(true);
  });
});
