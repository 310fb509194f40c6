import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { poolSource } from '../../src/db/request/connection-source.js';
import { RequestScope } from '../../src/db/request/request-scope.js';
import { useTestEnvironment } from '../support/server.js';

const t = useTestEnvironment();

const countItems = async () =>
  (await t.database.query<{ count: number }>('select count(*)::int as count from items'))[0]?.count;

describe('writes (I5)', () => {
  it('creates an item in one statement and reads its own write in the same operation', async () => {
    const { response, stats } = await t.server.measure(`mutation {
      createItem(input: { number: 7, label: "x", categoryId: "1" }) {
        id number label category { name itemCount items(first: 100) { id } }
      }
    }`);
    expect(response.body.errors).toBeUndefined();
    const created = (response.body.data as {
      createItem: { id: string; number: number; label: string; category: { name: string; itemCount: number; items: { id: string }[] } };
    }).createItem;
    expect(created).toMatchObject({ number: 7, label: 'x', category: { name: 'category-1', itemCount: 31 } });
    expect(created.category.items.map((item) => item.id)).toContain(created.id);
    // The INSERT (atomic on its own: no BEGIN/COMMIT), then the selection set's loads.
    expect(stats?.statements).toBeGreaterThanOrEqual(2);
    expect(stats?.connectionsTaken).toBe(1);
    const rows = await t.database.query('select number, label, category_id from items where id = $1', [created.id]);
    expect(rows).toEqual([{ number: 7, label: 'x', category_id: '1' }]);
  });

  it('rejects an unknown categoryId with BAD_USER_INPUT and writes nothing', async () => {
    const before = await countItems();
    const { body } = await t.server.graphql('mutation { createItem(input: { number: 1, categoryId: "999999" }) { id } }');
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(body.errors?.[0]?.message).toContain('categoryId');
    expect(body.errors?.[0]?.message).not.toMatch(/foreign key|constraint|violates/i);
    expect(await countItems()).toBe(before);
  });

  it('keeps the fields that succeeded when a later field of the same mutation fails', async () => {
    const before = await countItems();
    const { body } = await t.server.graphql(`mutation {
      ok: createItem(input: { number: 11 }) { id label category { id } }
      bad: createItem(input: { number: 12, categoryId: "999999" }) { id }
    }`);
    expect(body.data).toBeNull(); // `bad` is non-null, so the error nulls the whole result ...
    expect(body.errors?.[0]?.path).toEqual(['bad']);
    // ... but `ok` ran in its own transaction and committed; `bad` left no row.
    expect(await countItems()).toBe((before ?? 0) + 1);
    const rows = await t.database.query('select number from items where number in (11, 12) and label = $1', ['']);
    expect(rows).toEqual([{ number: 11 }]);
  });

  it('updates an item, moving it between categories, and sees the change at once', async () => {
    const { body } = await t.server.graphql(`mutation {
      updateItem(id: "2", input: { number: 2002, label: "moved", categoryId: "2" }) {
        number label category { name itemCount }
      }
    }`);
    expect(body.errors).toBeUndefined();
    expect(body.data?.updateItem).toEqual({ number: 2002, label: 'moved', category: { name: 'category-2', itemCount: 31 } });

    const cleared = await t.server.graphql('mutation { updateItem(id: "2", input: { categoryId: null }) { category { id } number } }');
    expect(cleared.body.data?.updateItem).toEqual({ category: null, number: 2002 });
  });

  it('reports an unknown item to update as NOT_FOUND and a null number as BAD_USER_INPUT', async () => {
    const missing = await t.server.graphql('mutation { updateItem(id: "987654", input: { number: 1 }) { id } }');
    expect(missing.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    const nullNumber = await t.server.graphql('mutation { updateItem(id: "3", input: { number: null }) { id } }');
    expect(nullNumber.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const badCategory = await t.server.graphql('mutation { updateItem(id: "3", input: { categoryId: "777777" }) { id } }');
    expect(badCategory.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await t.database.query('select category_id from items where id = 3')).toEqual([{ category_id: '1' }]);
  });

  it('deletes an item: true once, then false, and reads no longer find it', async () => {
    const { body } = await t.server.graphql(`mutation {
      first: deleteItem(id: "4")
      second: deleteItem(id: "4")
    }`);
    expect(body.data).toEqual({ first: true, second: false });
    const read = await t.server.graphql('{ item(id: "4") { id } }');
    expect(read.body.data?.item).toBeNull();
  });

  it('rejects a label with a NUL character as BAD_USER_INPUT', async () => {
    const { body } = await t.server.graphql('mutation($label: String) { createItem(input: { number: 1, label: $label }) { id } }', {
      label: 'a\u0000b',
    });
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('runs two transactions of one request one after the other on its one connection', async () => {
    const scope = new RequestScope(poolSource(t.server.server.pool), { poolTimeoutMs: 10_000 });
    const labels = ['scope-trx-a', 'scope-trx-b'];
    try {
      // Started in the same tick: each BEGIN waits for the other's COMMIT (one connection).
      const pids = await Promise.all(
        labels.map((label) =>
          scope.db.transaction().execute(async (trx) => {
            await trx.insertInto('items').values({ number: 1, label }).execute();
            const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
            return rows[0]!.pid;
          }),
        ),
      );
      expect(new Set(pids).size).toBe(1);
    } finally {
      await scope.release();
    }
    // BEGIN, INSERT, SELECT, COMMIT twice; back to the pool, not destroyed.
    expect(scope.stats).toMatchObject({ connectionsTaken: 1, statements: 8, destroyed: false });
    const rows = await t.database.query<{ count: number }>('select count(*)::int as count from items where label = any($1)', [labels]);
    expect(rows[0]?.count).toBe(2);
    await t.database.query('delete from items where label = any($1)', [labels]);
  });

  it('refuses a savepoint in a controlled transaction instead of skipping it, and the connection goes back clean', async () => {
    const scope = new RequestScope(poolSource(t.server.server.pool), { poolTimeoutMs: 10_000 });
    try {
      const trx = await scope.db.startTransaction().execute();
      await expect(trx.savepoint('before_write').execute()).rejects.toThrow('The `savepoint` method is not supported by this driver');
      await trx.rollback().execute();
    } finally {
      await scope.release();
    }
    expect(scope.stats).toMatchObject({ connectionsTaken: 1, statements: 2, destroyed: false });
  });
});
