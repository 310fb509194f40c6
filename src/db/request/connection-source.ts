import type pg from 'pg';

/**
 * Where a request scope takes its connection: a pool, or a source (the replica router) that may
 * hand read-only operations a connection to a read replica.
 */
export interface ConnectionSource {
  /** Takes a connection; a `readOnly` scope may be given one to a read replica. */
  connect(readOnly: boolean): Promise<pg.PoolClient>;
  /**
   * Told when a connection it handed out turned out to be broken (the scope then destroys it and,
   * for a first read, asks for another), so a source can stop using a replica that went away.
   */
  connectionFailed?(client: pg.PoolClient, error: unknown): void;
}

/** A {@link ConnectionSource} over one pool: every scope takes its connection from it. */
export function poolSource(pool: pg.Pool): ConnectionSource {
  return { connect: () => pool.connect() };
}
