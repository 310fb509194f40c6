import pg from 'pg';

/*
 * The two ways poolgraph sends a statement that pg's public API has no call for, and the casts
 * they need, kept here so that nothing else depends on pg's internals: a named prepared statement
 * made without a config object, and a statement with others pipelined before it.
 */

/** What pg calls when a query it was handed finishes (several results for several statements). */
type QueryCallback = (error: Error | null | undefined, result?: pg.QueryResult | pg.QueryResult[]) => void;

/**
 * Runs `sql` as the named prepared statement `name`. Given a config object (`{ name, text,
 * values }`), pg copies it property by property (`cloneQueryConfig`), a cost paid on every
 * statement; its `Query` made from the text and values costs next to nothing, and the name is
 * then set as its constructor would have set it from a config.
 */
export function queryNamed(client: pg.PoolClient, name: string, sql: string, values: unknown[]): Promise<pg.QueryResult> {
  return submitted(client, (done) => {
    const query = new pg.Query(sql, values, done);
    (query as { name?: string }).name = name;
    return query;
  });
}

/**
 * A statement sent before another in the same round trip (see {@link queryWithPrefix}); its rows,
 * if any, are dropped. `name`: a named prepared statement, parsed once per connection (only where
 * each pooled connection is one PostgreSQL session, as for `queryNamed`).
 */
export interface PrefixStatement {
  readonly text: string;
  readonly values?: readonly unknown[];
  readonly name?: string;
}

/**
 * Runs the `prefix` statements and then `sql` in ONE round trip and one implicit transaction:
 * Parse/Bind/Execute of each, then a single Sync, so PostgreSQL commits them together and a
 * transaction pooler keeps them on one server connection. What they set with `SET LOCAL` or
 * `set_config(…, true)` holds for `sql` and ends with that implicit transaction (a `BEGIN` among
 * them turns it into a transaction block that goes on). `name`: run `sql` as that named prepared
 * statement (Parse once per connection, as {@link queryNamed}). Resolves to `sql`'s result only.
 */
export function queryWithPrefix(
  client: pg.PoolClient,
  prefix: readonly PrefixStatement[],
  sql: string,
  parameters: readonly unknown[],
  name?: string,
): Promise<pg.QueryResult> {
  return submitted(client, (done) => new PrefixedQuery(prefix, name, sql, [...parameters], done));
}

/**
 * Submits the `pg.Query` that `make` builds around the callback it is given, and returns its
 * result as a promise (of a round trip of several statements, the last one's: the caller's).
 * Errors get a stack that leads back here, as pg gives those of its own promises, rather than one
 * that ends in `TCP.onStreamRead`.
 */
function submitted(client: pg.PoolClient, make: (done: QueryCallback) => object): Promise<pg.QueryResult> {
  return new Promise<pg.QueryResult>((resolve, reject) => {
    const query = make((error, result) => {
      if (error) reject(error);
      else resolve((Array.isArray(result) ? result[result.length - 1] : result) as pg.QueryResult);
    });
    // A Submittable: pg runs it as it is, without copying a config.
    (client.query as unknown as (query: object) => unknown)(query);
  }).catch((error: unknown) => {
    if (error instanceof Error) Error.captureStackTrace(error);
    throw error;
  });
}

/** pg's connection, as far as {@link PrefixedQuery} writes protocol messages to it. */
interface ProtocolConnection {
  parse(message: { text: string; name?: string }): void;
  bind(message: { statement?: string; values?: readonly unknown[] }): void;
  execute(message: { portal: string }): void;
  /** Statement names this connection has parsed (pg keeps them per connection), with their text. */
  parsedStatements: Record<string, string>;
}

/** pg's `Query`, with the protocol steps {@link PrefixedQuery} takes part in. */
const PgQuery = pg.Query as unknown as new (text: string, values: unknown[], callback: QueryCallback) => {
  name: string | undefined;
  queryMode: string | undefined;
  prepare(connection: ProtocolConnection): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: ProtocolConnection): void;
};

/**
 * A statement with others sent before it in the same round trip. The prefix statements are not
 * described, so a row they return (`select set_config(…)`) comes without its columns: their rows
 * and completions are skipped, and the result is the statement's own.
 */
class PrefixedQuery extends PgQuery {
  readonly #prefix: readonly PrefixStatement[];
  /** Prefix statements whose CommandComplete has not arrived yet. */
  #pending: number;

  constructor(prefix: readonly PrefixStatement[], name: string | undefined, text: string, values: unknown[], callback: QueryCallback) {
    // From the text, not a config object, which pg would copy property by property (see queryNamed).
    super(text, values, callback);
    this.queryMode = 'extended';
    this.name = name;
    this.#prefix = prefix;
    this.#pending = prefix.length;
  }

  override prepare(connection: ProtocolConnection): void {
    for (const { text, values, name } of this.#prefix) {
      if (name === undefined) {
        connection.parse({ text });
        connection.bind(values ? { values } : {});
      } else {
        if (connection.parsedStatements[name] === undefined) {
          connection.parse({ text, name });
          // Recorded now: pg records names on ParseComplete, under the active query's name (the
          // main statement's). This fixed text does not fail to parse; should the round trip fail
          // before its Parse ran (an aborted transaction), the named statement is missing and its
          // Bind fails as stale (26000), which marks the connection not to be pooled again.
          connection.parsedStatements[name] = text;
        }
        connection.bind(values ? { statement: name, values } : { statement: name });
      }
      connection.execute({ portal: '' });
    }
    super.prepare(connection);
  }

  override handleDataRow(message: unknown): void {
    if (this.#pending === 0) super.handleDataRow(message);
  }

  override handleCommandComplete(message: unknown, connection: ProtocolConnection): void {
    if (this.#pending > 0) this.#pending -= 1;
    else super.handleCommandComplete(message, connection);
  }
}
