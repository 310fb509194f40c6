import type pg from 'pg';
import type { Logger } from 'pino';

/** Rows one DELETE removes: a long backlog goes in several short statements, never one long lock. */
const BATCH = 1000;

/** Options of {@link startOutboxRetention}. */
export interface OutboxRetentionOptions {
  /** `SUBSCRIPTION_RETENTION_S`: events older than this are deleted. */
  retentionS: number;
  /** How often to sweep. @default half the retention, at most 60 s */
  intervalMs?: number;
  logger: Logger;
}

/**
 * Keeps the outbox (`item_events`) short: every `intervalMs`, deletes the events older than
 * `retentionS`, in batches of {@link BATCH}, through `pool` (one connection, briefly). Events are
 * written whether or not anyone subscribes, so this runs whenever the server does. A subscriber's
 * listener that was away longer than the retention misses what was deleted meanwhile (the README
 * says so). Returns a function that stops it.
 */
export function startOutboxRetention(pool: pg.Pool, options: OutboxRetentionOptions): () => void {
  const intervalMs = options.intervalMs ?? Math.min(60_000, Math.max(1_000, (options.retentionS * 1000) / 2));
  let running = false;
  const sweep = async () => {
    if (running) return;
    running = true;
    try {
      for (let deleted = BATCH; deleted === BATCH; ) {
        const result = await pool.query(
          `delete from item_events where id in (
             select id from item_events where at < now() - make_interval(secs => $1) order by id limit ${BATCH})`,
          [options.retentionS],
        );
        deleted = result.rowCount ?? 0;
      }
    } catch (error) {
      options.logger.warn({ err: error }, 'deleting old live-update events failed; trying again later');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
