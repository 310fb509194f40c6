import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MANIFEST_PATH = fileURLToPath(new URL('../../examples/client/generated/persisted-documents.json', import.meta.url));
const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Record<string, string>;
const itemNumbersHash = Object.entries(manifest).find(([, document]) => document.startsWith('query ItemNumbers'))?.[0];

let database: TestDatabase;
let open: TestServer; // accepts full documents and hashes
let only: TestServer; // PERSISTED_DOCUMENTS=only

beforeAll(async () => {
  database = await createTestDatabase();
  open = await startTestServer(database.url, {}, { persistedDocuments: { mode: 'allow', documents: manifest } });
  only = await startTestServer(database.url, {}, { persistedDocuments: { mode: 'only', documents: manifest } });
});

afterAll(async () => {
  await open?.close();
  await only?.close();
  await database?.drop();
});

/** Runs `npm run example:client` (the README's command) against `url`; returns its JSON line. */
async function runExampleClient(url: string, hashesOnly: boolean, more: readonly string[] = []): Promise<unknown> {
  const args = ['run', '--silent', 'example:client', '--', '--url', url, ...(hashesOnly ? ['--hashes-only'] : []), ...more];
  const { stdout } = await promisify(execFile)('npm', args, { cwd: REPO_ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
}

const expectedSummary = {
  itemNumbers: Array.from({ length: 20 }, (_, i) => i + 1),
  categories: [
    { name: 'category-1', itemCount: 30, itemNumbers: [1, 2, 3] },
    { name: 'category-2', itemCount: 30, itemNumbers: [31, 32, 33] },
  ],
  created: { number: 7, label: 'from the example client', category: 'category-1' },
};

describe('the typed example client', () => {
  it('gets typed results for its query, nested query and mutation with full documents', async () => {
    const summary = (await runExampleClient(open.url, false)) as typeof expectedSummary;
    expect(summary.itemNumbers).toEqual(expectedSummary.itemNumbers);
    expect(summary.created).toEqual(expectedSummary.created);
    expect(summary.categories[1]).toEqual(expectedSummary.categories[1]);
  });

  it('gets the same results sending only document hashes, even where only persisted documents run', async () => {
    const summary = (await runExampleClient(only.url, true)) as typeof expectedSummary;
    expect(summary.itemNumbers).toEqual(expectedSummary.itemNumbers);
    expect(summary.created).toEqual(expectedSummary.created);
    // The client reads before it writes: the item the first run created is counted now.
    expect(summary.categories[0]).toEqual({ ...expectedSummary.categories[0], itemCount: 31 });
  });
});

describe('PERSISTED_DOCUMENTS=only', () => {
  const post = (server: TestServer, body: unknown) =>
    fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] },
    }));

  it('runs a document the manifest has, by its hash (documentId or Apollo sha256Hash)', async () => {
    expect(itemNumbersHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const byId = await post(only, { documentId: itemNumbersHash });
    expect((byId.body.data as { items: unknown[] }).items).toHaveLength(20);
    const apollo = await post(only, {
      extensions: { persistedQuery: { version: 1, sha256Hash: itemNumbersHash?.replace('sha256:', '') } },
    });
    expect((apollo.body.data as { items: unknown[] }).items).toHaveLength(20);
  });

  it('refuses an unknown hash and an ad-hoc document with clear coded errors, taking no connection', async () => {
    const acquired = only.acquired.length;
    const released = only.released.length;

    const unknown = await post(only, { documentId: `sha256:${'0'.repeat(64)}` });
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(unknown.body.errors?.[0]?.message).toMatch(/persisted document/i);

    const adHoc = await post(only, { query: '{ items { number } }' });
    expect(adHoc.status).toBe(400);
    expect(adHoc.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_ONLY');
    expect(adHoc.body.errors?.[0]?.message).toMatch(/only runs persisted documents/);

    const nothing = await post(only, {});
    expect(nothing.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_ID_REQUIRED');

    expect(only.acquired.length).toBe(acquired);
    expect(only.released.length).toBe(released);
  });

  it('is not the default: the open server still runs ad-hoc documents (GraphiQL works)', async () => {
    const adHoc = await post(open, { query: '{ items(first: 2) { number } }' });
    expect(adHoc.body.data).toEqual({ items: [{ number: 1 }, { number: 2 }] });
    const unknown = await post(open, { documentId: 'sha256:nope' });
    expect(unknown.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });
});

interface WatchSummary {
  createdId: string;
  watched: { id: string; number: number; label: string; category: string | null }[];
}

/** `npm run example:client -- --watch N` against `url` (the client's subscription). */
async function runWatching(url: string, count: number, hashesOnly: boolean): Promise<WatchSummary> {
  return (await runExampleClient(url, hashesOnly, ['--watch', String(count)])) as WatchSummary;
}

describe("the typed example client's subscription (--watch N)", () => {
  it('receives its own new item and the ones created meanwhile by others, then leaves', async () => {
    const running = runWatching(open.url, 3, false);
    // Once its subscription is registered and the listener is up (events from then on are
    // delivered; the first subscription opens the listener), two more items come from elsewhere.
    const live = open.server.live;
    expect(await eventually(() => live?.size === 1 && live.listenerPid !== undefined, 30_000), 'the client never subscribed').toBe(true);
    const others: string[] = [];
    for (const label of ['elsewhere 1', 'elsewhere 2']) {
      const { body } = await open.graphql(`mutation { createItem(input: { number: 8, label: "${label}", categoryId: "2" }) { id } }`);
      expect(body.errors).toBeUndefined();
      others.push((body.data?.['createItem'] as { id: string }).id);
    }
    const summary = await running;
    const byId = (a: { id: string }, b: { id: string }) => Number(a.id) - Number(b.id);
    expect([...summary.watched].sort(byId)).toEqual(
      [
        { id: summary.createdId, number: 7, label: 'from the example client', category: 'category-1' },
        ...others.map((id, i) => ({ id, number: 8, label: `elsewhere ${i + 1}`, category: 'category-2' })),
      ].sort(byId),
    );
    // Done, the client closed its stream: poolgraph serves no subscription any more.
    expect(await eventually(() => open.server.live?.size === 0)).toBe(true);
  });

  it('subscribes by hash alone where only persisted documents run', async () => {
    const summary = await runWatching(only.url, 1, true);
    expect(summary.watched).toEqual([{ id: summary.createdId, number: 7, label: 'from the example client', category: 'category-1' }]);
    expect(await eventually(() => only.server.live?.size === 0)).toBe(true);
  });
});
