import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Registers the pool's own metrics on `registry` and returns a function that detaches them from
 * the pool (a pool lent by a host outlives the server).
 *
 * - gauges read at scrape time from pg-pool's counters, so they cost nothing between scrapes:
 *   `poolgraph_pool_connections` (open, idle ones included), `_idle`, `_in_use`,
 *   `poolgraph_pool_waiting` (callers queued for a connection), and the configured
 *   `poolgraph_pool_size` (`POOL_SIZE`, pg-pool `min`) and `poolgraph_pool_max`
 *   (`POOL_SIZE + POOL_MAX_OVERFLOW`);
 * - counters fed by pg-pool's events: `poolgraph_pool_connections_opened_total` (`connect`) and
 *   `poolgraph_pool_connections_closed_total` (`remove`: idle timeout, recycling, a broken
 *   connection destroyed). Their difference is the open count; their rates show churn.
 *
 * Waiting for and holding connections is measured per request, from the scope's stats: see
 * `request-metrics.ts`.
 */
export function registerPoolMetrics(registry: Registry, pool: pg.Pool): () => void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  gauge('poolgraph_pool_connections', 'Connections the pool holds open (idle or in use).', () => pool.totalCount);
  gauge('poolgraph_pool_connections_idle', 'Open connections no request holds.', () => pool.idleCount);
  gauge('poolgraph_pool_connections_in_use', 'Connections requests hold now.', () => pool.totalCount - pool.idleCount);
  gauge('poolgraph_pool_waiting', 'Callers waiting for a connection because every one is in use.', () => pool.waitingCount);
  gauge('poolgraph_pool_size', 'Connections kept open (POOL_SIZE).', () => pool.options.min ?? 0);
  gauge('poolgraph_pool_max', 'Most connections the pool may hold (POOL_SIZE + POOL_MAX_OVERFLOW).', () => pool.options.max ?? 10);

  const opened = new Counter({
    name: 'poolgraph_pool_connections_opened_total',
    help: 'Connections the pool opened.',
    registers,
  });
  const closed = new Counter({
    name: 'poolgraph_pool_connections_closed_total',
    help: 'Connections the pool closed or destroyed (idle timeout, recycling, broken).',
    registers,
  });
  const onConnect = () => opened.inc();
  const onRemove = () => closed.inc();
  pool.on('connect', onConnect);
  pool.on('remove', onRemove);
  return () => {
    pool.off('connect', onConnect);
    pool.off('remove', onRemove);
  };
}
