import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, startServer } from '../../tools/bench/processes.js';
import { openMany, openSse, type SseStream } from '../../tools/bench/sse-client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Issue 20's proof that an idle subscription costs a fixed amount of memory: 10,000 GraphQL-over-SSE
 * subscriptions, open and idle (no writes, so no events: only the transport's keep-alive every
 * 12 s), must leave the server's resident memory flat for 60 s.
 *
 * The server runs in a child process of its own (`tools/bench/server.ts --mode poolgraph`, the
 * server `npm start` runs, started by the bench's `startServer`), so that its RSS (`VmRSS` of
 * `/proc/<pid>/status`) is its alone; the subscriptions are held by this process (another one),
 * each on a socket of its own, read as they come (a client that keeps the stream open). 10,000
 * sockets on each side need 10,000 descriptors per process (and ~10,000 ephemeral ports):
 * `ulimit -n` here is checked first.
 */

const SUBSCRIBERS = 10_000;
const SAMPLE_SECONDS = 60;
/**
 * "Flat", honestly: RSS moves with the garbage collector (a young-generation collection frees a
 * few MB, the old generation grows in steps before a major one), so no two samples are equal and
 * a single sample proves nothing. Compared are the means of the first and the last 10 s, each over
 * ten samples: the last may exceed the first by at most 10 % of it. A leak of one small object
 * per subscriber per keep-alive (the only work an idle subscription makes: five pings each in 60 s)
 * is 10,000 x 5 x ~200 B = 10 MB, and one per subscription per second (a timer's closure, say)
 * 10,000 x 60 x 100 B = 60 MB: on a server of a few hundred MB the latter fails this, the former
 * may not (a per-ping leak shows only over hours: `npm run soak` is that tool). And the slope of a
 * least-squares line through all 60 samples must stay under 30 MB/min, the same growth over the
 * whole minute.
 */
const MAX_GROWTH = 0.1;
const MAX_SLOPE_MB_PER_MINUTE = 30;

function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) / 1024;
}

function openFileLimit(): number {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return match?.[1] === 'unlimited' ? Infinity : Number(match?.[1] ?? 0);
}

async function subscriptionsGauge(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.origin}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return [...text.matchAll(/^poolgraph_subscriptions\{transport="sse"\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** Least-squares slope of `values` sampled once a second, in units per minute. */
function slopePerMinute(values: readonly number[]): number {
  const xs = values.map((_, i) => i);
  const mx = mean(xs);
  const my = mean(values);
  const covariance = xs.reduce((sum, x, i) => sum + (x - mx) * ((values[i] ?? 0) - my), 0);
  const variance = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0);
  return (covariance / variance) * 60;
}

describe('10,000 idle subscribers', () => {
  let database: TestDatabase;
  let server: ServerProcess | undefined;
  const streams: SseStream[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    await server?.stop();
    await database?.drop();
  });

  it(`leave the server's RSS flat for ${SAMPLE_SECONDS} s`, { timeout: 240_000 }, async () => {
    // 10,000 sockets here, 10,000 in the server, each under this limit (the child inherits it).
    expect(openFileLimit(), 'ulimit -n must allow 10,000 sockets and some').toBeGreaterThan(SUBSCRIBERS + 500);
    server = await startServer({
      mode: 'poolgraph',
      verbose: false,
      env: {
        ...process.env,
        DATABASE_URL: database.appUrl,
        // Not vitest's `test`: graphql-yoga pings SSE streams every 300 ms under NODE_ENV=test,
        // every 12 s otherwise; idle means what production does.
        NODE_ENV: 'production',
        AUTH_MODE: 'open',
        POOL_SIZE: '2',
        POOL_MAX_OVERFLOW: '0',
        LOG_LEVEL: 'warn',
        MAX_SUBSCRIPTIONS: String(SUBSCRIBERS),
      },
    });
    const idleRss = rssMb(server.pid);
    const url = new URL(`${server.origin}/graphql`);
    const ended: string[] = [];
    let pings = 0;
    const opening = performance.now();
    const { streams: opened, failed, failures } = await openMany(SUBSCRIBERS, 100, (index) =>
      openSse(
        url,
        // Nine in ten take every new item, one in ten one category's: ten documents in all.
        index % 10 === 0 ? `subscription { itemCreated(categoryId: "${(index / 10) % 10 + 1}") { id number } }` : 'subscription { itemCreated { id number category { name } } }',
        {},
        { onPing: () => void (pings += 1), onEnd: (reason) => void ended.push(reason) },
      ),
    );
    streams.push(...opened);
    const openSeconds = (performance.now() - opening) / 1000;
    expect({ failed, failures }).toEqual({ failed: 0, failures: [] });
    expect(await subscriptionsGauge(server)).toBe(SUBSCRIBERS);

    const samples: number[] = [];
    const pingsBefore = pings;
    for (let second = 0; second < SAMPLE_SECONDS; second += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      samples.push(rssMb(server.pid));
    }
    const first = mean(samples.slice(0, 10));
    const last = mean(samples.slice(-10));
    const slope = slopePerMinute(samples);
    const summary = {
      idleRssMb: Math.round(idleRss),
      openSeconds: Math.round(openSeconds),
      perSubscriptionKb: Math.round(((first - idleRss) * 1024) / SUBSCRIBERS),
      firstTenSecondsMb: Math.round(first),
      lastTenSecondsMb: Math.round(last),
      minMb: Math.round(Math.min(...samples)),
      maxMb: Math.round(Math.max(...samples)),
      slopeMbPerMinute: Math.round(slope * 10) / 10,
      pingsDuringSampling: pings - pingsBefore,
    };
    console.info(`idle subscribers: ${JSON.stringify(summary)}`);

    // All 10,000 still served, none ended, each kept alive by the server's pings (12 s apart: at
    // least four each in 60 s).
    expect(await subscriptionsGauge(server)).toBe(SUBSCRIBERS);
    expect(ended).toEqual([]);
    expect(pings - pingsBefore).toBeGreaterThanOrEqual(SUBSCRIBERS * 4);
    expect(last, JSON.stringify(summary)).toBeLessThanOrEqual(first * (1 + MAX_GROWTH));
    expect(slope, JSON.stringify(summary)).toBeLessThan(MAX_SLOPE_MB_PER_MINUTE);
  });
});
