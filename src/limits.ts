import { BadUserInputError } from './errors.js';

/*
 * The sizes the server holds requests to, in one module every layer may import: the
 * configuration reads them from the environment, the limits plugin enforces them, the resolvers
 * clamp pages with them and the cost estimate counts rows with them.
 */

/** The most rows one list field returns; a larger `first` is clamped to it. */
export const MAX_PAGE_SIZE = 100;

/** The page size when `first` is omitted (the schema's default) or passed as null. */
export const DEFAULT_PAGE_SIZE = 20;

/**
 * The number of rows a list field should return: `first` clamped to {@link MAX_PAGE_SIZE}.
 * A negative `first` is a `BAD_USER_INPUT` error rather than silently empty.
 */
export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE;
  if (first < 0) throw new BadUserInputError(`\`first\` must be 0 or more, got ${first}.`);
  return Math.min(first, MAX_PAGE_SIZE);
}

/**
 * How large a request may be. The defaults pass GraphiQL's and codegen's introspection, a
 * gateway's `_entities` call with 100 representations (as a variable or inlined), the workloads
 * of DESIGN.md and a page of 100 categories with 100 items each; they refuse nesting past 10
 * levels, a thousand aliases, ten thousand tokens, hundreds of directives and a fan-out to a
 * million rows. Each is set by the environment variable named in its description.
 */
export interface Limits {
  /**
   * `MAX_DEPTH`: the deepest nesting of fields. Fragments (`... on Item`, named fragments) are
   * not levels of their own, so a gateway's `_entities { ... on Item { id } }` is 2 deep.
   * Introspection below `__schema` is not counted: graphql-js bounds it itself (its
   * `MaxIntrospectionDepthRule`, part of standard validation since 16.9), so GraphiQL's and
   * codegen's introspection queries, 15 levels deep, pass. @default 10
   */
  maxDepth: number;
  /** `MAX_ALIASES`: the most aliased fields in one operation (`__typename` is free). @default 50 */
  maxAliases: number;
  /**
   * `MAX_TOKENS`: the most lexical tokens in a document, counted while it is parsed, so an
   * oversized document is refused before it is held as a tree. @default 5000
   */
  maxTokens: number;
  /** `MAX_DIRECTIVES`: the most directives (`@include`, `@skip`, …) in one operation. @default 50 */
  maxDirectives: number;
  /**
   * `MAX_COST`: the most fields an operation may resolve, estimated before it runs from its
   * variables: a field costs 1 plus its subfields, and a list costs that per row it can return
   * (`first` as the server clamps it, 20 when left out; one per `_entities` representation).
   * `{ categories(first: 100) { items(first: 100) { …7 fields… } } }` costs about 80,000.
   * @default 100000
   */
  maxCost: number;
  /**
   * `MAX_BODY_BYTES`: the largest request body. `useBodyLimit` enforces it, with graphql-yoga's
   * checks and error: a `Content-Length` over it is refused
   * before anything is read, a chunked body as soon as it passes it, with HTTP 413 and code
   * `REQUEST_ENTITY_TOO_LARGE`; `useLimits` then closes the connection. @default 1000000
   */
  maxBodyBytes: number;
}

/** The limits a server has when `createServer` is given none (see {@link Limits}). */
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxDepth: 10,
  maxAliases: 50,
  maxTokens: 5_000,
  maxDirectives: 50,
  maxCost: 100_000,
  maxBodyBytes: 1_000_000,
};
