import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { eventually, useTestEnvironment } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';

/** Subscriptions over GraphQL over SSE, on one listener connection, with batched loads (I8). */
describe('subscriptions over SSE', () => {
  const t = useTestEnvironment({ size: 2, maxOverflow: 3 });
  const statements = usePostgresStatements(() => t.database);

  it('pushes every new item to every subscriber, filtered by category, in the order they were made', async () => {
    const all = await subscribeSse(t.server.url, 'subscription { itemCreated { id number category { name } } }');
    const inTwo = await subscribeSse(t.server.url, 'subscription { itemCreated(categoryId: "2") { id number } }');
    try {
      expect(all.status).toBe(200);
      const created: string[] = [];
      for (const categoryId of ['1', '2', '2', '3']) {
        const { body } = await t.server.graphql(`mutation { createItem(input: { number: 5, categoryId: "${categoryId}" }) { id } }`);
        created.push((body.data?.['createItem'] as { id: string }).id);
      }
      expect(await eventually(() => all.results.length >= 4 && inTwo.results.length >= 2)).toBe(true);
      expect(all.results.map((result) => (result.data?.['itemCreated'] as { id: string }).id)).toEqual(created);
      expect(all.results[0]?.data?.['itemCreated']).toMatchObject({ number: 5, category: { name: 'category-1' } });
      expect(inTwo.results.map((result) => (result.data?.['itemCreated'] as { id: string }).id)).toEqual([created[1], created[2]]);
    } finally {
      all.close();
      inTwo.close();
    }
  });

  it('costs a tick the same statements for 1 subscriber or 50, and opens one listener connection', async (context) => {
    const subscriptions = await Promise.all(
      Array.from({ length: 50 }, () => subscribeSse(t.server.url, 'subscription { itemUpdated(id: "7") { id label category { name } } }')),
    );
    try {
      await eventually(() => t.server.server.live?.size === 50);
      const { seen } = await statements.during(context, async () => {
        await t.database.query("update items set label = 'changed once' where id = 7");
        expect(await eventually(() => subscriptions.every((subscription) => subscription.results.length === 1))).toBe(true);
      });
      // The test's own UPDATE, the listener's read of the outbox, the item, its category.
      expect(seen.byKind.data, seen.listing).toBeLessThanOrEqual(4);
      expect(subscriptions[0]?.results[0]).toEqual({ data: { itemUpdated: { id: '7', label: 'changed once', category: { name: 'category-1' } } } });
      const [listeners] = await t.database.query<{ count: number }>(
        "select count(*)::int as count from pg_stat_activity where datname = current_database() and application_name = 'poolgraph-listener'",
      );
      expect(listeners?.count).toBe(1);
    } finally {
      for (const subscription of subscriptions) subscription.close();
    }
    // The last subscriber gone, the listener closes.
    expect(await eventually(async () => {
      const [row] = await t.database.query<{ count: number }>(
        "select count(*)::int as count from pg_stat_activity where datname = current_database() and application_name = 'poolgraph-listener'",
      );
      return row?.count === 0;
    })).toBe(true);
  });
});

describe('subscriptions over graphql-ws (graphql-transport-ws), beside SSE', () => {
  const t = useTestEnvironment();

  it('delivers the same events to WebSocket and SSE subscribers, through the same listener', async () => {
    const { createClient } = await import('graphql-ws');
    const { default: WebSocket } = await import('ws');
    const client = createClient({ url: t.server.url.replace('http:', 'ws:'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const overWs: unknown[] = [];
    let wsError: unknown;
    const unsubscribe = client.subscribe(
      { query: 'subscription { itemDeleted }' },
      { next: (value) => void overWs.push(value), error: (error) => (wsError = error), complete: () => undefined },
    );
    const overSse = await subscribeSse(t.server.url, 'subscription { itemDeleted }');
    try {
      expect(await eventually(() => t.server.server.live?.size === 2)).toBe(true);
      expect((await t.server.graphql('mutation { deleteItem(id: "3") }')).body).toEqual({ data: { deleteItem: true } });
      expect(await eventually(() => overWs.length === 1 && overSse.results.length === 1)).toBe(true);
      expect(overWs).toEqual([{ data: { itemDeleted: '3' } }]);
      expect(overSse.results).toEqual([{ data: { itemDeleted: '3' } }]);
      expect(wsError).toBeUndefined();
    } finally {
      unsubscribe();
      overSse.close();
      await client.dispose();
    }
  });
});
