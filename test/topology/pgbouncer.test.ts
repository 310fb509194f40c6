import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROLE as SERVER_ROLE, ensureAppLogin } from '../../src/db/setup/app-role.js';
import { migrateToLatest } from '../../src/db/setup/migrate.js';
import { withOneConnection } from '../../src/db/setup/one-connection.js';
import { DEFAULT_SEED_SIZE, seed } from '../../src/db/setup/seed.js';
import {
  APP_ROLE,
  freePort,
  freePorts,
  type PgBouncer,
  type PoolgraphInstance,
  type PostgresServer,
  postgresVersion,
  startPgBouncer,
  startPoolgraph,
  startPostgres,
} from '../support/cluster.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';
import { W1, W2, W3 } from '../support/workloads.js';

/**
 * poolgraph behind a real PgBouncer, Debian's (1.18 on Debian 12; the versions of PgBouncer and
 * PostgreSQL used are printed at the start, as their defaults differ between releases), in
 * transaction mode (pool 4, only the pool settings and
 * `ignore_startup_parameters = extra_float_digits`) in front of a real PostgreSQL primary, all on
 * 127.0.0.1: the connection count seen by PostgreSQL, one backend per multi-statement request,
 * and statement timeouts that hold without startup parameters.
 */

const W4 = 'mutation { createItem(input: { number: 7, label: "x", categoryId: "1" }) { id } }';
const PGBOUNCER_POOL_SIZE = 4;
/** `poolgraph_app`'s password on this file's primary (127.0.0.1 only). */
const SERVER_ROLE_PASSWORD = 'poolgraph-app-behind-pgbouncer';
const STATEMENT_TIMEOUT_MS = 1_000;
const LOAD_MS = 8_000;
const LOOPS_PER_INSTANCE = 4;
/** A cap on each loop's requests, so a loop ends even if the clock misbehaves. */
const MAX_REQUESTS_PER_LOOP = 4_000;

interface Body {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function post(url: string, query: string): Promise<{ status: number; body: Body }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as Body };
}

/** The app role's backends on the primary right now (through PgBouncer they are PgBouncer's). */
async function appBackends(admin: pg.Client): Promise<number> {
  const { rows } = await admin.query<{ count: number }>(
    'select count(*)::int as count from pg_stat_activity where usename = $1',
    [APP_ROLE],
  );
  return rows[0]?.count ?? 0;
}

let primary: PostgresServer;
let pgbouncer: PgBouncer;
let instances: PoolgraphInstance[] = [];
let spare: number[] = [];
/** The primary's log lines, with `[pid] user` in their prefix once test 2 sets it. */
const primaryLog: string[] = [];

beforeAll(async () => {
  const [primaryPort, pgbouncerPort, ...instancePorts] = await freePorts(6);
  primary = await startPostgres({ port: primaryPort!, onLine: (line) => primaryLog.push(line) });
  // The role row-level security binds (see 'who may do what' below), made before the migrations
  // so that migration 0002 grants it what the API does (the cluster's `poolgraph` role, which runs
  // them, may not create roles).
  await ensureAppLogin(primary.superuserUrl, SERVER_ROLE_PASSWORD);
  await migrateToLatest(primary.url);
  await withOneConnection(primary.url, (db) => seed(db, DEFAULT_SEED_SIZE));
  pgbouncer = await startPgBouncer({ target: primary.app, port: pgbouncerPort!, poolSize: PGBOUNCER_POOL_SIZE, maxClientConn: 100 });
  console.log(`[pgbouncer] ${await pgbouncer.version()} in front of PostgreSQL ${postgresVersion(primary.binDir)}`);
  const started = await Promise.allSettled(
    instancePorts.slice(0, 2).map((port, index) =>
      startPoolgraph({
        name: `instance-${index + 1}`,
        port,
        env: {
          DATABASE_URL: pgbouncer.url,
          DATABASE_POOLER: 'transaction',
          DATABASE_LISTEN_URL: primary.url,
          POOL_SIZE: '4',
          POOL_MAX_OVERFLOW: '0',
          POOL_TIMEOUT_MS: '10000',
          STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
        },
      }),
    ),
  );
  instances = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  spare = instancePorts.slice(2);
  const failed = started.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(instances.map((instance) => instance.stop()));
  await pgbouncer?.destroy();
  await primary?.destroy();
}, 60_000);

describe('behind PgBouncer in transaction mode (pool 4), two instances of POOL_SIZE=4', () => {
  it('migrates through PgBouncer, processes starting together, and leaves no migration lock held', async () => {
    // Both instances migrated through PgBouncer as they started (beforeAll); then five rounds of
    // five at once (bounded: 25 migrations, each a no-op).
    // Kysely's session-level lock could be released on another server connection than the one
    // holding it, and stay held there: the next start then waited on it.
    for (let round = 0; round < 5; round += 1) {
      const applied = await Promise.all(Array.from({ length: 5 }, () => migrateToLatest(pgbouncer.url)));
      expect(applied).toEqual([[], [], [], [], []]);
    }
    const locks = await primary.query<{ held: number }>("select count(*)::int as held from pg_locks where locktype = 'advisory'");
    expect(locks).toEqual([{ held: 0 }]);
  });

  it(
    'answers W1–W4, and under 8 s of mixed load from both the primary never holds more than 4 app backends and no request fails',
    async () => {
      let writes = 0;
      for (const instance of instances) {
        const w1 = await post(instance.graphqlUrl, W1);
        expect(w1.status, JSON.stringify(w1.body)).toBe(200);
        expect((w1.body.data?.items as { number: number }[]).map((item) => item.number)).toEqual(
          Array.from({ length: 20 }, (_, index) => index + 1),
        );
        const w2 = await post(instance.graphqlUrl, W2);
        expect(w2.body.errors).toBeUndefined();
        const categories = w2.body.data?.categories as { name: string; itemCount: number; items: { category: { name: string } }[] }[];
        expect(categories).toHaveLength(20);
        for (const category of categories) {
          // W4 adds its items to category 1.
          expect(category.itemCount).toBe(DEFAULT_SEED_SIZE.itemsPerCategory + (category.name === 'category-1' ? writes : 0));
          expect(category.items).toHaveLength(10);
          for (const item of category.items) expect(item.category.name).toBe(category.name);
        }
        const w3 = await post(instance.graphqlUrl, W3);
        expect(w3.body.errors).toBeUndefined();
        expect(Object.values(w3.body.data ?? {}).filter((item) => item !== null)).toHaveLength(20);
        const w4 = await post(instance.graphqlUrl, W4);
        expect(w4.body.errors).toBeUndefined();
        expect((w4.body.data?.createItem as { id: string }).id).toMatch(/^\d+$/);
        writes++;
      }

      const admin = new pg.Client({ connectionString: primary.superuserUrl });
      admin.on('error', () => undefined);
      await admin.connect();
      const samples: number[] = [];
      const failures: string[] = [];
      const requests = instances.map(() => 0);
      const workloads = [W1, W2, W3, W4];
      const deadline = Date.now() + LOAD_MS;
      let loading = true;
      try {
        const poller = (async () => {
          while (loading && Date.now() < deadline + 2_000) {
            samples.push(await appBackends(admin));
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        })();
        const loops = instances.flatMap((instance, index) =>
          Array.from({ length: LOOPS_PER_INSTANCE }, async (_, loop) => {
            for (let n = 0; n < MAX_REQUESTS_PER_LOOP && Date.now() < deadline; n++) {
              const query = workloads[(n + loop) % workloads.length]!;
              try {
                const { status, body } = await post(instance.graphqlUrl, query);
                if (status !== 200 || body.errors) failures.push(`${instance.name}: ${status} ${JSON.stringify(body.errors)}`);
              } catch (error) {
                failures.push(`${instance.name}: ${String(error)}`);
              }
              requests[index]!++;
            }
          }),
        );
        await Promise.all(loops);
        loading = false;
        await poller;
      } finally {
        loading = false;
        await admin.end();
      }
      const seconds = LOAD_MS / 1_000;
      console.log(
        `[pgbouncer] ${requests.reduce((a, b) => a + b, 0)} requests in ${seconds} s ` +
          `(${requests.map((count, index) => `instance-${index + 1}: ${(count / seconds).toFixed(0)} req/s`).join(', ')}), ` +
          `${failures.length} failed; app backends on the primary: peak ${Math.max(...samples)} over ${samples.length} samples every ~50 ms`,
      );
      expect(failures.slice(0, 5)).toEqual([]);
      expect(samples.length).toBeGreaterThan(50);
      expect(Math.max(...samples)).toBeLessThanOrEqual(PGBOUNCER_POOL_SIZE);
      expect(Math.max(...samples)).toBeGreaterThan(0);
    },
    60_000,
  );

  it(
    'runs every statement of a W2 request on one server backend (the statements PostgreSQL logged carry the pid backendPid returned)',
    async () => {
      // An in-process server with the test-only backendPid field, through the same PgBouncer.
      const server = await startTestServer(pgbouncer.url, { pooler: 'transaction', size: 4, maxOverflow: 0 });
      try {
        await primary.query("alter system set log_statement = 'all'");
        await primary.query("alter system set log_line_prefix = '[%p] %u '");
        await primary.query('select pg_reload_conf()');
        // In effect once a session shows it: the postmaster has re-read the file and signalled
        // every backend (PgBouncer's included), which applies it before running its next command.
        const applied = await eventually(async () => {
          const [row] = await primary.query<{ log_statement: string }>('show log_statement');
          return row?.log_statement === 'all';
        }, 10_000);
        expect(applied).toBe(true);
        const from = primaryLog.length;
        const query = '{ categories(first: 20) { name itemCount items(first: 10) { id category { name } } } backendPid }';
        const { body } = await server.graphql(query);
        expect(body.errors).toBeUndefined();
        const pid = body.data?.backendPid as number;
        expect(pid).toBeGreaterThan(0);
        // PostgreSQL logs each statement before it runs it, but the lines reach us through a pipe:
        // wait (bounded) until the COMMIT of this request has arrived.
        let committed = false;
        for (let waited = 0; waited < 5_000; waited += 50) {
          committed = primaryLog.slice(from).some((line) => /LOG:\s+(?:statement|execute [^:]*): commit/.test(line));
          if (committed) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        // One transaction is what binds the statements to one server connection behind PgBouncer
        // (a lone request may land on one backend by chance without it).
        expect(committed).toBe(true);
        // Every statement of the request was logged before its COMMIT was (each line is written
        // before the statement runs, and the next is sent only after the last answered), so the
        // lines before the COMMIT's are all here: no extra window to wait.
        // A statement of several lines logs its first with the prefix, the rest indented after it.
        const entries: { pid: number; user: string; text: string }[] = [];
        for (const line of primaryLog.slice(from)) {
          const match = /^\[(\d+)\] (\S*) LOG:\s+(?:statement|execute [^:]*): (.*)$/.exec(line);
          if (match) entries.push({ pid: Number(match[1]), user: match[2]!, text: match[3]! });
          else if (/^\s/.test(line) && entries.length > 0) entries[entries.length - 1]!.text += ` ${line.trim()}`;
        }
        const logged = entries.filter((entry) => entry.user === APP_ROLE);
        console.log(`[pgbouncer] W2 + backendPid: backend ${pid}; statements logged:\n${logged.map((s) => `  [${s.pid}] ${s.text.slice(0, 110)}`).join('\n')}`);
        const loads = logged.filter((statement) => /\bcategories\b|\bitems\b|pg_backend_pid/.test(statement.text));
        // categories with their counts, their items (the items' categories come from the loader's
        // cache) and pg_backend_pid(): 3 statements besides BEGIN/COMMIT, all on one backend.
        expect(loads.length).toBeGreaterThanOrEqual(3);
        expect(loads.some((statement) => statement.text.includes('pg_backend_pid'))).toBe(true);
        expect(new Set(logged.map((statement) => statement.pid))).toEqual(new Set([pid]));
        const begin = logged.findIndex((statement) => /^begin\b/i.test(statement.text));
        const commit = logged.findIndex((statement) => /^commit\b/i.test(statement.text));
        expect(begin).toBeGreaterThanOrEqual(0);
        expect(logged.slice(begin + 1, commit).filter((statement) => loads.includes(statement))).toHaveLength(loads.length);

        // 20 of them at once through a pool of 4 on each side: all answer, each on some backend.
        const results = await Promise.all(Array.from({ length: 20 }, () => server.graphql(query)));
        expect(results.map((result) => result.body.errors)).toEqual(results.map(() => undefined));
        const pids = new Set(results.map((result) => result.body.data?.backendPid));
        expect(pids.size).toBeLessThanOrEqual(PGBOUNCER_POOL_SIZE);
      } finally {
        await primary.query('alter system reset log_statement');
        await primary.query('alter system reset log_line_prefix');
        await primary.query('select pg_reload_conf()');
        await server.close();
      }
    },
    30_000,
  );

  it(
    'cuts off a write blocked by a lock with STATEMENT_TIMEOUT within STATEMENT_TIMEOUT_MS + 1 s, and serves W1 afterwards',
    async () => {
      const locker = new pg.Client({ connectionString: primary.url });
      await locker.connect();
      let elapsed: number;
      try {
        await locker.query('begin');
        await locker.query('lock table items in access exclusive mode');
        const started = Date.now();
        const { body } = await post(instances[0]!.graphqlUrl, 'mutation { createItem(input: { number: 8, label: "blocked-by-lock" }) { id } }');
        elapsed = Date.now() - started;
        expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe('STATEMENT_TIMEOUT');
        expect(elapsed).toBeLessThan(STATEMENT_TIMEOUT_MS + 1_000);
      } finally {
        await locker.query('rollback');
        await locker.end();
      }
      console.log(`[pgbouncer] a write blocked by a lock failed with STATEMENT_TIMEOUT after ${elapsed} ms (STATEMENT_TIMEOUT_MS=${STATEMENT_TIMEOUT_MS})`);
      const w1 = await post(instances[0]!.graphqlUrl, W1);
      expect(w1.body.errors).toBeUndefined();
      expect(w1.body.data?.items).toHaveLength(20);
      const [row] = await primary.query<{ count: number }>("select count(*)::int as count from items where label = 'blocked-by-lock'");
      expect(row?.count).toBe(0);
    },
    20_000,
  );
});

/** What PostgreSQL ran as `role`, per normalised statement (pg_stat_statements on the primary). */
async function statementsBy(role: string): Promise<Map<string, { query: string; calls: number }>> {
  const rows = await primary.query<{ key: string; query: string; calls: string }>(
    `select queryid::text as key, query, calls::text as calls from pg_stat_statements
     where userid = (select oid from pg_roles where rolname = $1)`,
    [role],
  );
  return new Map(rows.map((row) => [row.key, { query: row.query, calls: Number(row.calls) }]));
}

/** Calls since `before`, of the statements whose normalised text matches each pattern. */
function callsSince(
  before: Map<string, { calls: number }>,
  after: Map<string, { query: string; calls: number }>,
  patterns: Record<string, RegExp>,
): Record<string, number> {
  const counts = Object.fromEntries(Object.keys(patterns).map((name) => [name, 0]));
  for (const [key, { query, calls }] of after) {
    const ran = calls - (before.get(key)?.calls ?? 0);
    for (const [name, pattern] of Object.entries(patterns)) if (ran > 0 && pattern.test(query)) counts[name]! += ran;
  }
  return counts;
}

describe('who may do what behind PgBouncer: the server as poolgraph_app, tokens required, PgBouncer keeping ONE server connection', () => {
  let bouncer: PgBouncer;
  let server: TestServer;

  beforeAll(async () => {
    // A PgBouncer of its own, whose auth file holds poolgraph_app (it logs in to PostgreSQL as
    // the client did), with a pool of one server connection: every request below runs on the
    // same PostgreSQL backend, whichever of the server's two pooled connections it takes.
    bouncer = await startPgBouncer({
      target: { ...primary.app, user: SERVER_ROLE, password: SERVER_ROLE_PASSWORD },
      port: await freePort(),
      poolSize: 1,
      maxClientConn: 20,
    });
    server = await startTestServer(
      bouncer.url,
      { pooler: 'transaction', size: 2, maxOverflow: 0 },
      { auth: { mode: 'jwt', tokens: TEST_TOKENS } },
    );
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await bouncer?.destroy();
  }, 30_000);

  async function post(query: string, headers: Record<string, string> = {}) {
    return server.graphql(query, undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query }),
    });
  }

  it("runs a caller's W1 in ONE round trip through PgBouncer, the claims pipelined with it (PostgreSQL ran set_config once, no BEGIN)", async () => {
    const [who] = await primary.query<{ role: string; bypasses: boolean }>(
      'select rolname as role, rolsuper or rolbypassrls as bypasses from pg_roles where rolname = $1',
      [SERVER_ROLE],
    );
    expect(who).toEqual({ role: SERVER_ROLE, bypasses: false });

    const released = server.released.length;
    const before = await statementsBy(SERVER_ROLE);
    const w1 = await post(W1, bearer(await tokenFor('alice')));
    expect(w1.status, JSON.stringify(w1.body)).toBe(200);
    expect((w1.body.data?.['items'] as { number: number }[]).map((item) => item.number)).toEqual(
      Array.from({ length: 20 }, (_, index) => index + 1),
    );
    expect(server.released[released]?.statements, 'round trips').toBe(1);
    const ran = callsSince(before, await statementsBy(SERVER_ROLE), {
      setConfig: /set_config/,
      items: /from "items"/,
      begin: /^\s*begin\b/i,
      commit: /^\s*commit\b/i,
    });
    expect(ran).toEqual({ setConfig: 1, items: 1, begin: 0, commit: 0 });

    // The claims themselves, as PostgreSQL sees them on the server connection behind PgBouncer.
    const seen = await post('{ sessionSeen { claims } }', bearer(await tokenFor('alice', 'editor')));
    const claims: unknown = JSON.parse((seen.body.data?.['sessionSeen'] as { claims: string }).claims);
    expect(claims).toMatchObject({ sub: 'alice', role: 'editor' });
  });

  it("gives a caller's item their sub as owner, and refuses another caller's update with FORBIDDEN, the row unchanged", async () => {
    const alice = await tokenFor('alice');
    const created = await post('mutation { createItem(input: { number: 51, label: "alice\'s" }) { id ownerId } }', bearer(alice));
    expect(created.body.errors, JSON.stringify(created.body)).toBeUndefined();
    const item = created.body.data?.['createItem'] as { id: string; ownerId: string };
    expect(item.ownerId).toBe('alice');

    const update = await post(`mutation { updateItem(id: "${item.id}", input: { label: "bob was here" }) { label } }`, bearer(await tokenFor('bob')));
    expect(update.body.errors?.[0]?.extensions?.code, JSON.stringify(update.body)).toBe('FORBIDDEN');
    const [row] = await primary.query<{ label: string; owner_id: string }>('select label, owner_id from items where id = $1', [item.id]);
    expect(row).toEqual({ label: "alice's", owner_id: 'alice' });

    const anonymous = await post(`mutation { updateItem(id: "${item.id}", input: { label: "nobody" }) { label } }`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const own = await post(`mutation { updateItem(id: "${item.id}", input: { label: "still alice's" }) { label ownerId } }`, bearer(alice));
    expect(own.body).toEqual({ data: { updateItem: { label: "still alice's", ownerId: 'alice' } } });
  });

  it('leaves no claims on the server connection: the next anonymous request on the same PostgreSQL backend sees none', async () => {
    const mallory = await tokenFor('mallory', 'admin');
    const withClaims = await post('{ sessionSeen { pid claims } }', bearer(mallory));
    const { pid, claims } = withClaims.body.data?.['sessionSeen'] as { pid: number; claims: string };
    expect(JSON.parse(claims)).toMatchObject({ sub: 'mallory', role: 'admin' });
    const next = async () => (await post('{ sessionSeen { pid claims } }')).body.data?.['sessionSeen'];
    // After several statements in the operation's transaction…
    expect(await next()).toEqual({ pid, claims: '' });
    // …after a single statement in its implicit transaction (W1)…
    expect((await post(W1, bearer(mallory))).body.errors).toBeUndefined();
    expect(await next()).toEqual({ pid, claims: '' });
    // …and after a write.
    const write = await post('mutation { createItem(input: { number: 52 }) { ownerId } }', bearer(mallory));
    expect(write.body).toEqual({ data: { createItem: { ownerId: 'mallory' } } });
    expect(await next()).toEqual({ pid, claims: '' });
    // PgBouncer held that one backend for poolgraph_app, and no other: the same backend each time.
    const backends = await primary.query<{ pid: number }>('select pid from pg_stat_activity where usename = $1', [SERVER_ROLE]);
    expect(backends).toEqual([{ pid }]);
  });
});
