import { createServer as createNetServer, type Server } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { exitCode, npmStart, output } from '../support/npm-start.js';
import { unusedPort } from '../support/tcp-proxy.js';

/**
 * The mistakes people make on their first start, each run through the real `npm start`: each
 * must end with one line on stderr that says what to do, a non-zero exit, and no stack trace.
 */

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

/** Runs `npm start` with `env` and expects a quick exit 1 whose last stderr line matches. */
async function expectOneLineFailure(env: Record<string, string>, message: RegExp): Promise<string> {
  const run = npmStart(undefined, env);
  expect(await exitCode(run, 30_000), output(run)).toBe(1);
  const lastLine = run.stderr.trim().split('\n').at(-1) ?? '';
  expect(lastLine).toMatch(/^poolgraph: /);
  expect(lastLine).toMatch(message);
  expect(run.stderr).not.toMatch(/^ {4}at /m);
  return run.stderr;
}

describe('common mistakes at start', () => {
  it('names the port and the variable when the port is taken', { timeout: 60_000 }, async () => {
    const taken: Server = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expectOneLineFailure(
        { DATABASE_URL: database.url, PORT: String(port) },
        new RegExp(`port ${port} is already in use.*set PORT`),
      );
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('says what to check when DATABASE_URL cannot be reached, after DATABASE_CONNECT_TIMEOUT_MS', { timeout: 60_000 }, async () => {
    const url = new URL(database.url);
    url.port = String(await unusedPort());
    const stderr = await expectOneLineFailure(
      { DATABASE_URL: url.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1500' },
      /did not answer within 2 s \(ECONNREFUSED\): check that PostgreSQL runs there and DATABASE_URL's host and port/,
    );
    expect(stderr).not.toContain(`:${url.password}@`);
  });

  it('stops at once, in one line, when the password is wrong or the database does not exist', { timeout: 60_000 }, async () => {
    const wrongPassword = new URL(database.url);
    wrongPassword.password = 'not-the-password';
    const unknownDatabase = new URL(database.url);
    unknownDatabase.pathname = '/no_such_database';
    for (const [url, message] of [
      [wrongPassword, /password for user "postgres" was rejected/],
      [unknownDatabase, /database "no_such_database" does not exist/],
    ] as const) {
      const started = Date.now();
      const stderr = await expectOneLineFailure({ DATABASE_URL: url.toString(), DATABASE_CONNECT_TIMEOUT_MS: '30000' }, message);
      // At once: well before the 30 s it would keep trying a database that does not answer.
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(stderr).not.toContain('not-the-password');
    }
  });

  it('refuses a database migrated by a newer poolgraph, and says what to do', { timeout: 60_000 }, async () => {
    const future = await createTestDatabase();
    const client = new pg.Client({ connectionString: future.url });
    await client.connect();
    try {
      await client.query(
        "insert into kysely_migration (name, timestamp) values ('9999-from-a-newer-version', now()::text)",
      );
    } finally {
      await client.end();
    }
    try {
      await expectOneLineFailure(
        { DATABASE_URL: future.url },
        /migrated by a newer poolgraph .*run a newer poolgraph, or point DATABASE_URL at another database/,
      );
    } finally {
      await future.drop();
    }
  });
});
