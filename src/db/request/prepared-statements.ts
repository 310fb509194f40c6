import pg from 'pg';
import { type PrefixStatement, queryNamed, queryWithPrefix } from './pg-protocol.js';

/**
 * The most statement texts given a name: poolgraph's own statements, registered by
 * `compiledOnce` (src/db/request/compiled-once.ts), a bounded set of a few dozen shapes.
 */
const MAX_PREPARED_STATEMENTS = 500;

/** Statement text → its name, the same on every connection of the process. */
const names = new Map<string, string>();

/**
 * Lets `sql` run as a named prepared statement (see {@link preparedName}). Only poolgraph's own
 * statements are registered, each one compiled by `compiledOnce` and naming its columns (never
 * `*`): a column added to a table while the server runs does not change what they return, which
 * PostgreSQL would refuse for a prepared statement ("cached plan must not change result type").
 * Statements a host sends through `db` (schema extensions) run unnamed, as before.
 */
export function registerPreparedStatement(sql: string): void {
  if (!names.has(sql) && names.size < MAX_PREPARED_STATEMENTS) names.set(sql, `poolgraph_${names.size + 1}`);
}

/**
 * The name `sql` runs under as a named prepared statement, or undefined for a statement that was
 * not registered. pg sends a named statement's Parse once per connection (it remembers the names
 * each connection has parsed) and PostgreSQL keeps its plan, so each later run of the same text on
 * that connection is Bind/Execute only: PostgreSQL plans it once per connection instead of at every
 * run (what that saves is measured in docs/benchmarks-profile.md).
 */
export function preparedName(sql: string): string | undefined {
  return names.get(sql);
}

/**
 * True for PostgreSQL's refusals of a named statement that did not run: its cached plan would
 * now return other columns or types (0A000, after an `ALTER TABLE` that changed a column it
 * returns), or the server no longer has it (26000: a pooler gave the connection another server
 * session). The statement can run again unnamed; the connection's record of what it parsed is
 * wrong and it should not be pooled again.
 */
export function isStalePreparedStatement(error: unknown): boolean {
  return (
    error instanceof pg.DatabaseError &&
    (error.code === '26000' || (error.code === '0A000' && /cached plan must not change result type/.test(error.message)))
  );
}

/**
 * Runs one statement on `client`: as the named prepared statement `name` when given, else
 * unnamed. A named statement PostgreSQL refuses as stale did not run: `onStale` is told (the
 * connection's record of what it parsed is wrong now, so it must not be pooled again) and,
 * outside a transaction block, the statement runs once more unnamed (`rerun`), with its `prefix`
 * again (statements pipelined before it in the same round trip: see `queryWithPrefix`). An object
 * rather than a callback, so that a request makes no closure for it.
 */
export async function runStatement(
  client: pg.PoolClient,
  name: string | undefined,
  sql: string,
  parameters: readonly unknown[],
  onStale: { staleStatement(error: unknown, rerun: boolean): void },
  prefix?: readonly PrefixStatement[],
): Promise<pg.QueryResult> {
  if (name === undefined) return prefix ? queryWithPrefix(client, prefix, sql, parameters) : client.query(sql, [...parameters]);
  try {
    return await (prefix ? queryWithPrefix(client, prefix, sql, parameters, name) : queryNamed(client, name, sql, [...parameters]));
  } catch (error) {
    if (!isStalePreparedStatement(error)) throw error;
    const rerun = client.getTransactionStatus() === 'I';
    onStale.staleStatement(error, rerun);
    if (!rerun) throw error;
    return prefix ? queryWithPrefix(client, prefix, sql, parameters) : client.query(sql, [...parameters]);
  }
}
