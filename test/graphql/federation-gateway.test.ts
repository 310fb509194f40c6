import { createGatewayRuntime, type GatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { reviewsOf, REVIEWS_SDL, startReviewsSubgraph } from '../support/reviews-subgraph.js';
import { useTestEnvironment } from '../support/server.js';

const t = useTestEnvironment();
// The request scope counts its own statements; pg_stat_statements confirms from PostgreSQL's side.
const postgres = usePostgresStatements(() => t.database);
let reviews: Awaited<ReturnType<typeof startReviewsSubgraph>>;
let gateway: GatewayRuntime;

beforeAll(async () => {
  reviews = await startReviewsSubgraph();
  // Compose as a real pipeline does: poolgraph's SDL as it serves it (`_service { sdl }`).
  const { body } = await t.server.graphql('{ _service { sdl } }');
  const sdl = (body.data as { _service: { sdl: string } })._service.sdl;
  const composition = composeServices([
    { name: 'poolgraph', typeDefs: parse(sdl), url: t.server.url },
    { name: 'reviews', typeDefs: parse(REVIEWS_SDL), url: reviews.url },
  ]);
  if (!composition.supergraphSdl) {
    throw new Error(`composition failed: ${composition.errors?.map((error) => error.message).join('; ')}`);
  }
  gateway = createGatewayRuntime({ supergraph: composition.supergraphSdl, logging: false, maskedErrors: false });
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
