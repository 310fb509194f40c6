import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { eventually, useTestEnvironment } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';

/** Over the WebSocket: the first result, error or completion of one subscription. */
async function overWebSocket(url: string, query: string, connectionParams: Record<string, unknown> = {}) {
  const { createClient } = await import('graphql-ws');
  const { default: WebSocket } = await import('ws');
  const client = createClient({ url: url.replace('http:', 'ws:'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams });
  try {
    return await new Promise<{ errors?: unknown }>((resolve) => {
      client.subscribe({ query }, { next: (value) => resolve(value as { errors?: unknown }), error: (error) => resolve({ errors: error }), complete: () => resolve({}) });
    });
  } finally {
    await client.dispose();
  }
}

const codesOf = (errors: unknown): unknown[] => (Array.isArray(errors) ? errors.map((error: { extensions?: { code?: string } }) => error.extensions?.code) : []);

describe('subscriptions follow the same rules as queries, on both transports', () => {
  const t = useTestEnvironment({}, { connectAs: 'app', auth: { tokens: TEST_TOKENS }, live: { maxSubscriptions: 3 } });
  const statements = usePostgresStatements(() => t.database);

  it('refuses a bad token: 401 over SSE, UNAUTHENTICATED over the WebSocket, and registers nothing', async () => {
    const sse = await subscribeSse(t.server.url, 'subscription { itemDeleted }', { authorization: 'Bearer not.a.token' });
    expect(sse.status).toBe(401);
    sse.close();
    const ws = await overWebSocket(t.server.url, 'subscription { itemDeleted }', { authorization: 'Bearer not.a.token' });
    expect(codesOf(ws.errors)).toEqual(['UNAUTHENTICATED']);
    expect(t.server.server.live?.size).toBe(0);
  });

  it('refuses a document over a limit before it subscribes', async () => {
    const deep = `subscription { itemCreated { category { items { category { items { category { items { category { items { category { items { id } } } } } } } } } } } }`;
    const ws = await overWebSocket(t.server.url, deep);
    expect(codesOf(ws.errors)).toEqual(['MAX_DEPTH_EXCEEDED']);
    const sse = await subscribeSse(t.server.url, deep);
    expect(sse.status).toBeGreaterThanOrEqual(200);
    expect(await eventually(() => sse.results.length > 0 || sse.completed)).toBe(true);
    sse.close();
    expect(t.server.server.live?.size).toBe(0);
  });

  it('frees the place of a client that leaves before its stream begins, even while the listener starts', async () => {
    // Each round starts with no subscription, so the hub opens its listener for this one: the
    // client is gone before the response (or its first byte) can be sent.
    for (let round = 0; round < 10; round += 1) {
      const leaving = new AbortController();
      const response = fetch(`${t.server.url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription { itemDeleted }' }),
        signal: leaving.signal,
      }).catch(() => undefined);
      setTimeout(() => leaving.abort(), round);
      await response;
      expect(await eventually(() => t.server.server.live?.size === 0), `round ${round}: a place still held`).toBe(true);
    }
  });

  it('ends a subscription over MAX_SUBSCRIPTIONS with TOO_MANY_SUBSCRIPTIONS', async () => {
    const held = await Promise.all([1, 2, 3].map(() => subscribeSse(t.server.url, 'subscription { itemDeleted }')));
    try {
      expect(await eventually(() => t.server.server.live?.size === 3)).toBe(true);
      const fourth = await subscribeSse(t.server.url, 'subscription { itemDeleted }');
      expect(await eventually(() => fourth.results.length > 0)).toBe(true);
      expect(codesOf(fourth.results[0]?.errors)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
      fourth.close();
    } finally {
      for (const subscription of held) subscription.close();
    }
    expect(await eventually(() => t.server.server.live?.size === 0)).toBe(true);
  });

  it("batches subscribers only with those who share their claims: one load per caller, not per subscriber", async (context) => {
    const alice = bearer(await tokenFor('alice'));
    const bob = bearer(await tokenFor('bob'));
    const query = 'subscription { itemUpdated(id: "9") { id label } }';
    const subscribers = [
      await subscribeSse(t.server.url, query, alice),
      await subscribeSse(t.server.url, query, alice),
      await subscribeSse(t.server.url, query, bob),
    ];
    try {
      expect(await eventually(() => t.server.server.live?.size === 3)).toBe(true);
      const { seen } = await statements.during(context, async () => {
        await t.database.query("update items set label = 'seen by callers' where id = 9");
        expect(await eventually(() => subscribers.every((subscriber) => subscriber.results.length === 1))).toBe(true);
      });
      // alice's two subscribers share one load under her claims, bob's runs under his.
      expect(seen.calls(/set_config/), seen.listing).toBe(2);
      expect(seen.calls(/from "items" where "id" = any/), seen.listing).toBe(2);
      for (const subscriber of subscribers) expect(subscriber.results[0]).toEqual({ data: { itemUpdated: { id: '9', label: 'seen by callers' } } });
    } finally {
      for (const subscriber of subscribers) subscriber.close();
    }
  });
});
