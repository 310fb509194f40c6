import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { BANNER, bannerPort, exitCode, npmStart, output, stopWithSigterm } from '../support/npm-start.js';

/** The README's "Who may do what", run as a newcomer would: `npm start` and `npm run token`. */

const dataDirs: string[] = [];
afterAll(async () => {
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'poolgraph-auth-start-'));
  dataDirs.push(dir);
  return dir;
}

const SECRET = 'npm-start-test-secret-of-32-characters';

async function post(port: number, query: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as { data?: Record<string, unknown>; errors?: { extensions?: { code?: string } }[] } };
}

describe('npm start with AUTH_JWT_SECRET, and tokens from npm run token', () => {
  it('refuses an anonymous write, accepts a write with the printed token, and works as a role row-level security binds', { timeout: 120_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir, { AUTH_JWT_SECRET: SECRET });
    const port = await bannerPort(run);
    expect(run.stdout).toContain('writes:   need a verified token');
    try {
      const anonymous = await post(port, 'mutation { createItem(input: { number: 1 }) { id } }');
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

      const { stdout } = await promisify(execFile)('npm', ['run', '-s', 'token', '--', '--sub', 'alice', '--ttl', '10m'], {
        env: { ...process.env, AUTH_JWT_SECRET: SECRET },
      });
      const token = stdout.trim();
      expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const created = await post(port, 'mutation { createItem(input: { number: 1 }) { ownerId } }', { authorization: `Bearer ${token}` });
      expect(created.body).toEqual({ data: { createItem: { ownerId: 'alice' } } });

      // PostgreSQL's view: every connection of the server is poolgraph_app, no superuser, no BYPASSRLS.
      const dbPort = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[3]);
      const admin = new pg.Client({ connectionString: `postgres://postgres:poolgraph@127.0.0.1:${dbPort}/poolgraph` });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ role: string; bypasses: boolean }>(
          `select distinct a.usename as role, r.rolsuper or r.rolbypassrls as bypasses
           from pg_stat_activity a join pg_roles r on r.rolname = a.usename where a.application_name = 'poolgraph'`,
        );
        expect(rows).toEqual([{ role: 'poolgraph_app', bypasses: false }]);
      } finally {
        await admin.end();
      }
    } finally {
      await stopWithSigterm(run);
    }
  });
});

describe('npm start refuses a start where tokens would protect nothing', () => {
  it('AUTH_MODE=jwt on a DATABASE_URL whose role is a superuser: one line saying so', { timeout: 60_000 }, async () => {
    const database = await createTestDatabase({ categories: 1, itemsPerCategory: 1 });
    try {
      const run = npmStart(undefined, { DATABASE_URL: database.url, AUTH_JWT_SECRET: SECRET });
      expect(await exitCode(run, 45_000), output(run)).toBe(1);
      expect(run.stderr).toMatch(/^poolgraph: AUTH_MODE=jwt, but DATABASE_URL's role "\w+" is a superuser or has BYPASSRLS, so row-level security would not apply: connect as a role without them/m);
      expect(run.stderr).not.toMatch(/^ {4}at /m);
      expect(run.stdout).not.toMatch(BANNER);
    } finally {
      await database.drop();
    }
  });

  it('NODE_ENV=production with no key and no AUTH_MODE: says what to set, before starting anything', { timeout: 30_000 }, async () => {
    const dataDir = await freshDataDir();
    const run = npmStart(dataDir, { NODE_ENV: 'production' });
    expect(await exitCode(run, 20_000), output(run)).toBeGreaterThan(0);
    expect(run.stderr).toContain('AUTH_MODE="": NODE_ENV=production needs AUTH_JWT_SECRET or AUTH_JWKS_URL (writes need a token), or AUTH_MODE=open to let anyone write');
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(false);
  });
});
