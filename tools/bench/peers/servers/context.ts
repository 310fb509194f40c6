import type pg from 'pg';
import type { Claims, TokenVerifier } from './auth.js';
import type { BenchCounters } from './bench-process.js';
import { createLoaders, type Loaders } from './loaders.js';
import { createRequestDb, type RequestDb } from './request-db.js';

/** What the resolvers of the hand-written peers get for one request. */
export interface PeerContext {
  db: RequestDb;
  loaders: Loaders;
  /**
   * The caller's verified claims, or a `GraphQLError` (`UNAUTHENTICATED`). Verified only when a
   * resolver asks: reads are open to everyone (migration 0002's `everyone_reads`), so a read sent
   * with a token (W1-token) never verifies it, sets no claims and runs the same one statement as
   * W1; only `createItem` asks.
   */
  caller(): Promise<Claims>;
}

/** What every request's context is made from: the process's pool, counters and verifier. */
export interface PeerContextFactory {
  pool: pg.Pool;
  counters: BenchCounters;
  verifier: TokenVerifier;
}

/** The context of one request that carried `authorization` (the header's value, if any). */
export function createPeerContext(factory: PeerContextFactory, authorization: string | undefined): PeerContext {
  const db = createRequestDb(factory.pool, () => {
    factory.counters.requests += 1;
  });
  let claims: Promise<Claims> | undefined;
  return {
    db,
    loaders: createLoaders(db),
    caller: () => (claims ??= factory.verifier.verify(authorization)),
  };
}
