import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsListener } from '../../src/operating/metrics/metrics-listener.js';
import { MAX_OPERATION_NAMES } from '../../src/graphql/plugins/use-metrics.js';
import { scrape } from '../support/metrics.js';
import { markedLabels } from '../support/test-schema.js';
import { eventually, startTestServer, useTestEnvironment } from '../support/server.js';
import { W1, W2 } from '../support/workloads.js';

const POOL = { size: 2, maxOverflow: 3, idleTimeoutMs: 500 };
/** The pool metrics' label for the one pool of a server without a read replica. */
const PRIMARY = { pool: 'primary' };

const t = useTestEnvironment(POOL);

const metricsUrl = () => new URL('/metrics', t.server.url).toString();

describe('GET /metrics (Prometheus)', () => {
  it('keeps at most MAX_OPERATION_NAMES client-chosen operation names as label values', async () => {
    // Each distinct name would otherwise be a new time series kept for the life of the process.
    // A server of its own, so the other tests' names keep their labels.
    const flooded = await startTestServer(t.database.url);
    let metrics;
    try {
      for (let n = 0; n < MAX_OPERATION_NAMES + 20; n += 1) {
        await flooded.graphql(`query Flood${n} { __typename }`);
        await flooded.graphql(`query FloodBad${n} { nope }`);
      }
      metrics = await scrape(new URL('/metrics', flooded.url).toString());
    } finally {
      await flooded.close();
    }
    for (const name of ['graphql_envelop_request_duration_count', 'graphql_yoga_http_duration_count', 'poolgraph_graphql_errors_total']) {
      const names = new Set(
        metrics.samples.filter((sample) => sample.name === name).map((sample) => sample.labels.operationName),
      );
      expect(names.size, name).toBeLessThanOrEqual(MAX_OPERATION_NAMES + 1);
      expect(names.has('other'), name).toBe(true);
    }
  });

  it('after a W2 request, shows the statements it ran and the loader batches it dispatched', async () => {
    const before = await scrape(metricsUrl());
    const { response, stats } = await t.server.measure(W2);
    const after = await scrape(metricsUrl());
    expect(response.status).toBe(200);
    expect(stats?.statements).toBe(2);

    // The statements histogram moved by exactly this request: one observation of 2.
    expect(after.delta(before, 'poolgraph_request_statements_count')).toBe(1);
    expect(after.delta(before, 'poolgraph_request_statements_sum')).toBe(stats?.statements);
    expect(after.delta(before, 'poolgraph_request_statements_bucket', { le: '1' })).toBe(0);
    expect(after.delta(before, 'poolgraph_request_statements_bucket', { le: '2' })).toBe(1);
    expect(after.delta(before, 'poolgraph_requests_total', { connection: 'taken' })).toBe(1);

    // 20 categories: one batch of 20 item pages. Their counts came with the list and their
    // categories were primed by it, so itemCountByCategory and categoryById dispatched nothing.
    const loader = 'itemsByCategory';
    expect(after.delta(before, 'poolgraph_loader_batches_total', { loader })).toBe(1);
    expect(after.delta(before, 'poolgraph_loader_batch_size_count', { loader })).toBe(1);
    expect(after.delta(before, 'poolgraph_loader_batch_size_sum', { loader })).toBe(20);
    expect(after.delta(before, 'poolgraph_loader_batch_size_bucket', { loader, le: '10' })).toBe(0);
    expect(after.delta(before, 'poolgraph_loader_batch_size_bucket', { loader, le: '20' })).toBe(1);
    expect(after.delta(before, 'poolgraph_loader_batches_total', { loader: 'itemCountByCategory' })).toBe(0);
    expect(after.delta(before, 'poolgraph_loader_batches_total', { loader: 'categoryById' })).toBe(0);
    expect(after.delta(before, 'poolgraph_loader_batches_total', { loader: 'itemById' })).toBe(0);

    // The connection it held, and how long it waited for it, once each.
    expect(after.delta(before, 'poolgraph_pool_acquire_wait_seconds_count')).toBe(1);
    expect(after.delta(before, 'poolgraph_pool_connection_hold_seconds_count')).toBe(1);
    expect(after.delta(before, 'poolgraph_pool_connection_hold_seconds_sum')).toBeCloseTo((stats?.heldMs ?? 0) / 1000, 6);
    expect(after.delta(before, 'poolgraph_pool_acquire_timeouts_total')).toBe(0);

    // graphql-yoga's prometheus plugin: the operation's duration, and the HTTP request's.
    const operation = { operationName: 'Anonymous', operationType: 'query' };
    expect(after.delta(before, 'graphql_envelop_request_duration_count', operation)).toBe(1);
    expect(after.delta(before, 'graphql_yoga_http_duration_count', { ...operation, statusCode: '200' })).toBe(1);
    expect(after.samples.some((sample) => 'url' in sample.labels)).toBe(false);
  });

  it('a document refused after parsing (an operationName it lacks, a mutation by GET) is observed under its operation', async () => {
    const before = await scrape(metricsUrl());
    const missing = await t.server.graphql('query Named { __typename }', undefined, {
      body: JSON.stringify({ query: 'query Named { __typename }', operationName: 'Missing' }),
    });
    expect(missing.status).toBe(400);
    const query = encodeURIComponent('mutation Sneaky { createItem(input: { number: 1 }) { id } }');
    const byGet = await fetch(`${t.server.url}?query=${query}`, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
    expect(byGet.status).toBe(405);
    const after = await scrape(metricsUrl());

    // Neither ran, but both parsed: the HTTP request is timed under the operation it named.
    const unresolved = { operationName: 'Anonymous', operationType: 'unknown' };
    expect(after.delta(before, 'graphql_yoga_http_duration_count', { ...unresolved, statusCode: '400' })).toBe(1);
    expect(after.delta(before, 'poolgraph_graphql_errors_total', { operationName: 'Anonymous', code: 'OPERATION_RESOLUTION_FAILURE' })).toBe(1);
    const sneaky = { operationName: 'Sneaky', operationType: 'mutation' };
    expect(after.delta(before, 'graphql_yoga_http_duration_count', { ...sneaky, method: 'GET', statusCode: '405' })).toBe(1);
    expect(after.delta(before, 'poolgraph_graphql_errors_total', { operationName: 'Sneaky' })).toBe(1);
    expect(after.delta(before, 'graphql_envelop_request_duration_count')).toBe(0);
  });

  it('an operation abandoned when its client left is not counted as executed', async () => {
    // Two operations: graphql-js's executor runs it, and stops at the abort (graphql-jit would not).
    const before = await scrape(metricsUrl());
    const controller = new AbortController();
    const request = fetch(t.server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      // The executor stops between the two fields (a resolver under way is not interrupted).
      body: JSON.stringify({
        query: 'mutation Left { pause(seconds: 0.3) mark(label: "after-abort-metrics") } query Other { __typename }',
        operationName: 'Left',
      }),
      signal: controller.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await expect(request).rejects.toThrow();
    // The paused field ends 0.2 s after the abort; its operation's result comes back by then.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await scrape(metricsUrl());
    expect(after.delta(before, 'graphql_envelop_request_duration_count', { operationName: 'Left' })).toBe(0);
    expect(after.delta(before, 'graphql_envelop_request', { operationName: 'Left' })).toBe(0);
    expect(markedLabels).not.toContain('after-abort-metrics');
  });

  it('a request that runs no SQL counts as one without a connection', async () => {
    const before = await scrape(metricsUrl());
    await t.server.graphql('{ __typename }');
    const after = await scrape(metricsUrl());
    expect(after.delta(before, 'poolgraph_requests_total', { connection: 'none' })).toBe(1);
    expect(after.delta(before, 'poolgraph_requests_total', { connection: 'taken' })).toBe(0);
    expect(after.delta(before, 'poolgraph_request_statements_bucket', { le: '0' })).toBe(1);
    expect(after.delta(before, 'poolgraph_pool_acquire_wait_seconds_count')).toBe(0);
  });

  /**
   * A scrape once every connection the pool dropped is counted as closed. pg-pool takes a
   * connection out of `totalCount` at once but emits `remove` (what the closed counter counts) only
   * when the connection's end has completed, a round trip later: on a busy machine a scrape between
   * the two saw 3 opened and 1 closed for one more open connection. Fails the test if the counters
   * never agree with the open count within 5 s.
   */
  async function settledScrape() {
    let metrics = await scrape(metricsUrl());
    const agrees = () =>
      metrics.value('poolgraph_pool_connections_opened_total', PRIMARY) - metrics.value('poolgraph_pool_connections_closed_total', PRIMARY) ===
      metrics.value('poolgraph_pool_connections', PRIMARY);
    const settled = await eventually(async () => {
      metrics = await scrape(metricsUrl());
      return agrees();
    }, 5_000);
    expect(settled, 'opened_total - closed_total never matched the open connections').toBe(true);
    return metrics;
  }

  it('shows the pool: configured size and max, open, idle and in-use connections, opened and closed', async () => {
    const { pool } = t.server.server;
    const metrics = await scrape(metricsUrl());
    // Every pool series names its pool; without a replica there is only the primary.
    const poolMetrics = ['connections', 'connections_idle', 'connections_in_use', 'waiting', 'size', 'max', 'connections_opened_total', 'connections_closed_total'];
    const poolSeries = metrics.samples.filter((sample) => poolMetrics.some((name) => sample.name === `poolgraph_pool_${name}`));
    expect(poolSeries).toHaveLength(poolMetrics.length);
    expect(new Set(poolSeries.map((sample) => sample.labels.pool))).toEqual(new Set(['primary']));
    expect(metrics.value('poolgraph_pool_size', PRIMARY)).toBe(POOL.size);
    expect(metrics.value('poolgraph_pool_max', PRIMARY)).toBe(POOL.size + POOL.maxOverflow);

    // Use all 5 connections at once, then let the 3 overflow ones close after the idle timeout.
    const before = await settledScrape();
    const holders = Array.from({ length: 5 }, () => t.server.graphql('{ sleep(seconds: 0.6) }'));
    expect(await eventually(() => pool.totalCount === 5 && pool.idleCount === 0)).toBe(true);
    const busy = await scrape(metricsUrl());
    expect(busy.value('poolgraph_pool_connections', PRIMARY)).toBe(5);
    expect(busy.value('poolgraph_pool_connections_in_use', PRIMARY)).toBe(5);
    expect(busy.value('poolgraph_pool_connections_idle', PRIMARY)).toBe(0);
    await Promise.all(holders);
    expect(await eventually(() => pool.totalCount === POOL.size, 5_000)).toBe(true);

    const after = await settledScrape();
    expect(after.value('poolgraph_pool_connections', PRIMARY)).toBe(POOL.size);
    expect(after.value('poolgraph_pool_connections_idle', PRIMARY)).toBe(POOL.size);
    const opened = after.delta(before, 'poolgraph_pool_connections_opened_total', PRIMARY);
    const closed = after.delta(before, 'poolgraph_pool_connections_closed_total', PRIMARY);
    expect(opened - closed).toBe(after.value('poolgraph_pool_connections', PRIMARY) - before.value('poolgraph_pool_connections', PRIMARY));
    expect(closed).toBeGreaterThanOrEqual(3);
    // Since the server started, what was opened and not closed is what is open.
    expect(after.value('poolgraph_pool_connections_opened_total', PRIMARY) - after.value('poolgraph_pool_connections_closed_total', PRIMARY)).toBe(
      POOL.size,
    );
  });

  it('counts errors by operation name and extensions.code, masked ones as INTERNAL_SERVER_ERROR', async () => {
    const before = await scrape(metricsUrl());
    await t.server.graphql('query BadId { item(id: "not-a-number") { id } }');
    await t.server.graphql('query Hidden { failingAfterSql }');
    await t.server.graphql('query Misspelt { itemz { id } }');
    await t.server.graphql('{ items { number } }');
    const after = await scrape(metricsUrl());
    const errors = (operationName: string, code: string) =>
      after.delta(before, 'poolgraph_graphql_errors_total', { operationName, code });
    expect(errors('BadId', 'BAD_USER_INPUT')).toBe(1);
    expect(errors('Hidden', 'INTERNAL_SERVER_ERROR')).toBe(1);
    expect(errors('Misspelt', 'GRAPHQL_VALIDATION_FAILED')).toBe(1);
    const total = after.samples
      .filter((sample) => sample.name === 'poolgraph_graphql_errors_total')
      .reduce((sum, sample) => sum + sample.value, 0);
    const totalBefore = before.samples
      .filter((sample) => sample.name === 'poolgraph_graphql_errors_total')
      .reduce((sum, sample) => sum + sample.value, 0);
    expect(total - totalBefore).toBe(3);
  });

  it('keeps one registry per server: a second server in the process counts only its own requests', async () => {
    const second = await startTestServer(t.database.url, { size: 1, maxOverflow: 0 });
    try {
      const secondUrl = new URL('/metrics', second.url).toString();
      const before = await scrape(secondUrl);
      await t.server.graphql(W1);
      const after = await scrape(secondUrl);
      expect(after.delta(before, 'poolgraph_request_statements_count')).toBe(0);
      expect(after.value('poolgraph_pool_max', PRIMARY)).toBe(1);
      expect(second.server.metrics).not.toBe(t.server.server.metrics);
      // Nothing lands in prom-client's global registry.
      expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
    } finally {
      await second.close();
    }
  });

  it('can be turned off: nothing recorded, and no /metrics', async () => {
    const off = await startTestServer(t.database.url, { size: 1, maxOverflow: 0 }, { metrics: { enabled: false } });
    try {
      expect(off.server.metrics).toBeUndefined();
      expect((await off.graphql(W1)).status).toBe(200);
      expect((await fetch(new URL('/metrics', off.url))).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  it('can be served on a listener of its own (METRICS_PORT) instead of the app', async () => {
    const apart = await startTestServer(t.database.url, { size: 1, maxOverflow: 0 }, { metrics: { endpoint: false } });
    const registry = apart.server.metrics;
    if (!registry) throw new Error('metrics are on by default');
    const http = createHttpServer(createMetricsListener(registry));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      await apart.graphql(W1);
      expect((await fetch(new URL('/metrics', apart.url))).status).toBe(404);
      const port = (http.address() as AddressInfo).port;
      const metrics = await scrape(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.value('poolgraph_request_statements_count')).toBe(1);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await apart.close();
    }
  });
});
