import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/app.js';
import { useTestEnvironment } from '../support/server.js';

const t = useTestEnvironment();

const numbers = (data: unknown, field = 'items') =>
  ((data as Record<string, { number: number }[]>)[field] ?? []).map((item) => item.number);

describe('reading items', () => {
  it('answers { items { number } } with the 20 seeded numbers in id order', async () => {
    const { status, body } = await t.server.graphql('{ items { number } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(numbers(body.data)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('returns the next page after the last id seen (keyset pagination)', async () => {
    const first = await t.server.graphql('{ items(first: 5) { id } }');
    const ids = (first.body.data?.items as { id: string }[]).map((item) => item.id);
    expect(ids).toEqual(['1', '2', '3', '4', '5']);
    const next = await t.server.graphql('query($after: ID) { items(first: 5, after: $after) { id number } }', {
      after: ids.at(-1),
    });
    expect(next.body.data?.items).toEqual([6, 7, 8, 9, 10].map((n) => ({ id: String(n), number: n })));
  });

  it('filters by an inclusive number range', async () => {
    const { body } = await t.server.graphql('{ items(first: 100, minNumber: 10, maxNumber: 13) { number } }');
    expect(numbers(body.data)).toEqual([10, 11, 12, 13]);
  });

  it('clamps first to 100 and rejects a negative first with BAD_USER_INPUT', async () => {
    const clamped = await t.server.graphql('{ items(first: 1000000) { id } }');
    expect((clamped.body.data?.items as unknown[]).length).toBe(100);

    const negative = await t.server.graphql('{ items(first: -1) { id } }');
    expect(negative.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(negative.body.errors?.[0]?.message).toContain('first');
  });

  it('returns first: 0 as an empty list', async () => {
    const { body } = await t.server.graphql('{ items(first: 0) { id } }');
    expect(body.data?.items).toEqual([]);
  });

  it('finds one item by id, null for an unknown id, BAD_USER_INPUT for a malformed one', async () => {
    const found = await t.server.graphql('{ item(id: "42") { id number label category { name } } }');
    expect(found.body.data?.item).toEqual({ id: '42', number: 42, label: 'item-42', category: { name: 'category-2' } });

    const unknown = await t.server.graphql('{ item(id: "999999") { id } }');
    expect(unknown.body.errors).toBeUndefined();
    expect(unknown.body.data?.item).toBeNull();

    for (const id of ['abc', '-1', '0', '99999999999999999999', '1; DROP TABLE items --']) {
      const malformed = await t.server.graphql('query($id: ID!) { item(id: $id) { id } }', { id });
      expect(malformed.body.errors?.[0]?.extensions?.code, id).toBe('BAD_USER_INPUT');
    }
    const rows = await t.database.query<{ count: number }>('select count(*)::int as count from items');
    expect(rows).toEqual([{ count: 900 }]);
  });

  it('serves createdAt as an ISO 8601 date-time', async () => {
    const { body } = await t.server.graphql('{ item(id: "1") { createdAt } }');
    const createdAt = (body.data?.item as { createdAt: string }).createdAt;
    expect(new Date(createdAt).toISOString()).toBe(createdAt);
  });

  it('serves createdAt the same, to the millisecond, from its own pool and from a lent one', async () => {
    // PostgreSQL keeps microseconds, an offset and years outside 1970..9999; the API answers in UTC
    // with milliseconds (the microseconds cut, not rounded), as it always has.
    const stored: [string, string][] = [
      ['2', '2024-02-29 23:59:59.123456+00'],
      ['3', '2021-06-01 08:00:00.9999+05:30'],
      ['4', '0050-01-01 00:00:00+00'],
      ['5', '1969-12-31 23:59:59.5-08'],
    ];
    const expected = {
      i2: { createdAt: '2024-02-29T23:59:59.123Z' },
      i3: { createdAt: '2021-06-01T02:30:00.999Z' },
      i4: { createdAt: '0050-01-01T00:00:00.000Z' },
      i5: { createdAt: '1970-01-01T07:59:59.500Z' },
    };
    const query = '{ i2: item(id: "2") { createdAt } i3: item(id: "3") { createdAt } i4: item(id: "4") { createdAt } i5: item(id: "5") { createdAt } }';
    for (const [id, createdAt] of stored) {
      await t.database.query('update items set created_at = $2 where id = $1', [id, createdAt]);
    }

    const own = await t.server.graphql(query);
    expect(own.body).toEqual({ data: expected });
    // Through the categories' lateral query too (the rows W2 reads).
    const nested = await t.server.graphql('{ category(id: "1") { items(first: 5) { id createdAt } } }');
    const items = (nested.body.data?.category as { items: { id: string; createdAt: string }[] }).items;
    expect(items.slice(1).map((item) => item.createdAt)).toEqual(Object.values(expected).map((e) => e.createdAt));

    // The server's pool leaves timestamptz as text for its own connections only: pg's global
    // parsers, which every other pool of the process uses, still give a Date.
    const ownPool = await t.server.server.pool.query<{ created_at: unknown }>('select created_at from items where id = 2');
    expect(typeof ownPool.rows[0]?.created_at).toBe('string');
    const [row] = await t.database.query<{ created_at: unknown }>('select created_at from items where id = 2');
    expect(row?.created_at).toEqual(new Date('2024-02-29T23:59:59.123Z'));

    // A pool the host lends keeps pg's global type parsers: the answer must not change.
    const lent = new pg.Pool({ connectionString: t.database.url, max: 1 });
    const server = createServer({ database: lent, logger: pino({ level: 'silent' }) });
    try {
      const response = await server.yoga.fetch('http://localhost/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      expect(await response.text()).toBe(JSON.stringify({ data: expected }));
    } finally {
      await server.close();
      await lent.end();
    }
  });

  it('lists categories with their item counts, paginated by id', async () => {
    const { body } = await t.server.graphql('{ categories(first: 2, after: "3") { id name itemCount } }');
    expect(body.data?.categories).toEqual([
      { id: '4', name: 'category-4', itemCount: 30 },
      { id: '5', name: 'category-5', itemCount: 30 },
    ]);
    const one = await t.server.graphql('{ category(id: "7") { name items(first: 2) { number } } missing: category(id: "9999") { id } }');
    expect(one.body.data).toEqual({
      category: { name: 'category-7', items: [{ number: 181 }, { number: 182 }] },
      missing: null,
    });
  });
});
