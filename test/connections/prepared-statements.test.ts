import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startTestServer, useTestEnvironment } from '../support/server.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';
import { W1, W2, W3 } from '../support/workloads.js';

/**
 * The server's statements are named prepared statements on its own pools (src/db/request/prepared-statements.ts):
 * parsed and planned once per connection, then only bound and executed. Read back from
 * PostgreSQL's `pg_prepared_statements` on the pool's one connection (size 1, no overflow, so
 * every request ran on it).
 */
const t = useTestEnvironment({ size: 1, maxOverflow: 0 });

interface Prepared {
  name: string;
  statement: string;
  runs: number;
}

/** The prepared statements of the session behind `pool`'s one connection. */
async function preparedOn(pool: pg.Pool): Promise<Prepared[]> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<Prepared>(
      'select name, statement, (generic_plans + custom_plans)::int as runs from pg_prepared_statements order by prepare_time',
    );
    return rows;
  } finally {
    client.release();
  }
}

describe('prepared statements', () => {
  it('parses each statement once per connection and runs it again without parsing', async () => {
    const before = await preparedOn(t.server.server.pool);
    for (let i = 0; i < 5; i++) expect((await t.server.graphql(W1)).body.errors).toBeUndefined();
    for (let i = 0; i < 3; i++) expect((await t.server.graphql(W2)).body.errors).toBeUndefined();
    // A statement of the host's own (a schema extension's, through `db`) runs unnamed.
    expect((await t.server.graphql('{ sleep(seconds: 0) }')).body.errors).toBeUndefined();
    const after = await preparedOn(t.server.server.pool);

    const added = after.filter((statement) => !before.some((seen) => seen.name === statement.name));
    // W1's statement and W2's two, each prepared once and run as many times as requests ran it;
    // nothing else.
    expect(added.map((statement) => statement.runs)).toEqual([5, 3, 3]);
    expect(added[0]?.statement).toBe('select "number" from "items" order by "id" limit $1');
    expect(added[1]?.statement).toMatch(/^select "id", "name", \(select count\(\*\)::int from items/);
    expect(added[2]?.statement).toMatch(/^\s*select \(k\.ordinality - 1\)::int as key_index/);
    for (const statement of added) expect(statement.name).toMatch(/^poolgraph_\d+$/);
  });

  it("prepares the callers' set_config once too: each token's claims are only bound", async () => {
    const server = await startTestServer(t.database.url, { size: 1, maxOverflow: 0 }, { auth: { tokens: TEST_TOKENS } });
    try {
      const before = await preparedOn(server.server.pool);
      for (const caller of ['ann', 'ben', 'cat', 'dan', 'eve']) {
        const response = await server.graphql(W1, undefined, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', ...bearer(await tokenFor(caller)) },
          body: JSON.stringify({ query: W1 }),
        });
        expect(response.body.errors).toBeUndefined();
      }
      const added = (await preparedOn(server.server.pool)).filter((statement) => !before.some((seen) => seen.name === statement.name));
      expect(added.map(({ name, runs }) => ({ name, runs }))).toEqual([
        { name: 'poolgraph_set_claims', runs: 5 },
        { name: expect.stringMatching(/^poolgraph_\d+$/), runs: 5 },
      ]);
    } finally {
      await server.close();
    }
  });

  it('keeps answering when a column is added to the tables while it runs', async () => {
    // A migration of the next release, applied while this one serves: the prepared statements
    // name their columns, so their result type does not change ("cached plan must not change
    // result type" would fail every later run of a `select *`).
    const W4 = 'mutation { createItem(input: { number: 7, label: "x", categoryId: "1" }) { id number label category { name } } }';
    const queries = [W1, W2, W3, '{ item(id: "1") { id number label createdAt category { id name } } }'];
    expect((await t.server.graphql(W4)).body.errors).toBeUndefined();
    const answers = await Promise.all(queries.map((query) => t.server.graphql(query)));
    await t.database.query('alter table items add column added_later text');
    await t.database.query('alter table categories add column added_later text');
    try {
      for (const [index, query] of queries.entries()) {
        expect((await t.server.graphql(query)).body, query).toEqual(answers[index]?.body);
      }
      const write = await t.server.graphql(W4);
      expect(write.body.errors).toBeUndefined();
      expect(write.body.data?.createItem).toMatchObject({ number: 7, label: 'x', category: { name: 'category-1' } });
    } finally {
      await t.database.query('alter table items drop column added_later');
      await t.database.query('alter table categories drop column added_later');
    }
  });

  it('prepares nothing behind a transaction pooler, which may run each statement on another backend', async () => {
    const server = await startTestServer(t.database.url, { size: 1, maxOverflow: 0, pooler: 'transaction' });
    try {
      expect((await server.graphql(W1)).body.errors).toBeUndefined();
      expect((await server.graphql(W2)).body.errors).toBeUndefined();
      expect(await preparedOn(server.server.pool)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('answers through a column type change that makes its prepared statements stale, and replaces the connection', async () => {
    const before = await t.server.measure(W1);
    expect(before.response.body.errors).toBeUndefined();
    const [pid] = before.acquired;
    // PostgreSQL refuses the prepared W1 statement from now on ("cached plan must not change
    // result type", 0A000): it did not run, so it runs again unnamed, and the connection, whose
    // record of its prepared statements is wrong, is not pooled again.
    await t.database.query('alter table items alter column number type bigint');
    try {
      const stale = await t.server.measure(W1);
      expect(stale.response.body).toEqual(before.response.body);
      expect(stale.acquired).toEqual([pid]);
      expect(stale.stats).toMatchObject({ statements: 2, destroyed: true });
      const next = await t.server.measure(W1);
      expect(next.response.body).toEqual(before.response.body);
      expect(next.acquired).toHaveLength(1);
      expect(next.acquired[0]).not.toBe(pid);
    } finally {
      await t.database.query('alter table items alter column number type integer');
    }
  });
});
