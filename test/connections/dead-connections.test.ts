import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import { PRE_PING_AFTER_IDLE_MS } from '../../src/db/request/request-connection.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';
import { closeGate } from '../support/test-schema.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { W1 } from '../support/workloads.js';

let database: TestDatabase;
let proxy: TcpProxy;
let server: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  proxy = await startTcpProxy(Number(new URL(database.url).port));
  // A vanished server never answers: the client-side query_timeout (statement timeout + 1 s) ends
  // the wait, so keep the statement timeout short here.
  server = await startTestServer(proxy.url(database.url), { size: 1, maxOverflow: 1, timeoutMs: 2_000, statementTimeoutMs: 1_000 });
});

afterAll(async () => {
  await server?.close();
  await proxy?.close();
  await database?.drop();
});

/** How many statements of the app run `pg_sleep` right now, as PostgreSQL sees it. */
async function sleepsRunning(): Promise<number> {
  const [row] = await database.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and application_name = $1 and state = 'active' and query like '%pg_sleep%'`,
    [APPLICATION_NAME],
  );
  return row?.n ?? 0;
}

/** Opens a pooled connection through the proxy, then has the network drop it unnoticed. */
async function poolHoldsADeadConnection() {
  const warm = await server.graphql(W1);
  expect(warm.body.data?.items).toHaveLength(20);
  const { pool } = server.server;
  expect(pool.idleCount).toBeGreaterThan(0);
  proxy.breakConnectionsSilently();
  // The pool cannot tell: its idle connection still looks fine.
  expect(pool.idleCount).toBeGreaterThan(0);
}

describe('a pooled connection that died unnoticed', () => {
  it('is replaced when a read-only request finds it dead at its first statement', async () => {
    await poolHoldsADeadConnection();
    const released = server.released.length;
    const { body } = await server.graphql(W1);
    expect(body.errors).toBeUndefined();
    expect(body.data?.items).toHaveLength(20);
    expect(server.released.slice(released)).toEqual([
      expect.objectContaining({ retried: true, connectionsTaken: 2, statements: 2 }),
    ]);
  });

  it('is replaced when a mutation finds it dead at the ping before its write, and the item is written once', async () => {
    await poolHoldsADeadConnection();
    // A write on a connection idle this long is preceded by a ping, which may be retried. (A
    // wait for a condition that is a time, not for an event: it cannot end too early.)
    await new Promise((resolve) => setTimeout(resolve, PRE_PING_AFTER_IDLE_MS));
    const released = server.released.length;
    const { body } = await server.graphql('mutation { createItem(input: { number: 4711, label: "once" }) { id } }');
    expect(body.errors).toBeUndefined();
    expect(server.released.slice(released)).toEqual([expect.objectContaining({ retried: true, connectionsTaken: 2 })]);
    expect(await database.query('select id from items where label = $1', ['once'])).toHaveLength(1);
  });

  it('fails a write it cannot retry with writeOutcome UNKNOWN, and nothing is written twice', async () => {
    // Used a moment ago: no ping, so the INSERT itself meets the dead connection. It may have
    // reached the server before the connection died, so it is never sent again.
    await poolHoldsADeadConnection();
    const released = server.released.length;
    const { status, body } = await server.graphql('mutation { createItem(input: { number: 4712, label: "unknown" }) { id } }');
    expect(status).toBe(503);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'DATABASE_UNAVAILABLE', writeOutcome: 'UNKNOWN' });
    expect(server.released.slice(released)).toEqual([expect.objectContaining({ retried: false, destroyed: true })]);
    expect((await database.query('select id from items where label = $1', ['unknown'])).length).toBeLessThanOrEqual(1);
    expect((await server.graphql(W1)).body.data?.items).toHaveLength(20);
  });

  it('fails a request with DATABASE_UNAVAILABLE when the connection dies after its first statement', async () => {
    const released = server.released.length;
    // The sleep stays under the statement timeout (1 s), so only the broken connection ends it.
    const running = server.graphql('{ items(first: 1) { id } sleep(seconds: 0.9) }');
    const { pool } = server.server;
    // PostgreSQL runs the sleep: the request's items were answered and the sleep was sent. The
    // connection breaks while its answer is still to come.
    expect(await eventually(async () => (await sleepsRunning()) === 1)).toBe(true);
    expect(pool.totalCount - pool.idleCount).toBe(1);
    proxy.breakConnectionsSilently();
    const { body } = await running;
    // The sleep was already sent when the connection vanished: no retry, a clear error.
    expect(body.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    expect(server.released.slice(released)).toEqual([expect.objectContaining({ retried: false, destroyed: true })]);
    const after = await server.graphql(W1);
    expect(after.body.data?.items).toHaveLength(20);
  });

  it('says the outcome of a write is unknown when the connection dies during its COMMIT', async () => {
    const gate = closeGate('before-commit');
    const running = server.graphql('{ writeThenWaitBeforeCommit(name: "maybe-saved", gate: "before-commit") }');
    try {
      // The INSERT ran and the transaction waits for its COMMIT.
      expect(await gate.reached()).toBe(true);
      proxy.breakConnectionsSilently();
    } finally {
      gate.open();
    }
    const { status, body } = await running;
    expect(status).toBe(503);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'DATABASE_UNAVAILABLE', writeOutcome: 'UNKNOWN' });
    expect(body.errors?.[0]?.message).toMatch(/may or may not have been saved/);
    // Here the COMMIT never reached the server, so nothing was saved; the client could not know.
    expect(await database.query('select id from categories where name = $1', ['maybe-saved'])).toEqual([]);
    expect((await server.graphql(W1)).body.data?.items).toHaveLength(20);
  });
});
