import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { useTestEnvironment } from '../support/server.js';
import pg from 'pg';
import { W1, W2 } from '../support/workloads.js';

const W4 = 'mutation { createItem(input: { number: 7, label: "x", categoryId: "1" }) { id } }';

/**
 * DATABASE_POOLER=transaction, on PostgreSQL directly: what the server sends (counted by the
 * request scope, and by PostgreSQL's pg_stat_statements) and that it means what it should — timeouts set per transaction, an operation
 * of several statements in one transaction, a failed write that leaves the others standing.
 * Through a real PgBouncer: test/topology/pgbouncer.test.ts.
 */
const t = useTestEnvironment({ pooler: 'transaction', statementTimeoutMs: 500, size: 1, maxOverflow: 1 });
const postgres = usePostgresStatements(() => t.database);

describe('behind a transaction pooler (DATABASE_POOLER=transaction)', () => {
  it('runs a one-statement operation without BEGIN/COMMIT', async () => {
    const w1 = await t.server.measure(W1);
    expect(w1.response.body.errors).toBeUndefined();
    expect(w1.stats?.statements).toBe(1);
    const w4 = await t.server.measure(W4);
    expect(w4.response.body.errors).toBeUndefined();
    expect(w4.stats?.statements).toBe(1);
    // The counts come with the categories statement: one statement, no transaction.
    const counted = await t.server.measure('{ categories(first: 3) { name itemCount } }');
    expect(counted.response.body.errors).toBeUndefined();
    expect(counted.stats?.statements).toBe(1);
    // A single category's count is a statement of its own: three, in one transaction, whose
    // BEGIN goes with the first of them (three round trips and the COMMIT).
    const single = await t.server.measure('{ categories(first: 1) { name } category(id: "2") { itemCount } }');
    expect(single.response.body.errors).toBeUndefined();
    expect(single.stats?.statements).toBe(4);
  });

  it('runs the statements of a nested operation in one transaction: BEGIN with the first of its two statements, COMMIT', async () => {
    const { response, stats } = await t.server.measure(W2);
    expect(response.body.errors).toBeUndefined();
    expect(stats?.statements).toBe(3);
    expect(await t.database.appConnections()).toMatchObject({ idleInTransaction: 0 });
  });

  it('sends PostgreSQL what the scope counts: SET LOCAL with a lone statement, BEGIN and COMMIT around several', async (context) => {
    // The scope counts a round trip as one statement; PostgreSQL counts each statement in it:
    // `SET LOCAL statement_timeout` travels with a lone statement (and, for a write, the open
    // mode's `SET LOCAL poolgraph.open_writes`), and BEGIN with two SET LOCALs with the first.
    const cases = [
      ['W1', W1, { begin: 0, setLocal: 1, data: 1, commit: 0, rollback: 0 }],
      ['W4', W4, { begin: 0, setLocal: 2, data: 1, commit: 0, rollback: 0 }],
      ['W2', W2, { begin: 1, setLocal: 2, data: 2, commit: 1, rollback: 0 }],
      [
        'a list and a single count',
        '{ categories(first: 1) { name } category(id: "2") { itemCount } }',
        { begin: 1, setLocal: 2, data: 3, commit: 1, rollback: 0 },
      ],
    ] as const;
    for (const [name, query, expected] of cases) {
      const { result, seen } = await postgres.during(context, () => t.server.measure(query));
      expect(result.response.body.errors, name).toBeUndefined();
      expect(seen.byKind, `${name}, statements PostgreSQL ran:\n${seen.listing}`).toEqual(expected);
      // The scope's count: one per round trip (BEGIN and its SET LOCALs go with the first statement,
      // SET LOCAL with a lone one).
      expect(result.stats?.statements, name).toBe(expected.data + expected.commit);
    }
  });

  it('cuts off a long statement of a multi-statement operation with STATEMENT_TIMEOUT (SET LOCAL in its transaction)', async () => {
    const started = Date.now();
    const { body } = await t.server.graphql('{ items(first: 1) { id } sleep(seconds: 3) }');
    expect(body.errors?.[0]?.extensions?.code).toBe('STATEMENT_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(500 + 1_000);
    expect((await t.server.graphql(W1)).body.data?.items).toHaveLength(20);
  });

  it('cuts off a one-statement write blocked by a lock with STATEMENT_TIMEOUT (SET LOCAL in the same round trip)', async () => {
    const locker = new pg.Client({ connectionString: t.database.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table items in access exclusive mode');
      const started = Date.now();
      const { response, stats } = await t.server.measure(
        'mutation { createItem(input: { number: 8, label: "blocked-by-lock" }) { id } }',
      );
      const elapsed = Date.now() - started;
      expect(response.body.errors?.[0]?.extensions?.code).toBe('STATEMENT_TIMEOUT');
      expect(elapsed).toBeLessThan(500 + 1_000);
      // The SET LOCAL travels with the INSERT, no BEGIN/COMMIT (plus a ping before the write,
      // since this connection sat idle for a while).
      expect(stats?.statements).toBeLessThanOrEqual(2);
    } finally {
      await locker.query('rollback');
      await locker.end();
    }
    expect(await t.database.query('select id from items where label = $1', ['blocked-by-lock'])).toEqual([]);
    expect((await t.server.graphql(W1)).body.data?.items).toHaveLength(20);
  });

  it('keeps a write that succeeded when a later write of the same mutation fails (a savepoint per write)', async () => {
    const { body } = await t.server.graphql(`mutation {
      ok: createItem(input: { number: 11, label: "kept-behind-pooler" }) { id category { id } }
      bad: createItem(input: { number: 12, categoryId: "999999" }) { id }
    }`);
    expect(body.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    const kept = await t.database.query('select id from items where label = $1', ['kept-behind-pooler']);
    expect(kept).toHaveLength(1);
    expect(await t.database.appConnections()).toMatchObject({ idleInTransaction: 0 });
  });
});
