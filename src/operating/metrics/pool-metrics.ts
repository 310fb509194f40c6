import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';

/** One pool whose metrics {@link registerPoolMetrics} registers, and its `pool` label value. */
export interface NamedPool {
  /** The `pool` label: `primary`, `replica`. */
  name: string;
  pool: pg.Pool;
}

/**
 * Registers the pools' own metrics on `registry`, each series labelled with its pool's name
 * (`pool="primary"`, `pool="replica"`), and returns a function that detaches them from the pools
 * (a pool lent by a host outlives the server).
 *
 * - gauges read at scrape time from pg-pool's counters, so they cost nothing between scrapes:
 *   `poolgraph_pool_connections` (open, idle ones included), `_idle`, `_in_use`,
 *   `poolgraph_pool_waiting` (callers queued for a connection), and the configured
 *   `poolgraph_pool_size` (`POOL_SIZE`, pg-pool `min`) and `poolgraph_pool_max`
 *   (`POOL_SIZE + POOL_MAX_OVERFLOW`);
 * - counters fed by pg-pool's events: `poolgraph_pool_connections_opened_total` (`connect`) and
 *   `poolgraph_pool_connections_closed_total` (`remove`: idle timeout, recycling, a broken
 *   connection destroyed). Their difference is the open count; their rates show churn. Both show
 *   from the start, at 0, for every pool.
 *
 * Waiting for and holding connections is measured per request, from the scope's stats: see
 * `request-metrics.ts`.
 */
export function registerPoolMetrics(registry: Registry, pools: readonly NamedPool[]): () => void {
  const registers = [registry];
  const labelNames = ['pool'] as const;
  const gauge = (name: string, help: string, read: (pool: pg.Pool) => number) => {
    const metric: Gauge<'pool'> = new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        for (const { name: label, pool } of pools) metric.set({ pool: label }, read(pool));
      },
    });
  };
  gauge('poolgraph_pool_connections', 'Connections the pool holds open (idle or in use).', (pool) => pool.totalCount);
  gauge('poolgraph_pool_connections_idle', 'Open connections no request holds.', (pool) => pool.idleCount);
  gauge('poolgraph_pool_connections_in_use', 'Connections requests hold now.', (pool) => pool.totalCount - pool.idleCount);
  gauge('poolgraph_pool_waiting', 'Callers waiting for a connection because every one is in use.', (pool) => pool.waitingCount);
  gauge('poolgraph_pool_size', 'Connections kept open (POOL_SIZE).', (pool) => pool.options.min ?? 0);
  gauge('poolgraph_pool_max', 'Most connections the pool may hold (POOL_SIZE + POOL_MAX_OVERFLOW).', (pool) => pool.options.max ?? 10);

  const opened = new Counter({
    name: 'poolgraph_pool_connections_opened_total',
    help: 'Connections the pool opened.',
    labelNames,
    registers,
  });
  const closed = new Counter({
    name: 'poolgraph_pool_connections_closed_total',
    help: 'Connections the pool closed or destroyed (idle timeout, recycling, broken).',
    labelNames,
    registers,
  });
  const detach = pools.map(({ name, pool }) => {
    const labels = { pool: name };
    opened.inc(labels, 0);
    closed.inc(labels, 0);
    const onConnect = () => opened.inc(labels);
    const onRemove = () => closed.inc(labels);
    pool.on('connect', onConnect);
    pool.on('remove', onRemove);
    return () => {
      pool.off('connect', onConnect);
      pool.off('remove', onRemove);
    };
  });
  return () => {
    for (const off of detach) off();
  };
}
