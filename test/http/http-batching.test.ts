import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { startTestServer, type TestServer } from '../support/server.js';

const LIMIT = 10;

let database: TestDatabase;
let batching: TestServer;
let plain: TestServer;
// The scope's statement count, confirmed by PostgreSQL's own (pg_stat_statements).
const postgres = usePostgresStatements(() => database);

beforeAll(async () => {
  database = await createTestDatabase();
  batching = await startTestServer(database.url, {}, { batchLimit: LIMIT });
  plain = await startTestServer(database.url);
});

afterAll(async () => {
  await batching?.close();
  await plain?.close();
  await database?.drop();
});

async function postBatch(server: TestServer, operations: { query: string; variables?: unknown }[]) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(operations),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('HTTP batching (HTTP_BATCH_LIMIT)', () => {
  it('runs 5 operations of one request on one connection, their loads batched together', async () => {
    const released = batching.released.length;
    const acquired = batching.acquired.length;
    const operations = [3, 14, 15, 92, 65].map((id) => ({
      query: 'query($id: ID!) { item(id: $id) { number category { name } } }',
      variables: { id: String(id) },
    }));
    const { status, body } = await postBatch(batching, operations);
    expect(status).toBe(200);
    expect(body).toEqual(
      [3, 14, 15, 92, 65].map((id) => ({
        data: { item: { number: id, category: { name: `category-${Math.floor((id - 1) / 30) + 1}` } } },
      })),
    );
    expect(batching.acquired.length - acquired).toBe(1);
    // One scope for the whole HTTP request: items by id in one statement, categories in another.
    expect(batching.released.slice(released)).toEqual([expect.objectContaining({ connectionsTaken: 1, statements: 2 })]);
  });

  it('costs PostgreSQL 2 statements for a batch of 5 operations: items by id, then their categories', async (context) => {
    const operations = [3, 14, 15, 92, 65].map((id) => ({
      query: 'query($id: ID!) { item(id: $id) { number category { name } } }',
      variables: { id: String(id) },
    }));
    const { result, seen } = await postgres.during(context, () => postBatch(batching, operations));
    expect(result.status).toBe(200);
    expect(seen.total, `statements PostgreSQL ran:\n${seen.listing}`).toBe(2);
    expect(seen.calls(/\bfrom "items"/), seen.listing).toBe(1);
    expect(seen.calls(/\bfrom "categories"/), seen.listing).toBe(1);
  });

  it(`refuses a batch of more than ${LIMIT} operations with a clear error, taking no connection`, async () => {
    const acquired = batching.acquired.length;
    const { status, body } = await postBatch(batching, Array.from({ length: LIMIT + 1 }, () => ({ query: '{ items { id } }' })));
    expect(status).toBe(413);
    expect(JSON.stringify(body)).toContain(`Batching is limited to ${LIMIT} operations per request.`);
    expect(batching.acquired.length).toBe(acquired);
  });

  it('is off by default: a JSON array is refused', async () => {
    const { status, body } = await postBatch(plain, [{ query: '{ __typename }' }]);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(body)).toMatch(/object|batch/i);
  });
});
