import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { type GraphQLSchema, parse } from 'graphql';
import type { RequestContext } from './context.js';
import { resolvers } from './resolvers/index.js';

/** `schema.graphql`, the source of truth for the schema, read at server creation. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../schema.graphql', import.meta.url));

/** Type definitions and resolvers a host adds to the schema (`CreateServerOptions.extend`). */
export interface SchemaExtension {
  typeDefs: string;
  resolvers: GraphQLResolverMap<RequestContext>;
}

/**
 * The served schema: `schema.graphql` with its resolvers, and `extension` merged in, as a
 * federation v2 subgraph schema (`_service`, `_entities`) that is also a plain GraphQL API.
 */
export function buildSchema(extension?: SchemaExtension): GraphQLSchema {
  return buildSubgraphSchema([
    { typeDefs: parse(readFileSync(SCHEMA_PATH, 'utf8')), resolvers },
    ...(extension ? [{ typeDefs: parse(extension.typeDefs), resolvers: extension.resolvers }] : []),
  ]);
}
