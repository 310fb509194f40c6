import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectedFor,
  type OutboxEvent,
  outboxAfter,
  problemsOf,
  rawSseSubscription,
  runConcurrently,
  shuffled,
  type Watcher,
  type WatchSpec,
  watchConnections,
  watchSse,
  watchWs,
  mixedSpec,
  UPDATED_ITEMS,
} from '../support/live-watchers.js';
import { scrape } from '../support/metrics.js';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { eventually, useTestEnvironment } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';

const POOL_SIZE = 2;
const POOL_MAX_OVERFLOW = 3;

/**
 * The proof at scale (I8, docs/design.md): hundreds of subscribers over both transports,
 * concurrent writers, a killed listener, a subscriber that stops reading. Every subscriber gets
 * every event it asked for, in id order, none missing, none twice, through the server's own few
 * connections and one listener.
 */
describe('subscriptions at scale', () => {
  const t = useTestEnvironment({ size: POOL_SIZE, maxOverflow: POOL_MAX_OVERFLOW });
  const statements = usePostgresStatements(() => t.database);
  let writers: pg.Pool;
  beforeAll(() => {
    writers = new pg.Pool({ connectionString: t.database.url, max: 8, application_name: 'poolgraph-test-writer' });
    writers.on('error', () => undefined);
  });
  afterAll(async () => {
    await writers?.end();
  });

  const events = (after: string) => outboxAfter((sql, params) => t.database.query<OutboxEvent>(sql, params), after);
  const lastEventId = async () => (await t.database.query<{ last: string }>('select coalesce(max(id), 0)::text as last from item_events'))[0]!.last;
  const numbersOf = async (ids: readonly string[]) =>
    new Map((await t.database.query<{ id: string; number: number }>('select id::text as id, number from items where id = any($1::bigint[])', [ids])).map((row) => [row.id, row.number]));

  async function openWatchers(sse: number, ws: number, name: string): Promise<Watcher[]> {
    const before = t.server.server.live?.size ?? 0;
    const watchers: Watcher[] = [];
    // In batches, so the HTTP server's accept backlog never overflows.
    for (let start = 0; start < sse; start += 100) {
      const count = Math.min(100, sse - start);
      watchers.push(...(await Promise.all(Array.from({ length: count }, (_, i) => watchSse(t.server.url, mixedSpec(start + i), `${name}-sse-${start + i}`)))));
    }
    for (let i = 0; i < ws; i++) watchers.push(watchWs(t.server.url, mixedSpec(i), `${name}-ws-${i}`));
    const registered = await eventually(() => t.server.server.live?.size === before + sse + ws, 20_000);
    expect(registered, `subscriptions registered: ${t.server.server.live?.size} of ${before + sse + ws}`).toBe(true);
    return watchers;
  }

  async function closeWatchers(watchers: readonly Watcher[]): Promise<void> {
    for (const watcher of watchers) watcher.close();
    expect(await eventually(() => t.server.server.live?.size === 0, 10_000), `left: ${t.server.server.live?.size}`).toBe(true);
  }

  /** Waits until every watcher has at least what the outbox says it should, then a little more (for extras). */
  async function settle(watchers: readonly Watcher[], after: string, timeoutMs: number): Promise<OutboxEvent[]> {
    await eventually(async () => {
      const outbox = await events(after);
      // A watcher ended with an error gets nothing more: no use waiting for it.
      return watchers.every((watcher) => watcher.results.length >= expectedFor(watcher, outbox).length || watcher.results.some((result) => result.errors));
    }, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, 300));
    return events(after);
  }

  /**
   * 200 writes from concurrent clients: inserts (categories 1-3), increments of items 11-20,
   * deletes of items 101-140, some through GraphQL mutations (the server's own pool), and slow
   * transactions that commit after later ids did (gaps the listener must wait at).
   */
  function writes(seed: number, deleteFrom: number): (() => Promise<unknown>)[] {
    const tasks: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 60; i++) {
      tasks.push(() => writers.query('insert into items (number, label, category_id) values ($1, $2, $3)', [i, `new-${i}`, (i % 3) + 1]));
    }
    for (let i = 0; i < 20; i++) {
      tasks.push(async () => {
        const { body } = await t.server.graphql(`mutation { createItem(input: { number: ${i}, categoryId: "${(i % 2) + 1}" }) { id } }`);
        if (body.errors) throw new Error(JSON.stringify(body.errors));
      });
    }
    for (let i = 0; i < 70; i++) {
      tasks.push(() => writers.query('update items set number = number + 1 where id = $1', [UPDATED_ITEMS[i % UPDATED_ITEMS.length]]));
    }
    for (let i = 0; i < 30; i++) tasks.push(() => writers.query('delete from items where id = $1', [deleteFrom + i]));
    for (let i = 30; i < 40; i++) {
      tasks.push(async () => {
        const { body } = await t.server.graphql(`mutation { deleteItem(id: "${deleteFrom + i}") }`);
        if (body.errors || body.data?.['deleteItem'] !== true) throw new Error(JSON.stringify(body));
      });
    }
    for (let i = 0; i < 10; i++) {
      tasks.push(async () => {
        const client = await writers.connect();
        try {
          await client.query('begin');
          await client.query('insert into items (number, label, category_id) values ($1, $2, 1)', [i, `slow-${i}`]);
          await client.query('select pg_sleep(0.15)');
          await client.query('commit');
        } finally {
          client.release();
        }
      });
    }
    return shuffled(tasks, seed);
  }

  it('costs a tick the same statements with 1 subscriber as with 500 of the same selection', async (context) => {
    const document = 'subscription { itemUpdated(id: "7") { id number label category { id name } } }';
    const one = await subscribeSse(t.server.url, document);
    const more: Awaited<ReturnType<typeof subscribeSse>>[] = [];
    try {
      expect(await eventually(() => t.server.server.live?.size === 1)).toBe(true);
      const alone = await statements.during(context, async () => {
        await t.database.query('update items set number = number + 1 where id = 7');
        expect(await eventually(() => one.results.length === 1)).toBe(true);
      });
      for (let start = 0; start < 499; start += 100) {
        more.push(...(await Promise.all(Array.from({ length: Math.min(100, 499 - start) }, () => subscribeSse(t.server.url, document)))));
      }
      expect(await eventually(() => t.server.server.live?.size === 500, 20_000)).toBe(true);
      const crowd = await statements.during(context, async () => {
        await t.database.query('update items set number = number + 1 where id = 7');
        expect(await eventually(() => one.results.length === 2 && more.every((subscription) => subscription.results.length === 1), 20_000)).toBe(true);
      });
      console.info(
        `statements of one tick: 1 subscriber ${alone.seen.total} (data ${alone.seen.byKind.data}), 500 subscribers ${crowd.seen.total} (data ${crowd.seen.byKind.data})\n${crowd.seen.listing}`,
      );
      expect(crowd.seen.total, `1 subscriber:\n${alone.seen.listing}\n500 subscribers:\n${crowd.seen.listing}`).toBe(alone.seen.total);
      expect(crowd.seen.byKind).toEqual(alone.seen.byKind);
      const results = [...more, one].map((subscription) => subscription.results.at(-1));
      expect(new Set(results.map((result) => JSON.stringify(result))).size).toBe(1);
      expect(results[0]?.data?.['itemUpdated']).toMatchObject({ id: '7', category: { id: '1' } });
    } finally {
      one.close();
      for (const subscription of more) subscription.close();
    }
    expect(await eventually(() => t.server.server.live?.size === 0, 10_000)).toBe(true);
  });

  it('delivers every event of 200 concurrent writes to 500 SSE and 50 WebSocket subscribers, in id order, once, on the pool and one listener', async () => {
    const watchers = await openWatchers(500, 50, 'scale');
    const metricsUrl = t.server.url.replace(/\/graphql$/, '/metrics');
    expect((await scrape(metricsUrl)).value('poolgraph_subscriptions', { transport: 'sse' })).toBe(500);
    try {
      const after = await lastEventId();
      const before = await numbersOf(UPDATED_ITEMS);
      const monitor = await watchConnections(t.database.url);
      let samples;
      try {
        const outcomes = await runConcurrently(writes(7, 101), 12);
        const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
        expect(failed.map((outcome) => String(outcome.reason))).toEqual([]);
        await settle(watchers, after, 30_000);
      } finally {
        samples = await monitor.stop();
      }
      const outbox = await events(after);
      expect(outbox).toHaveLength(200);
      const problems = problemsOf(watchers, outbox, { before, after: await numbersOf(UPDATED_ITEMS) });
      expect(problems.slice(0, 20), `${problems.length} subscribers wrong`).toEqual([]);
      const delivered = watchers.reduce((sum, watcher) => sum + watcher.results.length, 0);
      console.info(
        `${watchers.length} subscribers got ${delivered} results of ${outbox.length} events; ` +
          `${samples.samples} samples of pg_stat_activity: peak ${samples.peakApp} poolgraph connections, listener counts ${JSON.stringify([...samples.listeners])}`,
      );
      expect(samples.samples).toBeGreaterThan(10);
      expect(samples.peakApp).toBeLessThanOrEqual(POOL_SIZE + POOL_MAX_OVERFLOW);
      expect([...samples.listeners.keys()], 'exactly one listener connection in every sample').toEqual([1]);
    } finally {
      await closeWatchers(watchers);
    }
  });

  it('loses nothing, repeats nothing and keeps the order when the listener backend is killed mid-stream', async () => {
    const watchers = await openWatchers(100, 10, 'killed');
    try {
      const after = await lastEventId();
      const before = await numbersOf(UPDATED_ITEMS);
      const pid = t.server.server.live?.listenerPid;
      expect(pid).toBeGreaterThan(0);
      const tasks = writes(11, 201);
      let done = 0;
      const counted = tasks.map((task) => async () => {
        try {
          return await task();
        } finally {
          done += 1;
        }
      });
      const writing = runConcurrently(counted, 12);
      expect(await eventually(() => done >= 60, 10_000)).toBe(true);
      await t.database.query('select pg_terminate_backend($1)', [pid]);
      const outcomes = await writing;
      expect(outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => String((outcome as PromiseRejectedResult).reason))).toEqual([]);
      await settle(watchers, after, 20_000);
      const outbox = await events(after);
      expect(outbox).toHaveLength(200);
      const problems = problemsOf(watchers, outbox, { before, after: await numbersOf(UPDATED_ITEMS) });
      expect(problems.slice(0, 20), `${problems.length} subscribers wrong`).toEqual([]);
      const newPid = t.server.server.live?.listenerPid;
      expect(newPid).toBeGreaterThan(0);
      expect(newPid).not.toBe(pid);
      const [row] = await t.database.query<{ count: number }>(
        "select count(*)::int as count from pg_stat_activity where datname = current_database() and application_name = 'poolgraph-listener'",
      );
      expect(row?.count).toBe(1);
    } finally {
      await closeWatchers(watchers);
    }
  });

  it('delivers a burst of 300 events committed at once to subscribers that read as they come', async () => {
    const sse = await watchSse(t.server.url, { field: 'itemCreated' }, 'burst-sse');
    const ws = watchWs(t.server.url, { field: 'itemCreated' }, 'burst-ws');
    try {
      expect(await eventually(() => t.server.server.live?.size === 2)).toBe(true);
      const after = await lastEventId();
      // One transaction, 300 events: one read of the listener, one tick of the hub.
      await writers.query("insert into items (number, label, category_id) select g, 'burst', 2 from generate_series(1, 300) as g");
      const outbox = await settle([sse, ws], after, 10_000);
      expect(outbox).toHaveLength(300);
      expect(problemsOf([sse, ws], outbox, undefined)).toEqual([]);
    } finally {
      sse.close();
      ws.close();
    }
    expect(await eventually(() => t.server.server.live?.size === 0, 10_000)).toBe(true);
  });

  it('drops a subscriber that stops reading with SUBSCRIBER_TOO_SLOW, counts it once, and the others get everything', async () => {
    const metricsUrl = t.server.url.replace(/\/graphql$/, '/metrics');
    const document = 'subscription { itemCreated(categoryId: "5") { id label } }';
    const slow = await rawSseSubscription(t.server.url, document);
    const reader = await subscribeSse(t.server.url, document);
    const spec: WatchSpec = { field: 'itemCreated', filter: '5' };
    const wsWatcher = watchWs(t.server.url, spec, 'slow-ws');
    try {
      expect(await eventually(() => t.server.server.live?.size === 3)).toBe(true);
      const metricsBefore = await scrape(metricsUrl);
      const after = await lastEventId();
      // 16 KiB results, 50 a statement (one tick each): the slow socket's buffers fill, then its queue.
      let batches = 0;
      const started = Date.now();
      while (t.server.server.live?.size === 3 && batches < 40 && Date.now() - started < 30_000) {
        await writers.query(
          "insert into items (number, label, category_id) select g, repeat('x', 16384), 5 from generate_series(1, 50) as g",
        );
        batches += 1;
        // Let the readers keep up, as a reading client does.
        await eventually(() => reader.results.length >= batches * 50 && wsWatcher.results.length >= batches * 50, 5_000);
      }
      expect(t.server.server.live?.size, `the slow subscriber still served after ${batches} batches of 50`).toBe(2);
      // More events after the drop: the others still get them.
      await writers.query("insert into items (number, label, category_id) select g, 'after', 5 from generate_series(1, 50) as g");
      const readerWatcher: Watcher = {
        name: 'slow-sse-reader',
        transport: 'sse',
        field: 'itemCreated',
        filter: '5',
        results: reader.results,
        failures: [],
        close: () => reader.close(),
      };
      const outbox = await settle([readerWatcher, wsWatcher], after, 20_000);
      const problems = problemsOf([readerWatcher, wsWatcher], outbox, undefined);
      expect(problems).toEqual([]);
      const metricsAfter = await scrape(metricsUrl);
      console.info(
        `slow consumer dropped after ${batches} batches of 50 (${batches * 50} results of 16 KiB); dropped_total moved by ${metricsAfter.delta(metricsBefore, 'poolgraph_live_subscribers_dropped_total')}`,
      );
      // Reading again, the slow client finds its stream ended with the error.
      const text = await slow.read(10_000, /SUBSCRIBER_TOO_SLOW[\s\S]*\r\n0\r\n\r\n$/);
      expect(text).toMatch(/event: next\r?\ndata: \{"errors":\[\{"message":"This subscription was ended[^\n]*SUBSCRIBER_TOO_SLOW/);
      expect(text, 'the stream ends after the error').toMatch(/\r\n0\r\n\r\n$/);
      // One subscriber was dropped: the counter counts subscribers, not the results it then missed.
      expect(metricsAfter.delta(metricsBefore, 'poolgraph_live_subscribers_dropped_total'), 'poolgraph_live_subscribers_dropped_total moved by').toBe(1);
    } finally {
      slow.socket.destroy();
      reader.close();
      wsWatcher.close();
    }
    expect(await eventually(() => t.server.server.live?.size === 0, 10_000)).toBe(true);
  });
});
