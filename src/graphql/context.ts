import type { Kysely } from 'kysely';
import type { Identity } from '../auth/identity.js';
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
  /**
   * Who the request's verified token says the caller is; undefined for an anonymous request.
   * PostgreSQL already sees the same claims on `db`'s connection: resolvers use this only to fill
   * in what a row records (`items.owner_id`), never to decide who may do what.
   */
  identity: Identity | undefined;
}
