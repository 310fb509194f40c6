import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/app.js';
import { APP_ROLE as SERVER_ROLE, ensureAppLogin } from '../../src/db/setup/app-role.js';
import type { RequestScopeStats } from '../../src/db/request/request-scope.js';
import { createDrainableHttpServer } from '../../src/http/http-server.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { seed } from '../../src/db/setup/seed.js';
import {
  APP_ROLE,
  endpointUrl,
  freePort,
  freePorts,
  type PoolgraphInstance,
  type PostgresReplica,
  type PostgresServer,
  startPoolgraph,
  startPostgres,
  startReplica,
} from '../support/cluster.js';
import { type Metrics, scrape } from '../support/metrics.js';
import { TEST_POOL } from '../support/server.js';
import { testSchemaExtension } from '../support/test-schema.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';

/**
 * Issue 10, test 4: a real poolgraph process (`src/main.ts`) with `DATABASE_URL` on a PostgreSQL
 * primary and `DATABASE_REPLICA_URL` on its streaming hot standby (Debian's binaries, the newest
 * installed major version, tools/cluster).
 * Where a statement ran is read from each server's `pg_stat_statements`, counting the app role's
 * statements only.
 */

const POOL_TIMEOUT_MS = 2_000;
/** What the issue allows a read while the replica is down. */
const READ_BOUND_MS = POOL_TIMEOUT_MS + 1_000;
/**
 * Longest from a restarted replica running again to a read answered by it: the router probes a
 * down replica every second (connect and `select 1`, each bounded by 1 s), and one probe that
 * succeeds sends reads back. The README quotes this bound.
 */
const BACK_ON_REPLICA_BOUND_MS = 3_000;
const SEED = { categories: 10, itemsPerCategory: 30 };
const W1 = '{ items { number } }';
const W1_NUMBERS = Array.from({ length: 20 }, (_, index) => index + 1);
/** `poolgraph_app`'s password on this file's primary, and so on its replica (127.0.0.1 only). */
const SERVER_ROLE_PASSWORD = 'poolgraph-app-on-the-replica';
const FALLBACK_LINE = 'read replica unavailable: reads go to the primary';
const BACK_LINE = 'read replica answers again: reads go back to it';

let primary: PostgresServer | undefined;
let replica: PostgresReplica | undefined;
let server: PoolgraphInstance | undefined;
const logLines: { msg?: string; level?: number; time?: number; [key: string]: unknown }[] = [];

beforeAll(async () => {
  const [primaryPort, replicaPort, serverPort] = await freePorts(3);
  if (primaryPort === undefined || replicaPort === undefined || serverPort === undefined) throw new Error('no ports');
  primary = await startPostgres({ port: primaryPort });
  replica = await startReplica({ primary, port: replicaPort });
  // The role row-level security binds, made on the primary before the migrations (so that
  // migration 0002 grants it what the API does); it reaches the replica as every catalog change does.
  await ensureAppLogin(primary.superuserUrl, SERVER_ROLE_PASSWORD);
  await migrateToLatest(primary.url);
  await withOneConnection(primary.url, (db) => seed(db, SEED));
  await replica.waitForReplay();
  server = await startPoolgraph({
    port: serverPort,
    env: {
      DATABASE_URL: primary.url,
      DATABASE_REPLICA_URL: replica.url,
      POOL_SIZE: '2',
      POOL_MAX_OVERFLOW: '3',
      POOL_TIMEOUT_MS: String(POOL_TIMEOUT_MS),
      LOG_LEVEL: 'info',
    },
    onLine(line) {
      if (!line.startsWith('{')) return;
      try {
        logLines.push(JSON.parse(line) as (typeof logLines)[number]);
      } catch {
        // A line cut short by the process ending: nothing to learn from it.
      }
    },
  });
});

afterAll(async () => {
  // Each by its PID, each even if another failed to stop.
  try {
    await server?.stop();
  } finally {
    try {
      await replica?.destroy();
    } finally {
      await primary?.destroy();
    }
  }
});

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start`);
  return value;
}

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
  ms: number;
  endedAt: number;
}

/** POSTs one operation to the server, bounded in time. */
async function graphql(query: string, variables?: Record<string, unknown>): Promise<Answer> {
  const begun = performance.now();
  const response = await fetch(started(server, 'poolgraph').graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(READ_BOUND_MS + 5_000),
  });
  const body = (await response.json()) as Answer['body'];
  const endedAt = performance.now();
  return { status: response.status, body, ms: endedAt - begun, endedAt };
}

/** The app role's calls of statements whose text matches `pattern` (ILIKE), on `on`. */
async function appCalls(on: PostgresServer, pattern = '%'): Promise<number> {
  const [row] = await on.query<{ calls: number }>(
    `select coalesce(sum(calls), 0)::int as calls from pg_stat_statements
     where userid = (select oid from pg_roles where rolname = $1) and query ilike $2`,
    [APP_ROLE, pattern],
  );
  return row?.calls ?? 0;
}

const ITEMS = '%from "items"%';

async function resetStatements(...servers: PostgresServer[]): Promise<void> {
  for (const on of servers) await on.query('select pg_stat_statements_reset()');
}

function metrics(): Promise<Metrics> {
  return scrape(`${started(server, 'poolgraph').origin}/metrics`);
}

function fallbacks(from: Metrics): number {
  return from.samples
    .filter((sample) => sample.name === 'poolgraph_replica_fallbacks_total')
    .reduce((sum, sample) => sum + sample.value, 0);
}

function linesSaying(msg: string): number {
  return logLines.filter((line) => line.msg === msg).length;
}

function expectW1(answer: Answer): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(answer.body.errors).toBeUndefined();
  expect((answer.body.data?.items as { number: number }[] | undefined)?.map((item) => item.number)).toEqual(W1_NUMBERS);
}

describe('read replica (DATABASE_REPLICA_URL)', () => {
  it('runs query operations on the replica and mutations, with their selection sets, on the primary', async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    await resetStatements(p, r);
    for (let n = 0; n < 5; n++) expectW1(await graphql(W1));
    const reads = { replica: await appCalls(r, ITEMS), primary: await appCalls(p, ITEMS) };

    await resetStatements(p, r);
    const created = await graphql(
      'mutation ($input: CreateItemInput!) { createItem(input: $input) { id label category { id name itemCount } } }',
      { input: { number: 4242, label: 'written on the primary', categoryId: '3' } },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body.errors).toBeUndefined();
    const writes = {
      primaryInserts: await appCalls(p, 'insert into "items"%'),
      primaryCategoryReads: await appCalls(p, '%from "categories"%'),
      replicaAll: await appCalls(r),
    };
    console.log(
      `[read-replica] statements: 5 reads -> replica ${reads.replica}, primary ${reads.primary}; ` +
        `createItem -> primary ${writes.primaryInserts} insert(s) and ${writes.primaryCategoryReads} category read(s), replica ${writes.replicaAll} statement(s)`,
    );
    expect(reads).toEqual({ replica: 5, primary: 0 });
    expect(writes.primaryInserts).toBe(1);
    expect(writes.primaryCategoryReads).toBeGreaterThanOrEqual(1);
    expect(writes.replicaAll).toBe(0);

    // Both pools are in /metrics, told apart by their label.
    const exposition = await metrics();
    expect(exposition.value('poolgraph_pool_max', { pool: 'primary' })).toBe(5);
    expect(exposition.value('poolgraph_pool_max', { pool: 'replica' })).toBe(5);
    expect(exposition.value('poolgraph_pool_connections_opened_total', { pool: 'replica' })).toBeGreaterThanOrEqual(1);
    expect(exposition.value('poolgraph_replica_up')).toBe(1);
  });

  it("a mutation reads its own writes (primary); another request's read may lag until the replica replays", async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    // Freeze the replica where it is: what the primary writes now, it does not show yet.
    await r.query('select pg_wal_replay_pause()');
    let paused = true;
    try {
      const created = await graphql(
        'mutation ($input: CreateItemInput!) { createItem(input: $input) { id category { itemCount items(first: 100) { id label } } } }',
        { input: { number: 777, label: 'read your writes', categoryId: '5' } },
      );
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      const item = created.body.data?.createItem as { id: string; category: { itemCount: number; items: { id: string }[] } };
      // The selection set ran on the primary, after the insert: it sees the new row.
      expect(item.category.items.map((row) => row.id)).toContain(item.id);
      expect(item.category.itemCount).toBe(SEED.itemsPerCategory + 1);

      // A query is another request, on the replica, which has not replayed the insert.
      const before = await graphql('query ($id: ID!) { item(id: $id) { id } category(id: "5") { itemCount } }', { id: item.id });
      expect(before.body.data).toEqual({ item: null, category: { itemCount: SEED.itemsPerCategory } });

      await r.query('select pg_wal_replay_resume()');
      paused = false;
      await r.waitForReplay();
      const after = await graphql('query ($id: ID!) { item(id: $id) { id } category(id: "5") { itemCount } }', { id: item.id });
      expect(after.body.data).toEqual({ item: { id: item.id }, category: { itemCount: SEED.itemsPerCategory + 1 } });
    } finally {
      if (paused) await r.query('select pg_wal_replay_resume()');
    }
  });

  it(
    'with the replica stopped, reads answer from the primary within POOL_TIMEOUT_MS + 1 s; they go back once it runs again',
    async () => {
      const p = started(primary, 'primary');
      const r = started(replica, 'replica');
      const readyAt = `${started(server, 'poolgraph').origin}/ready`;
      const metricsBefore = await metrics();
      const linesBefore = { down: linesSaying(FALLBACK_LINE), back: linesSaying(BACK_LINE) };
      await resetStatements(p);

      // Reads one after the other from the moment the replica is told to stop; after each, the
      // primary's pg_stat_statements says whether that read ran there.
      const stopAt = performance.now();
      const stopping = r.stop();
      let stopped = false;
      let stoppedAt = Number.NaN;
      void stopping.then(() => {
        stopped = true;
        stoppedAt = performance.now();
      });
      const reads: (Answer & { onPrimary: boolean })[] = [];
      let onPrimarySoFar = 0;
      const deadline = stopAt + 60_000;
      for (let n = 0; n < 400 && performance.now() < deadline; n++) {
        const answer = await graphql(W1);
        const onPrimaryNow = await appCalls(p, ITEMS);
        reads.push({ ...answer, onPrimary: onPrimaryNow > onPrimarySoFar });
        onPrimarySoFar = onPrimaryNow;
        if (stopped && reads.filter((read) => read.onPrimary).length >= 10) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await stopping;
      const firstOnPrimary = reads.find((read) => read.onPrimary);
      const failoverMs = firstOnPrimary ? firstOnPrimary.endedAt - stopAt : Number.NaN;
      const slowest = Math.max(...reads.map((read) => read.ms));

      for (const read of reads) expectW1(read);
      expect(slowest).toBeLessThanOrEqual(READ_BOUND_MS);
      expect(firstOnPrimary).toBeDefined();
      expect(reads.filter((read) => read.onPrimary).length).toBeGreaterThanOrEqual(10);

      // /ready pings the primary only: still 200.
      const ready = await fetch(readyAt, { signal: AbortSignal.timeout(5_000) });
      expect(ready.status).toBe(200);
      const down = await metrics();
      expect(down.value('poolgraph_replica_up')).toBe(0);
      // Every read the primary answered instead of the replica is counted, and nothing else.
      const fellBack = fallbacks(down) - fallbacks(metricsBefore);
      const byReason = Object.fromEntries(
        ['connect_failed', 'replica_down', 'replica_busy'].map((reason) => [
          reason,
          down.delta(metricsBefore, 'poolgraph_replica_fallbacks_total', { reason }),
        ]),
      );
      expect(fellBack).toBe(await appCalls(p, ITEMS));
      expect(linesSaying(FALLBACK_LINE) - linesBefore.down).toBe(1);

      // Restart it; reads go back within a few seconds (the probe runs every second).
      const restartAt = performance.now();
      await r.start();
      const answersAt = performance.now();
      await resetStatements(r);
      let replicaSoFar = 0;
      let firstOnReplica: Answer | undefined;
      for (let n = 0; n < 400 && performance.now() < answersAt + 15_000; n++) {
        const answer = await graphql(W1);
        expectW1(answer);
        const onReplicaNow = await appCalls(r, ITEMS);
        if (onReplicaNow > replicaSoFar) {
          firstOnReplica = answer;
          break;
        }
        replicaSoFar = onReplicaNow;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(firstOnReplica).toBeDefined();
      const backMs = (firstOnReplica?.endedAt ?? Number.NaN) - answersAt;
      expect(backMs).toBeLessThanOrEqual(BACK_ON_REPLICA_BOUND_MS);

      // From now on every read lands on the replica again.
      await resetStatements(p, r);
      for (let n = 0; n < 5; n++) expectW1(await graphql(W1));
      const afterBack = { replica: await appCalls(r, ITEMS), primary: await appCalls(p, ITEMS) };
      expect(afterBack).toEqual({ replica: 5, primary: 0 });
      expect((await metrics()).value('poolgraph_replica_up')).toBe(1);
      expect(linesSaying(BACK_LINE) - linesBefore.back).toBe(1);
      expect(linesSaying(FALLBACK_LINE) - linesBefore.down).toBe(1);

      console.log(
        `[read-replica] replica stop -> first read answered by the primary: ${failoverMs.toFixed(0)} ms ` +
          `(the replica's fast shutdown took ${(stoppedAt - stopAt).toFixed(0)} ms); ` +
          `${reads.length} reads while stopping/stopped, ${reads.filter((read) => read.onPrimary).length} on the primary, ` +
          `slowest ${slowest.toFixed(0)} ms (bound ${READ_BOUND_MS} ms); fallbacks counted ${fellBack} ${JSON.stringify(byReason)}. ` +
          `Replica restarted in ${(answersAt - restartAt).toFixed(0)} ms, then first read on the replica after ${backMs.toFixed(0)} ms ` +
          `(${(answersAt - restartAt + backMs).toFixed(0)} ms from the start command); after that 5 reads -> replica ${afterBack.replica}, primary ${afterBack.primary}`,
      );
    },
    120_000,
  );
  it('a replica that accepts connections but never answers: concurrent reads fall back after its connect timeout, within POOL_TIMEOUT_MS + 1 s', async () => {
    const p = started(primary, 'primary');
    // A TCP listener that accepts and then says nothing, like a replica stuck or behind a dead
    // route: the replica pool's connect times out (half of POOL_TIMEOUT_MS) instead of failing fast.
    const sockets = new Set<Socket>();
    const silent = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = endpointUrl({ ...p.app, port: (silent.address() as AddressInfo).port });
    const lines: { msg?: string; reason?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg?: string }) });
    const settings = { ...TEST_POOL, timeoutMs: POOL_TIMEOUT_MS };
    const app = createServer({
      database: { ...settings, connectionString: p.url },
      replica: { ...settings, connectionString: silentUrl },
      logger,
    });
    const http = createHttpServer(app.yoga);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`;
    try {
      expect(app.replicaPool?.options.connectionTimeoutMillis).toBe(POOL_TIMEOUT_MS / 2);
      const read = async () => {
        const begun = performance.now();
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: W1 }),
          signal: AbortSignal.timeout(READ_BOUND_MS + 5_000),
        });
        const body = (await response.json()) as Answer['body'];
        const endedAt = performance.now();
        return { status: response.status, body, ms: endedAt - begun, endedAt };
      };
      // 8 at once against a replica pool of 5: 5 connect and time out, 3 wait in its queue.
      const first = await Promise.all(Array.from({ length: 8 }, read));
      const later = await read();
      for (const answer of [...first, later]) expectW1(answer);
      const slowest = Math.max(...first.map((answer) => answer.ms));
      expect(slowest).toBeLessThanOrEqual(READ_BOUND_MS);
      expect(slowest).toBeGreaterThanOrEqual(POOL_TIMEOUT_MS / 2 - 50);
      // Once down, reads go straight to the primary.
      expect(later.ms).toBeLessThan(POOL_TIMEOUT_MS / 2);
      expect(lines.filter((line) => line.msg === FALLBACK_LINE)).toHaveLength(1);
      const registry = app.metrics;
      if (!registry) throw new Error('metrics are on by default');
      const exposition = await registry.getSingleMetricAsString('poolgraph_replica_fallbacks_total');
      const count = (reason: string) =>
        Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(exposition)?.[1] ?? Number.NaN);
      const counted = { connect_failed: count('connect_failed'), replica_busy: count('replica_busy'), replica_down: count('replica_down') };
      console.log(
        `[read-replica] silent replica: 8 concurrent reads answered by the primary in ${Math.min(...first.map((a) => a.ms)).toFixed(0)}-${slowest.toFixed(0)} ms ` +
          `(replica connect timeout ${POOL_TIMEOUT_MS / 2} ms, bound ${READ_BOUND_MS} ms), the next in ${later.ms.toFixed(0)} ms; fallbacks ${JSON.stringify(counted)}`,
      );
      expect(counted.connect_failed + counted.replica_busy + counted.replica_down).toBe(9);
      expect(counted.connect_failed).toBeGreaterThanOrEqual(1);
      expect(counted.replica_down).toBeGreaterThanOrEqual(1);
      expect(app.replicaRouter?.replicaUp).toBe(false);
    } finally {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await app.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('a replica down at start does not stop npm start: it serves reads from the primary and says so once', async () => {
    const p = started(primary, 'primary');
    const nothingThere = await freePort();
    const lines: { msg?: string }[] = [];
    const alone = await startPoolgraph({
      name: 'poolgraph-no-replica',
      port: await freePort(),
      env: {
        DATABASE_URL: p.url,
        DATABASE_REPLICA_URL: endpointUrl({ ...p.app, port: nothingThere }),
        POOL_SIZE: '1',
        POOL_MAX_OVERFLOW: '1',
        POOL_TIMEOUT_MS: String(POOL_TIMEOUT_MS),
      },
      onLine(line) {
        if (line.startsWith('{')) lines.push(JSON.parse(line) as { msg?: string });
      },
    });
    try {
      const response = await fetch(alone.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: W1 }),
        signal: AbortSignal.timeout(READ_BOUND_MS + 5_000),
      });
      const body = (await response.json()) as Answer['body'];
      expectW1({ status: response.status, body, ms: 0, endedAt: 0 });
      expect((await fetch(`${alone.origin}/ready`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
      const exposition = await scrape(`${alone.origin}/metrics`);
      expect(exposition.value('poolgraph_replica_up')).toBe(0);
      expect(exposition.value('poolgraph_replica_fallbacks_total', { reason: 'replica_down' })).toBe(1);
      expect(lines.filter((line) => line.msg === FALLBACK_LINE)).toHaveLength(1);
    } finally {
      await alone.stop();
    }
  }, 90_000);
});

/** What PostgreSQL ran as `role` on `on`, per normalised statement (its own pg_stat_statements). */
async function statementsBy(on: PostgresServer, role: string): Promise<Map<string, { query: string; calls: number }>> {
  const rows = await on.query<{ key: string; query: string; calls: string }>(
    `select queryid::text as key, query, calls::text as calls from pg_stat_statements
     where userid = (select oid from pg_roles where rolname = $1)`,
    [role],
  );
  return new Map(rows.map((row) => [row.key, { query: row.query, calls: Number(row.calls) }]));
}

/** Runs `action` and counts, on each server, the calls as `role` of statements matching each pattern meanwhile. */
async function countedDuring<T>(
  servers: Record<string, PostgresServer>,
  role: string,
  patterns: Record<string, RegExp>,
  action: () => Promise<T>,
): Promise<{ result: T; ran: Record<string, Record<string, number>> }> {
  const before = Object.fromEntries(await Promise.all(Object.entries(servers).map(async ([name, on]) => [name, await statementsBy(on, role)] as const)));
  const result = await action();
  const ran: Record<string, Record<string, number>> = {};
  for (const [name, on] of Object.entries(servers)) {
    const counts = Object.fromEntries(Object.keys(patterns).map((kind) => [kind, 0]));
    for (const [key, { query, calls }] of await statementsBy(on, role)) {
      const delta = calls - (before[name]?.get(key)?.calls ?? 0);
      for (const [kind, pattern] of Object.entries(patterns)) if (delta > 0 && pattern.test(query)) counts[kind]! += delta;
    }
    ran[name] = counts;
  }
  return { result, ran };
}

const KINDS = { setConfig: /set_config/, items: /from "items"/, begin: /^\s*begin\b/i, all: /[\s\S]/ };

describe('who may do what with a read replica: the server as poolgraph_app on both, tokens required', () => {
  let app: ReturnType<typeof createServer> | undefined;
  let http: ReturnType<typeof createDrainableHttpServer>['server'] | undefined;
  let url = '';
  const released: RequestScopeStats[] = [];

  beforeAll(async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    const asServerRole = { user: SERVER_ROLE, password: SERVER_ROLE_PASSWORD };
    // One replica connection: every read below runs on the same standby backend.
    app = createServer({
      database: { ...TEST_POOL, connectionString: endpointUrl({ ...p.app, ...asServerRole }) },
      replica: { ...TEST_POOL, size: 1, maxOverflow: 0, connectionString: endpointUrl({ ...r.app, ...asServerRole }) },
      auth: { mode: 'jwt', tokens: TEST_TOKENS },
      extend: testSchemaExtension,
      logger: pino({ level: 'silent' }),
      onScopeReleased: (stats) => released.push(stats),
    });
    http = createDrainableHttpServer(app.requestListener).server;
    const listening = http;
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/graphql`;
  });

  afterAll(async () => {
    if (http) {
      const closing = http;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    }
    await app?.close();
  });

  async function post(query: string, headers: Record<string, string> = {}) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  }

  /** Which server has `pid` among poolgraph_app's backends: the replica, the primary, or neither. */
  async function whereRuns(pid: number | null | undefined): Promise<string[]> {
    const where: string[] = [];
    for (const on of [started(replica, 'replica'), started(primary, 'primary')]) {
      const rows = await on.query('select 1 from pg_stat_activity where pid = $1 and usename = $2', [pid, SERVER_ROLE]);
      if (rows.length > 0) where.push(on.name);
    }
    return where;
  }

  it("runs a caller's W1 on the replica in ONE round trip, the claims pipelined with it, and the standby sees them", async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    expect(await r.query('select pg_is_in_recovery() as standby')).toEqual([{ standby: true }]);
    const alice = await tokenFor('alice');
    const before = released.length;
    const { result: w1, ran } = await countedDuring({ replica: r, primary: p }, SERVER_ROLE, KINDS, () => post(W1, bearer(alice)));
    expectW1({ ...w1, ms: 0, endedAt: 0 });
    expect(released[before]?.statements, 'round trips').toBe(1);
    expect(await whereRuns(released[before]?.backendPid)).toEqual(['replica']);
    expect(ran).toEqual({ replica: { setConfig: 1, items: 1, begin: 0, all: 2 }, primary: { setConfig: 0, items: 0, begin: 0, all: 0 } });

    // The claims themselves, read back on the standby (several statements: one read-only transaction there).
    const seen = await post('{ sessionSeen { pid claims } }', bearer(await tokenFor('alice', 'editor')));
    expect(seen.body.errors).toBeUndefined();
    const { pid, claims } = seen.body.data?.['sessionSeen'] as { pid: number; claims: string };
    expect(JSON.parse(claims)).toMatchObject({ sub: 'alice', role: 'editor' });
    expect(await whereRuns(pid)).toEqual(['replica']);
  });

  it('serves anonymous reads on the replica as before (one statement, no claims), and leaves no claims for them', async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    const before = released.length;
    const { result: w1, ran } = await countedDuring({ replica: r, primary: p }, SERVER_ROLE, KINDS, () => post(W1));
    expectW1({ ...w1, ms: 0, endedAt: 0 });
    expect(released[before]?.statements).toBe(1);
    expect(ran).toEqual({ replica: { setConfig: 0, items: 1, begin: 0, all: 1 }, primary: { setConfig: 0, items: 0, begin: 0, all: 0 } });

    // A caller's read, then an anonymous one on the same standby backend (a replica pool of one).
    const mallory = await tokenFor('mallory', 'admin');
    const withClaims = await post('{ sessionSeen { pid claims } }', bearer(mallory));
    const { pid } = withClaims.body.data?.['sessionSeen'] as { pid: number };
    expect((await post('{ sessionSeen { pid claims } }')).body.data?.['sessionSeen']).toEqual({ pid, claims: '' });
    expect((await post(W1, bearer(mallory))).body.errors).toBeUndefined();
    expect((await post('{ sessionSeen { pid claims } }')).body.data?.['sessionSeen']).toEqual({ pid, claims: '' });
  });

  it("runs a caller's write on the primary under their claims, nothing on the replica", async () => {
    const p = started(primary, 'primary');
    const r = started(replica, 'replica');
    const { result: created, ran } = await countedDuring({ replica: r, primary: p }, SERVER_ROLE, KINDS, async () =>
      post('mutation { createItem(input: { number: 4343, label: "alice on the primary" }) { id ownerId } }', bearer(await tokenFor('alice'))),
    );
    expect(created.body.errors, JSON.stringify(created.body)).toBeUndefined();
    expect((created.body.data?.['createItem'] as { ownerId: string }).ownerId).toBe('alice');
    expect(ran['replica']?.all).toBe(0);
    expect(ran['primary']?.setConfig).toBe(1);
    const update = await post(
      `mutation { updateItem(id: "${(created.body.data?.['createItem'] as { id: string }).id}", input: { label: "bob's" }) { label } }`,
      bearer(await tokenFor('bob')),
    );
    expect(update.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
