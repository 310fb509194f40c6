import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the subscriptions' hub tells its metrics (the shape of its `LiveObserver`). */
export interface LiveMetrics {
  subscribed(transport: string, delta: 1 | -1): void;
  eventsRead(count: number): void;
  delivered(count: number, lagMs: readonly number[]): void;
  dropped(): void;
}

/** From a tick on an idle server (a few ms) to a subscriber far behind. */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * Registers the live-update metrics on `registry`:
 * - `poolgraph_subscriptions{transport}` (gauge): subscriptions being served, by `sse`/`websocket`;
 * - `poolgraph_live_events_read_total`: outbox events the listener read;
 * - `poolgraph_live_deliveries_total`: results pushed to subscribers;
 * - `poolgraph_live_subscribers_dropped_total`: subscribers ended for not reading fast enough;
 * - `poolgraph_live_delivery_lag_seconds` (histogram): from the change's commit-time clock to the
 *   result's hand-over to its transport.
 */
export function createLiveMetrics(registry: Registry): LiveMetrics {
  const registers = [registry];
  const subscriptions = new Gauge({ name: 'poolgraph_subscriptions', help: 'Subscriptions being served, by transport.', labelNames: ['transport'] as const, registers });
  const eventsRead = new Counter({ name: 'poolgraph_live_events_read_total', help: 'Outbox events the live-update listener read.', registers });
  const deliveries = new Counter({ name: 'poolgraph_live_deliveries_total', help: 'Results pushed to subscribers.', registers });
  const dropped = new Counter({ name: 'poolgraph_live_subscribers_dropped_total', help: 'Subscribers ended for not reading their results fast enough.', registers });
  const lag = new Histogram({
    name: 'poolgraph_live_delivery_lag_seconds',
    help: 'From a change to items (its transaction clock) to its result handed to the transport.',
    buckets: LAG_BUCKETS,
    registers,
  });
  return {
    subscribed: (transport, delta) => subscriptions.inc({ transport }, delta),
    eventsRead: (count) => eventsRead.inc(count),
    delivered(count, lagMs) {
      deliveries.inc(count);
      for (const ms of lagMs) lag.observe(ms / 1000);
    },
    dropped: () => dropped.inc(),
  };
}
