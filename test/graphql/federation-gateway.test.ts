import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGatewayRuntime, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { reviewsOf, REVIEWS_SDL, startReviewsSubgraph } from '../support/reviews-subgraph.js';
import { eventually, type TestEnvironment, useTestEnvironment } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';
import { bearer, TEST_TOKENS, tokenFor } from '../support/tokens.js';

const t = useTestEnvironment();
// The request scope counts its own statements; pg_stat_statements confirms from PostgreSQL's side.
const postgres = usePostgresStatements(() => t.database);
let reviews: Awaited<ReturnType<typeof startReviewsSubgraph>>;
let gateway: GatewayRuntime;

/** Composes poolgraph (`environment`'s server) and the reviews subgraph as a real pipeline does. */
async function supergraphOf(environment: TestEnvironment): Promise<string> {
  // poolgraph's SDL as it serves it (`_service { sdl }`).
  const { body } = await environment.server.graphql('{ _service { sdl } }');
  const sdl = (body.data as { _service: { sdl: string } })._service.sdl;
  const composition = composeServices([
    { name: 'poolgraph', typeDefs: parse(sdl), url: environment.server.url },
    { name: 'reviews', typeDefs: parse(REVIEWS_SDL), url: reviews.url },
  ]);
  if (!composition.supergraphSdl) {
    throw new Error(`composition failed: ${composition.errors?.map((error) => error.message).join('; ')}`);
  }
  return composition.supergraphSdl;
}

beforeAll(async () => {
  reviews = await startReviewsSubgraph();
  gateway = createGatewayRuntime({ supergraph: await supergraphOf(t), logging: false, maskedErrors: false });
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await reviews?.close();
});

async function throughGateway(query: string) {
  const response = await gateway.fetch('http://gateway.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string }[] };
}

describe('poolgraph behind a federation gateway', () => {
  it('serves its federation SDL with Item and Category as entities', async () => {
    const { body } = await t.server.graphql('{ _service { sdl } }');
    const sdl = (body.data as { _service: { sdl: string } })._service.sdl;
    expect(sdl).toMatch(/type Item\s+@key\(fields: "id"\)/);
    expect(sdl).toMatch(/type Category\s+@key\(fields: "id"\)/);
  });

  it('answers a query that spans both subgraphs, poolgraph first', async () => {
    const { data, errors } = await throughGateway('{ items(first: 50) { id number reviews { stars } } }');
    expect(errors).toBeUndefined();
    const items = data?.items as { id: string; number: number; reviews: { stars: number }[] }[];
    expect(items.map((item) => item.number)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const item of items) expect(item.reviews).toEqual(reviewsOf(item.id).map(({ stars }) => ({ stars })));
  });

  it('resolves poolgraph entities for the other subgraph in one statement on one connection', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => String(i * 7 + 3));
    const released = t.server.released.length;
    const { data, errors } = await throughGateway(
      `{ reviews(itemIds: ${JSON.stringify(ids)}) { stars item { id number label category { name } } } }`,
    );
    expect(errors).toBeUndefined();
    const rows = data?.reviews as { stars: number; item: { id: string; number: number; label: string; category: { name: string } } }[];
    expect(rows).toHaveLength(ids.flatMap(reviewsOf).length);
    for (const row of rows) {
      expect(row.item.number).toBe(Number(row.item.id) % 1000);
      expect(row.item.label).toBe(`item-${row.item.id}`);
      expect(row.item.category.name).toBe(`category-${Math.floor((Number(row.item.id) - 1) / 30) + 1}`);
    }
    // The gateway's calls to poolgraph: one `_entities` request; items by id (1 statement) and
    // their categories (1 statement), on one connection.
    const calls = t.server.released.slice(released);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ connectionsTaken: 1, statements: 2 });
  });

  it('costs PostgreSQL 2 statements for the gateway\'s `_entities` call of 30 items with their categories', async (context) => {
    const ids = Array.from({ length: 30 }, (_, i) => String(i * 7 + 3));
    const { result, seen } = await postgres.during(context, () =>
      throughGateway(`{ reviews(itemIds: ${JSON.stringify(ids)}) { stars item { id number category { name } } } }`),
    );
    expect(result.errors).toBeUndefined();
    expect(seen.total, `statements PostgreSQL ran:\n${seen.listing}`).toBe(2);
    expect(seen.calls(/\bfrom "items"/), seen.listing).toBe(1);
    expect(seen.calls(/\bfrom "categories"/), seen.listing).toBe(1);
  });
});

describe('a subscription through the gateway', () => {
  let streaming: GatewayRuntime;
  let served: Awaited<ReturnType<typeof onSocket>>;

  /** Serves `runtime` on a real socket (127.0.0.1, a free port). */
  async function onSocket(runtime: GatewayRuntime): Promise<{ url: string; close(): Promise<void> }> {
    const http = createHttpServer(runtime);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
      async close() {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      },
    };
  }

  beforeAll(async () => {
    // Hive Gateway's HTTP transport (@graphql-mesh/transport-http) subscribes to a subgraph over
    // GraphQL over SSE, by GET unless told otherwise; poolgraph's CSRF prevention refuses a GET
    // without a CSRF header (see the next test), so the gateway is told to POST (JSON) to poolgraph.
    streaming = createGatewayRuntime({
      supergraph: await supergraphOf(t),
      logging: false,
      maskedErrors: false,
      transportEntries: { poolgraph: { options: { method: 'POST' } } },
    });
    // On a real socket: its clients subscribe over GraphQL over SSE (Accept: text/event-stream).
    served = await onSocket(streaming);
  });

  afterAll(async () => {
    await served?.close();
    await streaming?.[Symbol.asyncDispose]();
  });

  /** poolgraph's listener connections (LISTEN), as PostgreSQL sees them. */
  async function listeners(): Promise<number> {
    const [row] = await t.database.query<{ count: number }>(
      "select count(*)::int as count from pg_stat_activity where datname = current_database() and application_name = 'poolgraph-listener'",
    );
    return row?.count ?? -1;
  }

  it("delivers poolgraph's itemCreated to the gateway's SSE clients, with the reviews subgraph's fields, on one listener connection", async () => {
    const withReviews = await subscribeSse(served.url, 'subscription { itemCreated { id number reviews { stars } } }');
    const inTwo = await subscribeSse(served.url, 'subscription { itemCreated(categoryId: "2") { id label } }');
    try {
      expect(withReviews.status).toBe(200);
      expect(inTwo.status).toBe(200);
      // Each client's subscription is one subscription on poolgraph; they share its one listener,
      // whose start places its cursor: the items created from then on are delivered.
      const live = t.server.server.live;
      expect(
        await eventually(() => live?.size === 2 && live.listenerPid !== undefined),
        `poolgraph serves ${t.server.server.live?.size} subscriptions; the clients got ${JSON.stringify([withReviews.results, inTwo.results])}`,
      ).toBe(true);
      expect(await listeners()).toBe(1);

      const created: string[] = [];
      for (const categoryId of ['1', '2']) {
        const { body } = await t.server.graphql(
          `mutation { createItem(input: { number: 42, label: "via the gateway ${categoryId}", categoryId: "${categoryId}" }) { id } }`,
        );
        expect(body.errors).toBeUndefined();
        created.push((body.data?.['createItem'] as { id: string }).id);
      }
      expect(await eventually(() => withReviews.results.length >= 2 && inTwo.results.length >= 1)).toBe(true);
      // The gateway asked the reviews subgraph for each event's reviews.
      expect(withReviews.results).toEqual(
        created.map((id) => ({ data: { itemCreated: { id, number: 42, reviews: reviewsOf(id).map(({ stars }) => ({ stars })) } } })),
      );
      expect(inTwo.results).toEqual([{ data: { itemCreated: { id: created[1], label: 'via the gateway 2' } } }]);
      expect(await listeners()).toBe(1);
    } finally {
      withReviews.close();
      inTwo.close();
    }
    // The clients gone, the gateway leaves its subscriptions on poolgraph, and poolgraph its listener.
    expect(await eventually(() => t.server.server.live?.size === 0), `poolgraph still serves ${t.server.server.live?.size}`).toBe(true);
    expect(await eventually(async () => (await listeners()) === 0)).toBe(true);
  });

  it("is refused by poolgraph's CSRF prevention when the gateway subscribes by GET, its default: the client is told, nothing listens", async () => {
    // The file's first gateway, configured with no transport options.
    const plain = await onSocket(gateway);
    const byGet = await subscribeSse(plain.url, 'subscription { itemDeleted }');
    try {
      expect(await eventually(() => byGet.completed)).toBe(true);
      expect(byGet.results).toEqual([
        {
          data: null,
          errors: [{ message: 'Required CSRF header(s) not present', path: ['itemDeleted'], extensions: { code: 'DOWNSTREAM_SERVICE_ERROR', serviceName: 'poolgraph' } }],
        },
      ]);
      expect(t.server.server.live?.size).toBe(0);
      expect(await listeners()).toBe(0);
    } finally {
      byGet.close();
      await plain.close();
    }
  });
});

describe('_entities (W5)', () => {
  it('resolves 100 Item representations with 1 statement on 1 connection, in order, null for unknown ids', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => (i === 41 ? '999999' : String(100 - i)));
    const { response, stats, acquired } = await t.server.measure(
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { id number } } }',
      { r: ids.map((id) => ({ __typename: 'Item', id })) },
    );
    expect(response.body.errors).toBeUndefined();
    const entities = (response.body.data as { _entities: ({ id: string; number: number } | null)[] })._entities;
    expect(entities).toHaveLength(100);
    entities.forEach((entity, i) => {
      if (i === 41) expect(entity).toBeNull();
      else expect(entity).toEqual({ id: ids[i], number: Number(ids[i]) % 1000 });
    });
    expect(stats).toMatchObject({ statements: 1, connectionsTaken: 1 });
    expect(acquired).toHaveLength(1);
  });

  it('resolves Item and Category representations together, one statement per type', async () => {
    const { response, stats } = await t.server.measure(
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { number } ... on Category { name } } }',
      {
        r: [
          { __typename: 'Category', id: '2' },
          { __typename: 'Item', id: '5' },
          { __typename: 'Category', id: '424242' },
          { __typename: 'Item', id: '6' },
        ],
      },
    );
    expect(response.body.data).toEqual({ _entities: [{ name: 'category-2' }, { number: 5 }, null, { number: 6 }] });
    expect(stats?.statements).toBe(2);
  });

  it('costs PostgreSQL 1 statement for 100 Item representations, and 1 per type for a mix', async (context) => {
    const items = Array.from({ length: 100 }, (_, i) => ({ __typename: 'Item', id: String(100 - i) }));
    const w5 = await postgres.during(context, () =>
      t.server.measure('query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { id number } } }', { r: items }),
    );
    expect(w5.result.response.body.errors).toBeUndefined();
    expect(w5.seen.total, `W5, statements PostgreSQL ran:\n${w5.seen.listing}`).toBe(1);
    expect(w5.result.stats?.statements).toBe(w5.seen.total);

    const mixed = await postgres.during(context, () =>
      t.server.measure('query($r: [_Any!]!) { _entities(representations: $r) { ... on Item { number } ... on Category { name } } }', {
        r: [...items.slice(0, 50), ...Array.from({ length: 20 }, (_, i) => ({ __typename: 'Category', id: String(i + 1) }))],
      }),
    );
    expect(mixed.result.response.body.errors).toBeUndefined();
    expect(mixed.seen.total, `Items and Categories, statements PostgreSQL ran:\n${mixed.seen.listing}`).toBe(2);
    expect(mixed.result.stats?.statements).toBe(mixed.seen.total);
  });
});

describe("behind the gateway, who may do what: the client's Authorization reaches poolgraph (poolgraph_app, tokens required)", () => {
  const secured = useTestEnvironment({ size: 1, maxOverflow: 0 }, { connectAs: 'app', auth: { mode: 'jwt', tokens: TEST_TOKENS } });
  const statements = usePostgresStatements(() => secured.database);
  let forwarding: GatewayRuntime;

  beforeAll(async () => {
    forwarding = createGatewayRuntime({
      supergraph: await supergraphOf(secured),
      logging: false,
      maskedErrors: false,
      // Hive Gateway sends no client header on by default: the client's Authorization goes to
      // poolgraph only (the reviews subgraph has no use for it).
      propagateHeaders: {
        fromClientToSubgraphs: ({ request, subgraphName }) =>
          subgraphName === 'poolgraph' ? { authorization: request.headers.get('authorization') } : undefined,
      },
    });
  });

  afterAll(async () => {
    await forwarding?.[Symbol.asyncDispose]();
  });

  async function through(query: string, headers: Record<string, string> = {}) {
    const response = await forwarding.fetch('http://gateway.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify({ query }),
    });
    return {
      status: response.status,
      body: (await response.json()) as { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] },
    };
  }

  it("creates a caller's item with their sub as owner, and refuses another caller's update with FORBIDDEN, the row unchanged", async () => {
    const created = await through('mutation { createItem(input: { number: 61, label: "alice via the gateway" }) { id ownerId } }', bearer(await tokenFor('alice')));
    expect(created.body.errors, JSON.stringify(created.body)).toBeUndefined();
    const item = created.body.data?.['createItem'] as { id: string; ownerId: string };
    expect(item.ownerId).toBe('alice');

    const update = await through(`mutation { updateItem(id: "${item.id}", input: { label: "bob was here" }) { label } }`, bearer(await tokenFor('bob')));
    expect(update.body.errors?.[0]?.extensions?.code, JSON.stringify(update.body)).toBe('FORBIDDEN');
    const [row] = await secured.database.query<{ label: string; owner_id: string }>('select label, owner_id from items where id = $1', [item.id]);
    expect(row).toEqual({ label: 'alice via the gateway', owner_id: 'alice' });

    const own = await through(`mutation { updateItem(id: "${item.id}", input: { label: "alice again" }) { label ownerId } }`, bearer(await tokenFor('alice')));
    expect(own.body).toEqual({ data: { updateItem: { label: 'alice again', ownerId: 'alice' } } });
  });

  it("runs the gateway's `_entities` call under the caller's claims: set_config once, in the transaction of its items' statement", async (context) => {
    const ids = Array.from({ length: 10 }, (_, i) => String(i * 7 + 3));
    const query = `{ reviews(itemIds: ${JSON.stringify(ids)}) { stars item { id number } } }`;
    const released = secured.server.released.length;
    const { result, seen } = await statements.during(context, async () => through(query, bearer(await tokenFor('alice'))));
    expect(result.body.errors, JSON.stringify(result.body)).toBeUndefined();
    expect((result.body.data?.['reviews'] as unknown[]).length).toBe(ids.flatMap(reviewsOf).length);
    // poolgraph was asked once (`_entities`). The claims went with it; since `_entities` may load
    // several entity types (a statement each), statement-plan.ts counts it as "several statements",
    // so with a token it runs in one transaction: BEGIN + claims pipelined with the items'
    // statement, then COMMIT (2 round trips; anonymous, it is 1 statement and 1 round trip).
    expect(secured.server.released.slice(released).map((stats) => stats.statements), seen.listing).toEqual([2]);
    expect(seen.calls(/set_config/), seen.listing).toBe(1);
    expect(seen.calls(/\bfrom "items"/), seen.listing).toBe(1);
    expect(seen.byKind, seen.listing).toEqual({ begin: 1, setLocal: 0, data: 2, commit: 1, rollback: 0 });

    // Without a token the same query runs anonymously: no claims.
    const anonymous = await statements.during(context, () => through(query));
    expect(anonymous.result.body.errors).toBeUndefined();
    expect(anonymous.seen.calls(/set_config/), anonymous.seen.listing).toBe(0);
    expect(anonymous.seen.byKind, anonymous.seen.listing).toEqual({ begin: 0, setLocal: 0, data: 1, commit: 0, rollback: 0 });
  });

  it('refuses a bad token, `_entities` included: UNAUTHENTICATED reaches the client inside a 200 from the gateway, and PostgreSQL runs nothing', async (context) => {
    const forged = `${await tokenFor('alice', 'admin')}x`;
    const { result, seen } = await statements.during(context, async () => ({
      write: await through('mutation { createItem(input: { number: 62 }) { id } }', bearer(forged)),
      read: await through('{ items(first: 1) { id } }', bearer(forged)),
      entities: await through('{ reviews(itemIds: ["3"]) { stars item { id number } } }', bearer(forged)),
    }));
    console.log(`[federation] a bad token through the gateway: ${JSON.stringify(result)}`);
    // poolgraph answers 401 (+ WWW-Authenticate) with a GraphQL body; Hive Gateway does not pass
    // that status on: it answers 200 with poolgraph's error (its code, and the subgraph's name) at
    // the field that needed poolgraph.
    const refusal = (path: (string | number)[]) => ({
      message: 'The token signature does not verify.',
      path,
      extensions: { code: 'UNAUTHENTICATED', serviceName: 'poolgraph' },
    });
    expect(result.write).toEqual({ status: 200, body: { data: null, errors: [refusal(['createItem'])] } });
    expect(result.read).toEqual({ status: 200, body: { data: null, errors: [refusal(['items'])] } });
    // The reviews subgraph answered; poolgraph's `_entities` call for their items was refused (and
    // the non-null item and reviews fields take data down with it).
    expect(result.entities).toEqual({ status: 200, body: { data: null, errors: [refusal(['reviews', 0, 'item', 'number'])] } });
    expect(seen.total, seen.listing).toBe(0);
  });
});
