import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { scrape } from '../support/metrics.js';
import { bannerPort, eventually, npmStart, output, stopWithSigterm } from '../support/npm-start.js';
import { W1 } from '../support/workloads.js';

/**
 * What an operator runs against the real `npm start`: the probes, `/metrics` on `METRICS_PORT`
 * (and not on the public port), one JSON log line per request on stdout, pretty lines on request.
 */

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

const METRICS_BANNER = /^ {2}metrics: {2}http:\/\/localhost:(\d+)\/metrics$/m;

async function post(port: number, query: string, requestId: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ query }),
  });
}

describe('operating npm start', () => {
  it('serves /health and /ready, metrics on METRICS_PORT only, and logs each request as one JSON line', { timeout: 60_000 }, async () => {
    const run = npmStart(undefined, { DATABASE_URL: database.url, METRICS_PORT: '0', POOL_SIZE: '2' });
    const port = await bannerPort(run);
    const metricsPort = Number(METRICS_BANNER.exec(run.stdout)?.[1]);
    expect(metricsPort, output(run)).toBeGreaterThan(0);
    expect(metricsPort).not.toBe(port);

    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, pool: { max: 12 } });

    const response = await post(port, W1, 'ops-test-1');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('ops-test-1');

    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    const metrics = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.value('poolgraph_pool_size')).toBe(2);
    expect(metrics.value('poolgraph_pool_max')).toBe(12);
    expect(metrics.value('poolgraph_request_statements_count')).toBe(1);
    expect(metrics.value('poolgraph_request_statements_sum')).toBe(1);
    // The process's own metrics (prom-client's defaults) are there too.
    expect(metrics.has('process_cpu_seconds_total')).toBe(true);

    // stdout is a pipe here, not a terminal: JSON lines.
    const logged = await eventually(async () => run.stdout.includes('"requestId":"ops-test-1"'), 5_000);
    expect(logged, output(run)).toBe(true);
    const line = run.stdout.split('\n').find((candidate) => candidate.includes('"requestId":"ops-test-1"')) ?? '';
    expect(JSON.parse(line)).toMatchObject({ msg: 'request', statements: 1, connection: 'taken', status: 200 });

    await stopWithSigterm(run);
  });

  it('writes pretty lines with LOG_FORMAT=pretty (what a terminal gets by default)', { timeout: 60_000 }, async () => {
    const run = npmStart(undefined, { DATABASE_URL: database.url, LOG_FORMAT: 'pretty', METRICS_ENABLED: 'false' });
    const port = await bannerPort(run);
    expect(run.stdout).toContain('  metrics:  off (METRICS_ENABLED=false)');
    await post(port, W1, 'ops-pretty-1');
    expect(await eventually(async () => run.stdout.includes('ops-pretty-1'), 5_000), output(run)).toBe(true);
    // eslint-disable-next-line no-control-regex
    const plain = run.stdout.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toMatch(/INFO.*: request\n\s+requestId: "ops-pretty-1"/);
    expect(plain).not.toContain('"requestId":');
    await stopWithSigterm(run);
  });
});
