import { describe, expect, it } from 'vitest';
import { useTestEnvironment } from '../support/server.js';
import { W2 } from '../support/workloads.js';

/**
 * Reads of `items` fetch only the columns their selection needs (src/graphql/resolvers/item-columns.ts):
 * W1 reads `number` of 20 rows instead of five columns, a gateway's W5 three columns of 100. What each request really sent is read
 * back from PostgreSQL: `pg_stat_activity.query` is the last statement of the backend the request
 * was handed (its pid from the pool's `acquire` event).
 */
const t = useTestEnvironment();

/** The last statement the backend with this pid ran, as PostgreSQL recorded it. */
async function lastStatementOf(pid: number | undefined): Promise<string> {
  const [row] = await t.database.query<{ query: string }>('select query from pg_stat_activity where pid = $1', [pid]);
  return row?.query ?? '';
}

/** An item as the API should answer it, read from PostgreSQL directly (not through the server). */
interface StoredItem {
  id: string;
  number: number;
  label: string;
  createdAt: string;
  category: { name: string } | null;
}

async function storedItem(id: string): Promise<StoredItem> {
  const [row] = await t.database.query<{ id: string; number: number; label: string; created_at: Date; name: string | null }>(
    `select items.id::text, items.number, items.label, items.created_at, categories.name
     from items left join categories on categories.id = items.category_id where items.id = $1`,
    [id],
  );
  if (!row) throw new Error(`no item ${id}`);
  return {
    id: row.id,
    number: row.number,
    label: row.label,
    createdAt: row.created_at.toISOString(),
    category: row.name === null ? null : { name: row.name },
  };
}

describe('reads of items fetch only the columns their selection needs', () => {
  it('reads number alone for { items { number } }, and the answer is unchanged', async () => {
    const { response, stats, acquired } = await t.server.measure('{ items(first: 3) { number } }');
    expect(response.body).toEqual({ data: { items: [{ number: 1 }, { number: 2 }, { number: 3 }] } });
    expect(stats?.statements).toBe(1);
    expect(acquired).toHaveLength(1);
    expect(await lastStatementOf(acquired[0])).toBe('select "number" from "items" order by "id" limit $1');
  });

  it("reads W2's items without the label and createdAt it does not return, in one statement", async () => {
    const { response, stats, acquired } = await t.server.measure(W2);
    expect(response.body.errors).toBeUndefined();
    expect(stats?.statements).toBe(2);
    const statement = await lastStatementOf(acquired[0]);
    expect(statement).toMatch(/^\s*select \(k\.ordinality - 1\)::int as key_index, "i"\."id", "i"\."number", "i"\."category_id"\s/);
  });

  it('answers every field as a read of whole rows does, through aliases, fragments and mixed selections', async () => {
    // Two selections of the same list in one batch (one statement reading the union of their
    // columns), one of them through a named fragment with an inline fragment inside.
    const query = `{
      categories(first: 2) {
        numbers: items(first: 3) { number }
        details: items(first: 3) { ...details }
      }
      items(first: 3, after: "40") { ... on Item { createdAt } label }
    }
    fragment details on Item { id ... on Item { label createdAt } category { name } }`;
    const { response, stats } = await t.server.measure(query);
    expect(response.body.errors).toBeUndefined();
    // The categories, the root list, and ONE batch for both selections of their items.
    expect(stats?.statements).toBe(3);

    const ids = ['1', '2', '3', '31', '32', '33', '41', '42', '43'];
    const stored = new Map<string, StoredItem>();
    for (const id of ids) stored.set(id, await storedItem(id));
    const item = (id: string) => stored.get(id) as StoredItem;
    const page = (first: string[]) => ({
      numbers: first.map((id) => ({ number: item(id).number })),
      details: first.map((id) => ({ id, label: item(id).label, createdAt: item(id).createdAt, category: item(id).category })),
    });
    expect(response.body.data).toEqual({
      categories: [page(['1', '2', '3']), page(['31', '32', '33'])],
      items: ['41', '42', '43'].map((id) => ({ createdAt: item(id).createdAt, label: item(id).label })),
    });
  });

  it('answers item(id:) in full beside a list that read only part of the same row', async () => {
    // The list's row of item 2 holds `number` alone; item(id:) reads the whole row (never primed
    // from a partial one), in a statement of its own.
    const partial = await t.server.measure('{ items(first: 2) { number } item(id: "2") { number label createdAt } }');
    expect(partial.response.body.errors).toBeUndefined();
    expect(partial.stats?.statements).toBe(2);
    const data = partial.response.body.data as { item: { number: number; label: string; createdAt: string } };
    const { number, label, createdAt } = await storedItem('2');
    expect(data.item).toEqual({ number, label, createdAt });
  });

  it('reads only the selected columns for item(id:), one statement for the loads of a tick', async () => {
    const single = await t.server.measure('{ item(id: "5") { number } }');
    expect(single.response.body).toEqual({ data: { item: { number: 5 } } });
    expect(await lastStatementOf(single.acquired[0])).toBe('select "id", "number" from "items" where "id" = any($1::bigint[])');

    // Three loads asking for different columns of two items: one statement reading their union.
    const mixed = await t.server.measure(`{
      a: item(id: "5") { number } b: item(id: "5") { label createdAt } c: item(id: "6") { category { name } }
    }`);
    expect(mixed.response.body.errors).toBeUndefined();
    expect(mixed.stats?.statements).toBe(2); // the items, then item 6's category
    const i5 = await storedItem('5');
    const i6 = await storedItem('6');
    expect(mixed.response.body.data).toEqual({
      a: { number: i5.number },
      b: { label: i5.label, createdAt: i5.createdAt },
      c: { category: i6.category },
    });
  });

  it("reads only the columns a gateway's _entities call selects", async () => {
    const representations = ['7', '8', '999999'].map((id) => ({ __typename: 'Item', id }));
    const { response, acquired } = await t.server.measure(
      'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Item { id number label } } }',
      { representations },
    );
    expect(response.body.errors).toBeUndefined();
    expect(await lastStatementOf(acquired[0])).toBe('select "id", "number", "label" from "items" where "id" = any($1::bigint[])');
    const [i7, i8] = [await storedItem('7'), await storedItem('8')];
    expect(response.body.data).toEqual({
      _entities: [{ id: '7', number: i7.number, label: i7.label }, { id: '8', number: i8.number, label: i8.label }, null],
    });
  });
});
