import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { bannerPort, exitCode, npmStart, output } from '../support/npm-start.js';
import { eventually } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';

/** On SIGTERM, npm start ends its subscriptions and closes their sockets inside SHUTDOWN_TIMEOUT_MS. */
describe('npm start with subscribers, stopped', () => {
  it('completes SSE and WebSocket subscriptions, closes their sockets and exits 0 well inside SHUTDOWN_TIMEOUT_MS', { timeout: 90_000 }, async () => {
    const database = await createTestDatabase({ categories: 2, itemsPerCategory: 2 });
    try {
      const run = npmStart(undefined, { DATABASE_URL: database.url, SHUTDOWN_TIMEOUT_MS: '20000' });
      const port = await bannerPort(run);
      const url = `http://127.0.0.1:${port}/graphql`;
      const sse = await subscribeSse(url, 'subscription { itemDeleted }');
      const { createClient } = await import('graphql-ws');
      const { default: WebSocket } = await import('ws');
      const client = createClient({ url: url.replace('http:', 'ws:'), webSocketImpl: WebSocket, retryAttempts: 0 });
      let wsEnded = false;
      client.subscribe({ query: 'subscription { itemDeleted }' }, { next: () => undefined, error: () => (wsEnded = true), complete: () => (wsEnded = true) });
      try {
        expect(await eventually(async () => {
          const [row] = await database.query<{ count: number }>(
            "select count(*)::int as count from pg_stat_activity where datname = current_database() and application_name = 'poolgraph-listener'",
          );
          return row?.count === 1;
        })).toBe(true);
        const stopped = Date.now();
        run.child.kill('SIGTERM');
        expect(await exitCode(run), output(run)).toBe(0);
        // Far inside the 20 s: nothing waited for the subscriptions' sockets.
        expect(Date.now() - stopped).toBeLessThan(10_000);
        expect(await eventually(() => sse.completed && wsEnded)).toBe(true);
      } finally {
        sse.close();
        await client.dispose();
      }
    } finally {
      await database.drop();
    }
  });
});
