import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually, startTestServer, type TestServer } from '../support/server.js';

/**
 * The example client's subscription (`npm run example:client -- --watch N`): its `ItemCreated`
 * document, typed by codegen and in the persisted-documents manifest, subscribed to over GraphQL
 * over SSE before the client writes, so that its own new item is the first it receives.
 */
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MANIFEST_PATH = fileURLToPath(new URL('../../examples/client/generated/persisted-documents.json', import.meta.url));
const manifest = JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Record<string, string>;

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

interface WatchSummary {
  createdId: string;
  watched: { id: string; number: number; label: string; category: string | null }[];
}

/** Runs `npm run example:client -- --watch N` against `url`; resolves with its JSON line. */
async function runWatching(url: string, count: number, hashesOnly: boolean): Promise<WatchSummary> {
  const args = ['run', '--silent', 'example:client', '--', '--url', url, '--watch', String(count), ...(hashesOnly ? ['--hashes-only'] : [])];
  const { stdout } = await promisify(execFile)('npm', args, { cwd: REPO_ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null') as WatchSummary;
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
