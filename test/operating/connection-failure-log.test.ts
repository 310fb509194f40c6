import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';
import { W1 } from '../support/workloads.js';

/** One JSON log line of the server. */
type LogLine = Record<string, unknown> & { msg?: string };

let database: TestDatabase;
let server: TestServer;
const lines: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      done();
    },
  });
  server = await startTestServer(database.url, { size: 1, maxOverflow: 0 }, { logger: pino({ level: 'warn' }, destination) });
});

afterAll(async () => {
  await server?.close();
  await database?.drop();
});

describe('an idle pooled connection that PostgreSQL ends', () => {
  it('is logged in one short line with the message, the SQLSTATE and the backend pid, never the client', async () => {
    expect((await server.graphql(W1)).body.data?.items).toHaveLength(20);
    const [backend] = await database.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = current_database() and application_name = 'poolgraph'",
    );
    expect(backend).toBeDefined();
    await database.query('select pg_terminate_backend($1)', [backend?.pid]);

    const message = 'an idle database connection failed and was removed from the pool';
    expect(await eventually(() => lines.some((line) => line.includes(message)), 10_000)).toBe(true);
    const raw = lines.find((line) => line.includes(message)) ?? '';
    const line = JSON.parse(raw) as LogLine;
    expect(line).toMatchObject({
      err: { message: 'terminating connection due to administrator command', code: '57P01' },
      backendPid: backend?.pid,
    });
    // pg-pool hangs the Client on the error (error.client): its state, secretKey included, must
    // not be serialised into the line.
    expect(raw).not.toMatch(/secretKey|client|password/i);
    expect(raw.length).toBeLessThan(1_000);
  });
});
