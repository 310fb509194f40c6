import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { useTestEnvironment } from '../support/server.js';
import { W1, W2, W3 } from '../support/workloads.js';

const t = useTestEnvironment();
// The counts above come from the request scope, the code under test; PostgreSQL's own count
// (pg_stat_statements) confirms them.
const postgres = usePostgresStatements(() => t.database);

interface W2Category {
  name: string;
  itemCount: number;
  items: { id: string; number: number; category: { name: string } }[];
}

describe('batched loading (I4)', () => {
  it('answers W1 with one statement', async () => {
    const { stats } = await t.server.measure(W1);
    expect(stats?.statements).toBe(1);
  });

  it('answers W2 (20 categories x 10 items, nested) with at most 4 statements', async () => {
    const { response, stats } = await t.server.measure(W2);
    expect(response.body.errors).toBeUndefined();
    expect(stats?.statements).toBeLessThanOrEqual(4);

    const categories = (response.body.data as { categories: W2Category[] }).categories;
    expect(categories).toHaveLength(20);
    categories.forEach((category, index) => {
      const n = index + 1;
      expect(category.name).toBe(`category-${n}`);
      expect(category.itemCount).toBe(30);
      // Its own items, in id order, at most `first`: items 30(n-1)+1 .. 30(n-1)+10.
      expect(category.items.map((item) => Number(item.id))).toEqual(
        Array.from({ length: 10 }, (_, i) => 30 * (n - 1) + i + 1),
      );
      for (const item of category.items) expect(item.category.name).toBe(category.name);
    });
  });

  it('costs the same number of statements whatever the number of rows', async () => {
    const small = await t.server.measure(W2.replace('first: 20', 'first: 2').replace('first: 10', 'first: 1'));
    const large = await t.server.measure(W2.replace('first: 20', 'first: 30').replace('first: 10', 'first: 30'));
    expect(small.stats?.statements).toBe(large.stats?.statements);
    expect((large.response.body.data as { categories: W2Category[] }).categories.flatMap((c) => c.items)).toHaveLength(900);
  });

  it('applies a different first per category inside one statement', async () => {
    const { response, stats } = await t.server.measure(`{
      categories(first: 3) { a: items(first: 1) { id } b: items(first: 3) { id } }
    }`);
    expect(stats?.statements).toBe(2);
    expect(response.body.data?.categories).toEqual([
      { a: [{ id: '1' }], b: [{ id: '1' }, { id: '2' }, { id: '3' }] },
      { a: [{ id: '31' }], b: [{ id: '31' }, { id: '32' }, { id: '33' }] },
      { a: [{ id: '61' }], b: [{ id: '61' }, { id: '62' }, { id: '63' }] },
    ]);
  });

  it('counts the items of a page of categories in the statement that lists them', async () => {
    // W2: the categories with their counts, then their items: the counts cost no statement of their own.
    const w2 = await t.server.measure(W2);
    expect(w2.response.body.errors).toBeUndefined();
    expect(w2.stats?.statements).toBe(2);

    // However itemCount is reached: directly, through an inline fragment, or a named fragment.
    const page = [
      { id: '1', itemCount: 30 },
      { id: '2', itemCount: 30 },
    ];
    for (const query of [
      '{ categories(first: 2) { id itemCount } }',
      '{ categories(first: 2) { id ... on Category { itemCount } } }',
      '{ categories(first: 2) { ...counted } } fragment counted on Category { id itemCount }',
    ]) {
      const { response, stats } = await t.server.measure(query);
      expect(response.body, query).toEqual({ data: { categories: page } });
      expect(stats?.statements, query).toBe(1);
    }

    // Without itemCount the list does not count; a lone category still counts through its loader.
    const names = await t.server.measure('{ categories(first: 2) { name } }');
    expect(names.response.body.data).toEqual({ categories: [{ name: 'category-1' }, { name: 'category-2' }] });
    expect(names.stats?.statements).toBe(1);
    const one = await t.server.measure('{ category(id: "3") { itemCount } }');
    expect(one.response.body.data).toEqual({ category: { itemCount: 30 } });
    expect(one.stats?.statements).toBe(2);

    // Two lists, only one of them counting, and a category without items (0, not missing).
    await t.database.query(`insert into categories (name) values ('empty')`);
    try {
      const { response, stats } = await t.server.measure(
        '{ counted: categories(first: 2, after: "29") { name itemCount } plain: categories(first: 1) { name } }',
      );
      expect(response.body.data).toEqual({
        counted: [
          { name: 'category-30', itemCount: 30 },
          { name: 'empty', itemCount: 0 },
        ],
        plain: [{ name: 'category-1' }],
      });
      expect(stats?.statements).toBe(2);
    } finally {
      await t.database.query(`delete from categories where name = 'empty'`);
    }
  });

  it('answers W3 (20 aliased item lookups) with one statement, null for an unknown id', async () => {
    const { response, stats } = await t.server.measure(W3);
    expect(stats?.statements).toBe(1);
    const data = response.body.data as Record<string, { number: number; label: string } | null>;
    expect(data.i1).toEqual({ number: 5, label: 'item-5' });
    expect(data.i20).toEqual({ number: 708, label: 'item-708' });

    const withUnknown = await t.server.measure('{ a: item(id: "1") { id } b: item(id: "123456") { id } }');
    expect(withUnknown.stats?.statements).toBe(1);
    expect(withUnknown.response.body.data).toEqual({ a: { id: '1' }, b: null });
  });

  it('runs W1, W2 and W3 in the statements PostgreSQL counts: 1, 2 and 1, whatever the number of rows', async (context) => {
    const largeW2 = W2.replace('first: 20', 'first: 30').replace('first: 10', 'first: 30');
    for (const [name, query, expected] of [
      ['W1', W1, 1],
      ['W2', W2, 2],
      ['W2 with 30 x 30 rows', largeW2, 2],
      ['W3', W3, 1],
    ] as const) {
      const { result, seen } = await postgres.during(context, () => t.server.measure(query));
      expect(result.response.body.errors, name).toBeUndefined();
      expect(seen.total, `${name}, statements PostgreSQL ran:\n${seen.listing}`).toBe(expected);
      expect(seen.byKind, name).toMatchObject({ begin: 0, commit: 0 });
      // The scope's own counter, which the tests above rely on, agrees.
      expect(result.stats?.statements, name).toBe(seen.total);
    }
  });
});
