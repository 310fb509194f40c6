import pg from 'pg';

/**
 * Runs one statement on a connection of its own, closed on every path: for the cluster's own
 * checks (is it up, is it streaming), never for load. Uses the simple query protocol when there
 * are no parameters, which PgBouncer's admin console requires.
 */
export async function queryOnce<Row extends pg.QueryResultRow>(
  connectionString: string,
  text: string,
  params?: unknown[],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000 });
  // A server that ends the connection while we hold it must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<Row>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Credentials and address of one database on one server. */
export interface DatabaseEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** `postgres://user:password@host:port/database` for `endpoint`. */
export function endpointUrl(endpoint: DatabaseEndpoint): string {
  const { host, port, database, user, password } = endpoint;
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
}
