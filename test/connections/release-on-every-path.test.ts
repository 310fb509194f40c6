import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/graphql/context.js';
import { poolSource } from '../../src/db/request/connection-source.js';
import { RequestFinishedError, type RequestScopeStats } from '../../src/db/request/request-scope.js';
import { useRequestScope } from '../../src/graphql/plugins/use-request-scope.js';
import { eventually, resolverFinished, resolverStarted, startTestServer, type TestServer, useTestEnvironment } from '../support/server.js';
import { leaveAtGate, markedLabels, resolverRuns } from '../support/test-schema.js';
import { W1 } from '../support/workloads.js';

const t = useTestEnvironment({ size: 2, maxOverflow: 2, statementTimeoutMs: 300 });

/** Backends of ours running pg_sleep now. */
async function sleepingBackends(): Promise<number> {
  const [row] = await t.database.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'poolgraph' and state = 'active' and query like '%pg_sleep%'",
  );
  return row?.n ?? 0;
}

/** Nothing checked out, nobody waiting, no backend of ours idle in a transaction. */
async function expectEverythingReleased() {
  const { pool } = t.server.server;
  expect(await eventually(() => pool.idleCount === pool.totalCount, 5_000)).toBe(true);
  expect(pool.waitingCount).toBe(0);
  expect((await t.database.appConnections()).idleInTransaction).toBe(0);
}

afterEach(async () => {
  await expectEverythingReleased();
  // The server still serves.
  const { body } = await t.server.graphql(W1);
  expect(body.data?.items).toHaveLength(20);
});

/** The client sees a message and a code, never SQL text or a stack. */
function expectNoLeak(response: { body: unknown }) {
  const text = JSON.stringify(response.body);
  expect(text).not.toMatch(/select|secret_sql_text|division|internal detail|\bat .*\.ts:\d+/i);
}

describe('the connection goes back to the pool on every path (I2)', () => {
  it('after a resolver error that follows SQL (masked as an unexpected error)', async () => {
    const response = await t.server.graphql('{ items(first: 1) { id } failingAfterSql }');
    expect(response.body.errors?.[0]?.message).toBe('Unexpected error.');
    expectNoLeak(response);
    expect(t.server.released.at(-1)?.connectionsTaken).toBe(1);
  });

  it('after a SQL error nobody maps (masked, no SQL text)', async () => {
    const response = await t.server.graphql('{ failingSql }');
    expect(response.body.errors?.[0]?.message).toBe('Unexpected error.');
    expectNoLeak(response);
  });

  it('after a constraint violation inside a mutation (BAD_USER_INPUT, rolled back)', async () => {
    const response = await t.server.graphql('mutation { createItem(input: { number: 1, categoryId: "424242" }) { id } }');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expectNoLeak(response);
  });

  it('after a statement timeout (STATEMENT_TIMEOUT)', async () => {
    const response = await t.server.graphql('{ sleep(seconds: 2) }');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('STATEMENT_TIMEOUT');
    expectNoLeak(response);
  });

  it('after a statement timeout inside a transaction', async () => {
    const before = await t.database.query('select id from categories where name = $1', ['written-before-sleep']);
    const response = await t.server.graphql('{ sleepInTransaction(seconds: 2) }');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('STATEMENT_TIMEOUT');
    const after = await t.database.query('select id from categories where name = $1', ['written-before-sleep']);
    expect(after).toEqual(before); // the write before the timeout was rolled back
  });

  it('after a validation error (no connection taken at all)', async () => {
    const acquired = t.server.acquired.length;
    const response = await t.server.graphql('{ items { nope } }');
    expect(response.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(t.server.acquired.length).toBe(acquired);
  });

  it('after a client disconnects mid-request', async () => {
    const released = t.server.released.length;
    const finished = resolverRuns.finished.get('waitThenSelect') ?? 0;
    const { pool } = t.server.server;
    const left = await leaveAtGate(
      'mid-request',
      (signal) => t.server.graphql('{ items(first: 1) { id } waitThenSelect(gate: "mid-request") }', undefined, { signal }),
      {
        // Abort once the request holds its connection (for items) and a resolver waits at the gate.
        ready: () => eventually(() => pool.totalCount - pool.idleCount === 1, 5_000),
        // Released while the resolver still waits: only the client's leaving can have released it,
        // as no response can be ready before the gate opens.
        whileWaiting: async () =>
          (await eventually(() => t.server.released.length > released, 5_000)) &&
          eventually(() => pool.idleCount === pool.totalCount, 5_000),
      },
    );
    expect(left).toEqual({ reached: true, ready: true, aborted: true, whileWaiting: true });
    // The statement after the gate is refused: the scope was released.
    expect(await resolverFinished('waitThenSelect', finished)).toBe(true);
    expect(t.server.released.slice(released)).toEqual([expect.objectContaining({ connectionsTaken: 1, statements: 1 })]);
  });

  it('when a client disconnects before its first statement: no connection is taken at all', async () => {
    // Through the fast path (a JSON POST) and through graphql-yoga's own handler (a GET).
    const query = '{ waitThenSelect(gate: "before-first-statement") }';
    const requests = [
      (signal: AbortSignal) => t.server.graphql(query, undefined, { signal }),
      (signal: AbortSignal) =>
        fetch(`${t.server.url}?query=${encodeURIComponent(query)}`, {
          headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' },
          signal,
        }),
    ];
    for (const send of requests) {
      const released = t.server.released.length;
      const acquired = t.server.acquired.length;
      const finished = resolverRuns.finished.get('waitThenSelect') ?? 0;
      // Released when the client left, while the resolver still waits at the gate, so the
      // statement after it is refused: had the scope stayed open until the resolver finished,
      // it would have taken a connection.
      const left = await leaveAtGate('before-first-statement', send, {
        whileWaiting: () => eventually(() => t.server.released.length > released, 5_000),
      });
      expect(left).toEqual({ reached: true, ready: true, aborted: true, whileWaiting: true });
      // Checked once the resolver has tried its statement, not after a guess at how long it takes.
      expect(await resolverFinished('waitThenSelect', finished)).toBe(true);
      expect(t.server.released.slice(released)).toEqual([expect.objectContaining({ connectionsTaken: 0, statements: 0 })]);
      expect(t.server.acquired.length).toBe(acquired);
    }
  });

  it('an operation graphql-js runs stops at its client\'s disconnect: later mutation fields never run', async () => {
    // Two operations in one document: graphql-js's executor runs it (graphql-jit would run the
    // first one compiled whatever the name), and it is the executor that stops at the abort.
    const label = `after-abort-${Date.now()}`;
    const document = `mutation Go { pause(seconds: 0.3) mark(label: "${label}") } query Other { __typename }`;
    const send = (query: string, signal?: AbortSignal) =>
      fetch(t.server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query, operationName: 'Go' }),
        ...(signal ? { signal } : {}),
      });
    const started = resolverRuns.started.get('pause') ?? 0;
    const finished = resolverRuns.finished.get('pause') ?? 0;
    const controller = new AbortController();
    const request = send(document, controller.signal);
    expect(await resolverStarted('pause', started)).toBe(true);
    controller.abort();
    await expect(request).rejects.toThrow();
    // Once pause has returned, the executor has had its chance to run mark.
    expect(await resolverFinished('pause', finished)).toBe(true);
    expect(markedLabels).not.toContain(label);

    // The same document, not aborted, runs both fields: the mark above was skipped, not broken.
    const response = await send(document.replace(label, `${label}-kept`));
    expect(await response.json()).toEqual({ data: { pause: true, mark: true } });
    expect(markedLabels).toContain(`${label}-kept`);
  });

  it('after a client disconnects in the middle of a transaction', async () => {
    // Release waits for an open transaction to finish, so here the client's leaving and the
    // response end at about the same time: this shows that nothing hangs and no backend is left
    // idle in a transaction, not which of the two released the connection.
    const released = t.server.released.length;
    const controller = new AbortController();
    const request = t.server.graphql('{ sleepInTransaction(seconds: 0.2) }', undefined, { signal: controller.signal });
    // Abort once PostgreSQL runs the sleep, inside the transaction.
    expect(await eventually(async () => (await sleepingBackends()) === 1, 5_000)).toBe(true);
    controller.abort();
    await expect(request).rejects.toThrow();
    expect(await eventually(() => t.server.released.length > released, 5_000)).toBe(true);
  });

  it('after a commit that PostgreSQL turned into a rollback, without touching the next transaction', async () => {
    const response = await t.server.graphql(`{
      a: failingCommit
      b: writeInTransaction(name: "kept-after-failed-commit")
      c: writeInTransaction(name: "rolled-back-after-failed-commit", thenFail: true)
    }`);
    expect(response.body.errors?.map((error) => error.path).sort()).toEqual([['a'], ['c']]);
    expect(response.body.data).toEqual({ a: null, b: true, c: null });
    // Neither b nor c was cut in two by a stray ROLLBACK meant for a: b's write is there, and c's
    // write, made in a transaction that then failed, is not.
    const names = await t.database.query<{ name: string }>(
      "select name from categories where name like '%-after-failed-commit' order by name",
    );
    expect(names).toEqual([{ name: 'kept-after-failed-commit' }]);
  });
});

describe('a client that gives up while its mutation waits for a connection', () => {
  let small: TestServer;

  beforeAll(async () => {
    small = await startTestServer(t.database.url, { size: 1, maxOverflow: 0, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await small?.close();
  });

  it('leaves no connection inside a transaction', async () => {
    const { pool } = small.server;
    const holder = small.graphql('{ sleep(seconds: 0.4) }');
    expect(await eventually(() => pool.totalCount === 1 && pool.idleCount === 0, 5_000)).toBe(true);

    // BEGIN waits for the pool; the client aborts meanwhile, so the release starts mid-BEGIN.
    const controller = new AbortController();
    const mutation = small.graphql('mutation { createItem(input: { number: 31337 }) { id } }', undefined, {
      signal: controller.signal,
    });
    expect(await eventually(() => pool.waitingCount === 1, 5_000)).toBe(true);
    controller.abort();
    await expect(mutation).rejects.toThrow();
    expect((await holder).body.data).toEqual({ sleep: true });

    expect(await eventually(() => small.released.length === 2 && pool.idleCount === pool.totalCount, 5_000)).toBe(true);
    expect((await t.database.appConnections()).idleInTransaction).toBe(0);
    // The connection the next request gets is not inside anyone's transaction.
    const { body } = await small.graphql('{ failingSql }');
    expect(body.errors?.[0]?.message).toBe('Unexpected error.');
    const after = await small.graphql('{ items(first: 1) { id } }');
    expect(after.body.errors).toBeUndefined();
  });
});

describe('a GraphQL context built after its client left', () => {
  it('gets a scope that is released at once: its statements are refused and no connection is taken', async () => {
    // The plugin on its own, on a pool of its own: the abort comes before the context is built,
    // which a real request reaches within microseconds of arriving.
    const pool = new pg.Pool({ connectionString: t.database.url, max: 1 });
    try {
      const released: RequestScopeStats[] = [];
      const plugin = useRequestScope({
        connections: poolSource(pool),
        poolTimeoutMs: 1_000,
        logger: pino({ level: 'silent' }),
        onScopeReleased: (stats) => released.push(stats),
      });
      const request = new Request('http://127.0.0.1/graphql', { method: 'POST' });
      plugin.lifecycle.requestAborted?.(request);

      let extension: Partial<RequestContext> = {};
      const building = {
        context: { request },
        extendContext: (added: Partial<RequestContext>) => {
          extension = { ...extension, ...added };
        },
      };
      await plugin.onContextBuilding?.(building as unknown as Parameters<NonNullable<typeof plugin.onContextBuilding>>[0]);
      expect(await eventually(() => released.length === 1, 5_000)).toBe(true);
      await expect(extension.db?.selectFrom('items').select('id').execute()).rejects.toBeInstanceOf(RequestFinishedError);
      expect(released).toEqual([expect.objectContaining({ connectionsTaken: 0, statements: 0 })]);
      expect(pool.totalCount).toBe(0);
    } finally {
      await pool.end();
    }
  });
});
