import pg from 'pg';
import type { PeerConfig } from './config.js';
import type { BenchCounters } from './bench-process.js';

/**
 * The `application_name` of the peers' connections: poolgraph's own (`APPLICATION_NAME` in
 * src/db/pools/pool.ts), because the bench counts the servers' connections by it.
 */
export const APPLICATION_NAME = 'poolgraph';

/**
 * Creates the process's one `pg.Pool`, sized as the bench sizes poolgraph's (`POOL_SIZE` kept
 * open, `POOL_MAX_OVERFLOW` more under load), with the `error` listener every pool needs (an idle
 * connection that dies emits `error`; without a listener Node would crash).
 *
 * Every statement any connection sends adds one to `counters.statements`: the wrapper is put on
 * each connection as it opens, so it sees what the server's own code sends and what a library
 * sends on its behalf (PostGraphile's `begin`, `set_config` and `commit`). It costs an increment
 * per statement.
 */
export function createPeerPool(config: PeerConfig, counters: BenchCounters): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    application_name: APPLICATION_NAME,
    // `min` keeps the warmed-up connections open when idle, as poolgraph's pool does.
    min: config.poolSize,
    max: config.poolSize + config.poolMaxOverflow,
  });
  pool.on('error', (error) => process.stderr.write(`peer server: an idle connection failed: ${error.message}\n`));
  pool.on('connect', (client) => {
    const query = client.query;
    // pg's `query` has a dozen overloads; the wrapper forwards whatever it was called with.
    client.query = function countedQuery(this: pg.PoolClient, ...args: unknown[]) {
      counters.statements += 1;
      return Reflect.apply(query, this, args) as unknown;
    } as typeof client.query;
  });
  return pool;
}

/** Opens `count` connections at once and gives them back, so that no measured request pays for one. */
export async function warmUpPool(pool: pg.Pool, count: number): Promise<void> {
  const opened = await Promise.allSettled(Array.from({ length: count }, () => pool.connect()));
  for (const result of opened) if (result.status === 'fulfilled') result.value.release();
  const failed = opened.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}
