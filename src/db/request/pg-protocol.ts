import pg from 'pg';

/*
 * The two ways poolgraph sends a statement that pg's public API has no call for, and the casts
 * they need, kept here so that nothing else depends on pg's internals: a named prepared statement
 * made without a config object, and a statement with a parameterless one pipelined before it.
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
 * Runs `prefix` (no parameters, no rows) and then `sql` in ONE round trip and one implicit
 * transaction: Parse/Bind/Execute of both, then a single Sync, so PostgreSQL commits them
 * together and a transaction pooler keeps them on one server connection. PostgreSQL warns that
 * `SET LOCAL` is outside a transaction block, and applies it until that implicit transaction ends.
 */
export function queryWithPrefix(client: pg.PoolClient, prefix: string, sql: string, parameters: readonly unknown[]): Promise<pg.QueryResult> {
  return submitted(client, (done) => new PrefixedQuery(prefix, sql, [...parameters], done));
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
  parse(message: { text: string }): void;
  bind(message: Record<string, never>): void;
  execute(message: { portal: string }): void;
}

/** pg's `Query`, with the protocol step it runs for an extended-protocol statement. */
const PgQuery = pg.Query as unknown as new (config: pg.QueryConfig & { queryMode: 'extended'; callback: QueryCallback }) => {
  prepare(connection: ProtocolConnection): void;
};

/** A statement with another, parameterless one sent before it in the same round trip. */
class PrefixedQuery extends PgQuery {
  readonly #prefix: string;

  constructor(prefix: string, text: string, values: unknown[], callback: QueryCallback) {
    super({ text, values, queryMode: 'extended', callback });
    this.#prefix = prefix;
  }

  override prepare(connection: ProtocolConnection): void {
    connection.parse({ text: this.#prefix });
    connection.bind({});
    connection.execute({ portal: '' });
    super.prepare(connection);
  }
}
