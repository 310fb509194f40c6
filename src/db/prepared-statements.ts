import type pg from 'pg';

/**
 * The most distinct statement texts given a name. poolgraph's repositories produce a bounded set
 * (a few hundred at most: the shapes of each read and write, times the column subsets of the
 * lists); the bound keeps a host that runs statements of its own through `db` (schema extensions)
 * from filling every connection with prepared statements. Texts seen after it run unnamed.
 */
const MAX_PREPARED_STATEMENTS = 500;

/** Statement text → its name, the same on every connection of the process. */
const names = new Map<string, string>();

/**
 * `sql` as a named prepared statement: pg sends its Parse once per connection (it remembers the
 * names each connection has parsed) and PostgreSQL keeps its plan, so each later run of the same
 * text on that connection is Bind/Execute only. PostgreSQL spent 0.06-0.08 ms planning each of
 * W2's two statements, a sizeable part of its CPU on a box it shares with the server
 * (docs/benchmarks-profile.md).
 *
 * Only for parameterised statements (one statement each: the extended protocol takes no more),
 * and never behind a transaction pooler, which may run each Bind on a server connection that
 * never saw the Parse (see `RequestScopeOptions.preparedStatements`).
 */
export function preparedQuery(sql: string, values: unknown[]): pg.QueryConfig {
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= MAX_PREPARED_STATEMENTS) return { text: sql, values };
    name = `poolgraph_${names.size + 1}`;
    names.set(sql, name);
  }
  return { name, text: sql, values };
}
