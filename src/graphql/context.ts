import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import type { Loaders } from '../loaders/create-loaders.js';

/**
 * What every resolver gets: the request's database handle and its loaders. Both belong to one
 * HTTP request (see `plugins/use-request-scope.ts`); resolvers never reach the pool directly.
 */
export interface RequestContext {
  /** Kysely bound to this request's one connection (taken at the first statement). */
  db: Kysely<Database>;
  /** DataLoaders of this request, running on `db`. */
  loaders: Loaders;
}
