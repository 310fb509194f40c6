import type { Executor } from './request-db.js';

/**
 * Hands the caller's verified claims to PostgreSQL for the rest of the transaction, as
 * PostgREST and PostGraphile do: migration 0002's row-level security policies read them back with
 * `current_setting('request.jwt.claims', true)`. `true`: local to the transaction, so the
 * connection carries nothing to the next request that borrows it.
 */
export async function setRequestClaims(tx: Executor, claims: object): Promise<void> {
  await tx.query("select set_config('request.jwt.claims', $1, true)", [JSON.stringify(claims)]);
}
