import type pg from 'pg';

/** Runs one SQL statement and returns its rows: what a repository function needs. */
export interface Executor {
  query<Row extends pg.QueryResultRow>(text: string, values: readonly unknown[]): Promise<Row[]>;
}

/** The database as one request sees it: statements on the pool, or a transaction on one connection. */
export interface RequestDb extends Executor {
  /**
   * Runs `work` in one transaction on one connection (`begin`, its statements, `commit`; `rollback`
   * when it throws), then gives the connection back, on every path.
   */
  transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T>;
}

/**
 * The database of one request. Reads go through `pool.query` (a connection for the one statement;
 * what a pg user writes for independent reads). `onFirstUse` is called once, before the request's
 * first statement: the bench counts the requests that ran SQL with it.
 */
export function createRequestDb(pool: pg.Pool, onFirstUse: () => void): RequestDb {
  let used = false;
  const touch = () => {
    if (used) return;
    used = true;
    onFirstUse();
  };
  return {
    async query<Row extends pg.QueryResultRow>(text: string, values: readonly unknown[]) {
      touch();
      return (await pool.query<Row>(text, [...values])).rows;
    },
    async transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
      touch();
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('begin');
        const result = await work({
          async query<Row extends pg.QueryResultRow>(text: string, values: readonly unknown[]) {
            return (await client.query<Row>(text, [...values])).rows;
          },
        });
        await client.query('commit');
        return result;
      } catch (error) {
        // A connection whose rollback failed is in an unknown state: destroy it, do not reuse it.
        await client.query('rollback').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      } finally {
        client.release(broken);
      }
    },
  };
}
