import { describe, expect, it } from 'vitest';
import { useTestEnvironment } from './support/server.js';

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
