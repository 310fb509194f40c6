import { Writable } from 'node:stream';
import pg from 'pg';
import { type Logger, pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkConnectionBudget,
  computeConnectionBudget,
  logConnectionBudget,
  readServerConnections,
  type ServerConnections,
} from '../../src/db/setup/connection-budget.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { bannerPort, npmStart, type NpmStart, output, stopWithSigterm } from '../support/npm-start.js';
import { unusedPort } from '../support/tcp-proxy.js';

/**
 * Issue 10, test 6: at start the server says how many connections each pool may open against
 * what PostgreSQL has left, and warns — naming the numbers — when its maximum does not fit.
 * The start goes on either way.
 */

let database: TestDatabase;
/** What PostgreSQL itself says, read by the test on its own connection. */
let server: { maxConnections: number; reserved: number };

beforeAll(async () => {
  database = await createTestDatabase();
  const [row] = await database.query<{ max_connections: number; superuser: number; reserved: number | null }>(
    `select current_setting('max_connections')::int as max_connections,
            current_setting('superuser_reserved_connections')::int as superuser,
            current_setting('reserved_connections', true)::int as reserved`,
  );
  if (!row) throw new Error('no settings row');
  server = { maxConnections: row.max_connections, reserved: row.superuser + (row.reserved ?? 0) };
});

afterAll(async () => {
  await database?.drop();
});

/** A pino JSON line, as `LOG_FORMAT=json` writes it. */
interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

const INFO = 30;
const WARN = 40;

/** The JSON log lines of a run that carry a budget (a `pool` and a `maxConnections`). */
function budgetLines(run: NpmStart): LogLine[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.pool === 'primary' && 'maxConnections' in line);
}

async function itemNumbers(port: number): Promise<number[]> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: '{ items { number } }' }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { data?: { items: { number: number }[] }; errors?: unknown[] };
  expect(body.errors).toBeUndefined();
  return body.data?.items.map((item) => item.number) ?? [];
}

/** Checks that a budget line names the numbers PostgreSQL has, and that they add up. */
function expectServerNumbers(line: LogLine, poolMax: number): { inUse: number; available: number } {
  expect(line).toMatchObject({ pool: 'primary', poolMax, maxConnections: server.maxConnections, reserved: server.reserved });
  const { inUse, available } = line;
  // inUse moves with whatever else runs on the server; it can only be a count below the limit.
  if (typeof inUse !== 'number' || typeof available !== 'number') throw new Error(`not numbers: ${JSON.stringify(line)}`);
  expect(inUse).toBeGreaterThanOrEqual(0);
  expect(inUse).toBeLessThanOrEqual(server.maxConnections);
  expect(available).toBe(Math.max(0, server.maxConnections - server.reserved - inUse));
  return { inUse, available };
}

describe('the connection budget npm start logs', () => {
  it('warns, naming the numbers, when the pool may open more connections than PostgreSQL has left, and still serves', { timeout: 90_000 }, async () => {
    const overflow = server.maxConnections + 10;
    expect(overflow, 'POOL_MAX_OVERFLOW allows at most 1000').toBeLessThanOrEqual(1000);
    // The pool's POOL_SIZE + POOL_MAX_OVERFLOW, and the subscriptions' one LISTEN connection.
    const poolMax = 1 + overflow + 1;
    const run = npmStart(undefined, {
      DATABASE_URL: database.url,
      POOL_SIZE: '1',
      POOL_MAX_OVERFLOW: String(overflow),
      LOG_FORMAT: 'json',
    });
    const port = await bannerPort(run);

    const lines = budgetLines(run);
    const info = lines.filter((line) => line.level === INFO);
    const warn = lines.filter((line) => line.level === WARN);
    expect(info, output(run)).toHaveLength(1);
    expect(warn, output(run)).toHaveLength(1);
    const [infoLine] = info;
    const [warnLine] = warn;
    if (!infoLine || !warnLine) throw new Error('unreachable');
    const { inUse, available } = expectServerNumbers(warnLine, poolMax);
    expect(infoLine).toMatchObject({ poolMax, maxConnections: server.maxConnections, reserved: server.reserved, inUse, available });
    expect(warnLine.msg).toContain(
      `pool primary may open ${poolMax} connections but PostgreSQL allows ${server.maxConnections}, ` +
        `reserves ${server.reserved} and ${inUse} are in use by others: ${available} left`,
    );
    expect(warnLine.msg).toContain('POOL_SIZE + POOL_MAX_OVERFLOW');

    expect(await itemNumbers(port)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await stopWithSigterm(run);
  });

  it('logs the numbers without a warning when the pool fits', { timeout: 90_000 }, async () => {
    const run = npmStart(undefined, {
      DATABASE_URL: database.url,
      POOL_SIZE: '1',
      POOL_MAX_OVERFLOW: '1',
      LOG_FORMAT: 'json',
    });
    const port = await bannerPort(run);

    const lines = budgetLines(run);
    expect(lines, output(run)).toHaveLength(1);
    const [line] = lines;
    if (!line) throw new Error('unreachable');
    expect(line.level).toBe(INFO);
    // POOL_SIZE + POOL_MAX_OVERFLOW = 2, and the subscriptions' LISTEN connection.
    const { inUse, available } = expectServerNumbers(line, 3);
    expect(available).toBeGreaterThanOrEqual(3);
    expect(line.msg).toBe(
      `connection budget: pool primary may open 3 connections; PostgreSQL allows ${server.maxConnections}, ` +
        `reserves ${server.reserved} and ${inUse} are in use by others: ${available} left`,
    );
    expect(run.stdout).not.toMatch(/"level":40[^\n]*may open/);

    expect(await itemNumbers(port)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await stopWithSigterm(run);
  });
});

/** A server reading as PostgreSQL 16+ gives it: 100 connections, 3 + 2 reserved, 70 in use. */
const PG16: ServerConnections = {
  maxConnections: 100,
  superuserReservedConnections: 3,
  reservedConnections: 2,
  inUse: 70,
  inUseUnseen: 0,
};

describe('the budget verdict', () => {
  it('takes both kinds of reserved connections and those in use from max_connections', () => {
    expect(computeConnectionBudget({ name: 'primary', max: 25 }, PG16, 'none')).toEqual({
      pool: 'primary',
      poolMax: 25,
      maxConnections: 100,
      reserved: 5,
      inUse: 70,
      inUseUnseen: 0,
      available: 25,
      pooler: 'none',
      verdict: 'fits',
    });
    expect(computeConnectionBudget({ name: 'primary', max: 26 }, PG16, 'none').verdict).toBe('does-not-fit');
  });

  it('on PostgreSQL 15, which has no reserved_connections, reserves only the superuser slots', () => {
    const pg15: ServerConnections = { ...PG16, reservedConnections: null };
    const budget = computeConnectionBudget({ name: 'primary', max: 27 }, pg15, 'none');
    expect(budget).toMatchObject({ reserved: 3, available: 27, verdict: 'fits' });
    expect(computeConnectionBudget({ name: 'primary', max: 28 }, pg15, 'none').verdict).toBe('does-not-fit');
  });

  it("does not count the pool's own open connections twice", () => {
    // 5 of the 70 in use are this pool's (POOL_SIZE=5, warmed up); its maximum of 30 includes them.
    const budget = computeConnectionBudget({ name: 'primary', max: 30, open: 5 }, PG16, 'none');
    expect(budget).toMatchObject({ inUse: 65, available: 30, verdict: 'fits' });
  });

  it('never reports fewer than 0 left, and then nothing fits', () => {
    const full: ServerConnections = { ...PG16, inUse: 99 };
    expect(computeConnectionBudget({ name: 'replica', max: 1 }, full, 'none')).toMatchObject({
      pool: 'replica',
      available: 0,
      verdict: 'does-not-fit',
    });
  });

  it('behind PgBouncer leaves the decision to PgBouncer, whatever the numbers', () => {
    // The pool's connections go to PgBouncer: they are not among the server's backends.
    const budget = computeConnectionBudget({ name: 'primary', max: 500, open: 5 }, PG16, 'transaction');
    expect(budget).toMatchObject({ inUse: 70, available: 25, verdict: 'pgbouncer-decides' });
  });
});

/** A pino logger whose JSON lines land in an array. */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, destination), lines };
}

describe('the budget log lines', () => {
  it('behind PgBouncer says that max_client_conn is the limit, and does not warn', async () => {
    const { logger, lines } = capturingLogger();
    logConnectionBudget(logger, computeConnectionBudget({ name: 'primary', max: 500 }, PG16, 'transaction'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: INFO, pool: 'primary', poolMax: 500, maxConnections: 100, reserved: 5, inUse: 70, available: 25, pooler: 'transaction' });
    expect(lines[0]?.msg).toBe(
      'connection budget: pool primary may open 500 connections to PgBouncer; the PostgreSQL behind it ' +
        'allows 100, reserves 5 and 70 are in use by others: 25 left',
    );
    expect(lines[0]?.note).toContain("PgBouncer's max_client_conn");
  });

  it('a budget that cannot be read is one warning, and the start goes on', async () => {
    const { logger, lines } = capturingLogger();
    const url = new URL(database.url);
    url.port = String(await unusedPort());
    const budgets = await checkConnectionBudget([{ name: 'primary', max: 15, url: url.toString() }], { logger, pooler: 'none' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(budgets).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: WARN, pool: 'primary', poolMax: 15 });
    expect(lines[0]?.msg).toBe('could not read the connection budget of pool primary; starting anyway');
    expect(String(lines[0]?.reason)).toContain('ECONNREFUSED');
    expect(String(lines[0]?.database)).not.toContain(`:${url.password}@`);
  });

  it('reads what PostgreSQL shows, counting every client connection', async () => {
    // Three connections of the test's own, held while the budget is read.
    const held = await Promise.all([1, 2, 3].map(() => new pg.Client({ connectionString: database.url })));
    try {
      await Promise.all(held.map((client) => client.connect()));
      const read = await readServerConnections(database.url);
      expect(read.maxConnections).toBe(server.maxConnections);
      expect(read.superuserReservedConnections + (read.reservedConnections ?? 0)).toBe(server.reserved);
      // A superuser sees every session's type.
      expect(read.inUseUnseen).toBe(0);
      // The three, at least; other test files may come and go on this server.
      expect(read.inUse).toBeGreaterThanOrEqual(3);
      expect(read.inUse).toBeLessThanOrEqual(server.maxConnections);
    } finally {
      await Promise.all(held.map((client) => client.end()));
    }
  });
});
