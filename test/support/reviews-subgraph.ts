import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { createYoga } from 'graphql-yoga';

/**
 * A tiny second subgraph, `reviews`, written for the gateway tests: it extends poolgraph's `Item`
 * entity with reviews, and its own `Query.reviews` points back at items, so a gateway has to ask
 * poolgraph's `_entities` for them. Reviews are made up from the item id: item n has n % 3 + 1
 * reviews with stars (n + k) % 5 + 1.
 */
export const REVIEWS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Query {
    "Reviews of the given items, in that order."
    reviews(itemIds: [ID!]!): [Review!]!
  }

  type Review {
    id: ID!
    stars: Int!
    item: Item!
  }

  type Item @key(fields: "id") {
    id: ID!
    reviews: [Review!]!
  }
`;

interface Review {
  id: string;
  stars: number;
  item: { id: string };
}

/** The reviews of item `id`, as this subgraph makes them up. */
export function reviewsOf(id: string): Review[] {
  const n = Number(id);
  return Array.from({ length: (n % 3) + 1 }, (_, k) => ({ id: `${id}-${k}`, stars: ((n + k) % 5) + 1, item: { id } }));
}

/** Starts the reviews subgraph on 127.0.0.1 and returns its URL and a way to stop it. */
export async function startReviewsSubgraph(): Promise<{ url: string; close(): Promise<void> }> {
  const yoga = createYoga({
    schema: buildSubgraphSchema({
      typeDefs: parse(REVIEWS_SDL),
      resolvers: {
        Query: { reviews: (_parent: unknown, args: { itemIds: string[] }) => args.itemIds.flatMap(reviewsOf) },
        Item: {
          __resolveReference: (reference: { id: string }) => reference,
          reviews: (item: { id: string }) => reviewsOf(item.id),
        },
      },
    }),
    logging: false,
  });
  const http = createHttpServer(yoga);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await yoga.dispose();
    },
  };
}
