/**
 * W6 (issue 20): live updates under load. A poolgraph server (`server.ts`, in a process of its
 * own) serves N GraphQL-over-SSE subscriptions held by a subscriber process (`live-load.ts`,
 * another process, so the server's CPU is its own), while the bench INSERTs items at a fixed rate
 * from a connection of its own (the database owner's, `application_name` `poolgraph-bench-writer`).
 *
 * Measured, over the writes of the measured run (after a warm-up at the same rate) until the last
 * result expected has arrived:
 * - the lag of every result each subscriber received: its arrival in the subscriber process less
 *   its row's commit time as the writer saw it (when the autocommitted INSERT returned), p50/p99;
 * - statements per tick, from `pg_stat_statements` (the servers' role only, so the writer's
 *   INSERTs are left out): a tick is one read of the outbox (the listener's `item_events` query),
 *   and its statements are that read plus the loads of the rows it delivered (items, categories);
 * - the peak of the server's connections in `pg_stat_activity`, the pool's (`poolgraph`) and the
 *   listener's (`poolgraph-listener`) together, polled every 20 ms;
 * - server CPU ms per delivered result (`/proc/<pid>/stat`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LISTENER_APPLICATION_NAME } from '../../src/db/events/event-listener.js';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import { busiestOthers, machineBusySeconds, postgresCpuSeconds, processCpuSeconds, processSnapshot } from './cpu.js';
import type { LiveLoadResult, LivePlan, LiveRows } from './live-load.js';
import { deliveriesOf, type LiveGroup, liveGroups, rowOf } from './live-workload.js';
import type { MeasureContext } from './measure.js';
import { type ServerProcess, startServer } from './processes.js';
import { preciseNow } from './sse-client.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LIVE_LOAD_ENTRY = fileURLToPath(new URL('./live-load.ts', import.meta.url));

/** INSERTs per second (the 200/s). */
export const LIVE_WRITE_RATE = 200;
/** Subscriptions being opened at once by the subscriber process. */
const OPEN_CONCURRENCY = 100;
/** How long the last results may take to arrive after the last write before the run counts what it has. */
const SETTLE_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 20;

/** One W6 run at one number of subscribers. */
export interface LiveMeasurement {
  workload: 'W6';
  subscribers: number;
  /** `ok`: measured; `skipped`: the database may not be written; `failed`: a process of the bench failed. */
  status: 'ok' | 'skipped' | 'failed';
  note?: string;
  groups?: LiveGroup[];
  /** Time to open every subscription, in ms. */
  openMs?: number;
  /** `poolgraph_subscriptions` (all transports) once they were open. */
  subscriptionsGauge?: number;
  writes?: {
    count: number;
    /** INSERTs per second achieved over the measured writes. */
    perSecond: number;
    /** Round trip of the INSERT (send to return), in ms. */
    insertMs: { p50: number; p99: number };
  };
  /** What the subscriber process received, and the lag of each result. */
  load?: LiveLoadResult;
  /** From the last write's commit to the last result expected (or to giving up), in ms. */
  settleMs?: number;
  /** Reads of the outbox (ticks), and the servers' statements by kind, from `pg_stat_statements`. */
  ticks?: number;
  statements?: { reads: number; items: number; categories: number; claims: number; other: number; total: number; otherTexts: string[] };
  /** The servers' statements per tick (reads included). */
  statementsPerTick?: number;
  /** Outbox events read per tick (`poolgraph_live_events_read_total` / ticks). */
  eventsPerTick?: number;
  /** The server's own figures (`/metrics`): results pushed, and its lag histogram's p50/p99 bucket bounds (ms). */
  server?: { deliveries: number; lagBucketMs: { p50: number | undefined; p99: number | undefined }; dropped: number };
  peakConnections?: number;
  /** CPU seconds during the measured window: server, PostgreSQL, subscriber process, the bench itself (the writer), the machine. */
  cpuSeconds?: { server?: number; postgres?: number; load: number; bench: number; machine?: number };
  windowSeconds?: number;
  busiestOthers?: string;
  attempts?: number;
  /** With several rounds: the lowest and highest p99 lag of the rounds (this is the median one). */
  p99Range?: [number, number];
}

/** The cores used during the run by everything but the server, PostgreSQL, the subscriber process and the bench. */
export function liveOtherCores(m: LiveMeasurement): number | undefined {
  const cpu = m.cpuSeconds;
  if (!cpu || !m.windowSeconds || cpu.machine === undefined || cpu.server === undefined || cpu.postgres === undefined) return undefined;
  return (cpu.machine - cpu.server - cpu.postgres - cpu.load - cpu.bench) / m.windowSeconds;
}

/** Server CPU ms per result the subscribers received. */
export function cpuMsPerDelivery(m: LiveMeasurement): number | undefined {
  const server = m.cpuSeconds?.server;
  return server === undefined || !m.load?.received ? undefined : (server * 1000) / m.load.received;
}

/** True when every result expected came, right, once and in order, and no subscription ended. */
export function liveCorrect(m: LiveMeasurement): boolean {
  if (m.status === 'skipped') return true;
  const l = m.load;
  return (
    m.status === 'ok' &&
    l !== undefined &&
    l.received === l.expected &&
    l.wrong + l.errors + l.unknown + l.outOfOrder === 0 &&
    Object.keys(l.ended).length === 0 &&
    l.subscriptions === m.subscribers
  );
}

/** The round with the median p99 lag (a failed one instead, so that it shows), with the range. */
export function liveMedian(rounds: readonly LiveMeasurement[]): LiveMeasurement {
  const failed = rounds.find((m) => m.status !== 'ok' || !m.load?.lagMs);
  if (failed || rounds.length < 2) return failed ?? (rounds[0] as LiveMeasurement);
  const p99 = (m: LiveMeasurement) => m.load?.lagMs?.p99 ?? 0;
  const sorted = [...rounds].sort((a, b) => p99(a) - p99(b));
  return { ...(sorted[Math.floor((sorted.length - 1) / 2)] as LiveMeasurement), p99Range: [p99(sorted[0] as LiveMeasurement), p99(sorted.at(-1) as LiveMeasurement)] };
}

/** The subscriber process, driven by lines on its stdin (see `live-load.ts`). */
class LiveLoadProcess {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, (event: Record<string, unknown>) => void>();
  readonly #tail: string[] = [];
  readonly #exited: Promise<unknown>;

  constructor(plan: LivePlan) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', LIVE_LOAD_ENTRY, JSON.stringify(plan)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#exited = once(this.#child, 'exit');
    const keep = (line: string) => {
      this.#tail.push(line);
      if (this.#tail.length > 20) this.#tail.shift();
    };
    createInterface({ input: this.#child.stderr as NodeJS.ReadableStream }).on('line', keep);
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      keep(line);
      if (!line.startsWith('{')) return;
      const event = JSON.parse(line) as Record<string, unknown>;
      const resolve = this.#waiting.get(String(event['event']));
      this.#waiting.delete(String(event['event']));
      resolve?.(event);
    });
  }

  get pid(): number {
    if (this.#child.pid === undefined) throw new Error('the subscriber process could not be started');
    return this.#child.pid;
  }

  /** Waits for the next `event` line (after sending `command`, if any), at most `timeoutMs`. */
  async next(event: string, timeoutMs: number, command?: string): Promise<Record<string, unknown>> {
    const answer = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(event, resolve));
    if (command !== undefined) this.#child.stdin?.write(`${command}\n`);
    let timer: NodeJS.Timeout | undefined;
    const failure = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the subscriber process did not answer "${event}" within ${timeoutMs} ms:\n${this.#tail.join('\n')}`)), timeoutMs);
      void this.#exited.then(() => reject(new Error(`the subscriber process exited before "${event}":\n${this.#tail.join('\n')}`)));
    });
    failure.catch(() => undefined);
    return Promise.race([answer, failure]).finally(() => clearTimeout(timer));
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** The bench's own writer: one connection, one autocommitted INSERT at a time, at a fixed rate. */
class Writer {
  readonly #client: pg.Client;
  #seq = 0;

  private constructor(client: pg.Client) {
    this.#client = client;
  }

  static async connect(url: string): Promise<Writer> {
    const client = new pg.Client({ connectionString: url, application_name: 'poolgraph-bench-writer' });
    client.on('error', () => undefined);
    await client.connect();
    return new Writer(client);
  }

  /** `rate` INSERTs a second for `seconds`, each started on its schedule (or at once when behind). */
  async write(rate: number, seconds: number): Promise<{ rows: LiveRows; insertMs: number[]; seconds: number }> {
    const rows: LiveRows = { ids: [], committedAt: [], categoryIds: [], numbers: [] };
    const insertMs: number[] = [];
    const total = Math.round(rate * seconds);
    const started = performance.now();
    for (let i = 0; i < total && performance.now() - started < seconds * 1000 + 30_000; i += 1) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0.5) await new Promise((resolve) => setTimeout(resolve, wait));
      const row = rowOf(this.#seq);
      this.#seq += 1;
      const sent = performance.now();
      const { rows: inserted } = await this.#client.query<{ id: string }>({
        name: 'bench-live-insert',
        text: 'insert into items (number, label, category_id) values ($1, $2, $3) returning id::text as id',
        values: [row.number, 'live', row.categoryId],
      });
      const committedAt = preciseNow();
      insertMs.push(performance.now() - sent);
      rows.ids.push(inserted[0]?.id ?? '');
      rows.committedAt.push(committedAt);
      rows.categoryIds.push(row.categoryId);
      rows.numbers.push(row.number);
    }
    return { rows, insertMs, seconds: (performance.now() - started) / 1000 };
  }

  async close(): Promise<void> {
    await this.#client.end().catch(() => undefined);
  }
}

/** The sample metrics of `/metrics` this run reads, summed over their labels. */
interface ServerMetrics {
  deliveries: number;
  eventsRead: number;
  dropped: number;
  subscriptions: number;
  /** Cumulative counts of `poolgraph_live_delivery_lag_seconds`, by upper bound in seconds. */
  lagBuckets: Map<number, number>;
}

async function scrape(server: ServerProcess): Promise<ServerMetrics> {
  const response = await fetch(`${server.origin}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const metrics: ServerMetrics = { deliveries: 0, eventsRead: 0, dropped: 0, subscriptions: 0, lagBuckets: new Map() };
  for (const line of text.split('\n')) {
    const match = /^(\w+)(?:\{([^}]*)\})? ([\d.e+-]+|\+Inf)$/.exec(line);
    if (!match) continue;
    const [, name, labels, raw] = match;
    const value = Number(raw);
    if (name === 'poolgraph_live_deliveries_total') metrics.deliveries += value;
    else if (name === 'poolgraph_live_events_read_total') metrics.eventsRead += value;
    else if (name === 'poolgraph_live_subscribers_dropped_total') metrics.dropped += value;
    else if (name === 'poolgraph_subscriptions') metrics.subscriptions += value;
    else if (name === 'poolgraph_live_delivery_lag_seconds_bucket') {
      const le = /le="([^"]+)"/.exec(labels ?? '')?.[1];
      if (le !== undefined) metrics.lagBuckets.set(le === '+Inf' ? Infinity : Number(le), value);
    }
  }
  return metrics;
}

/** The upper bound (ms) of the bucket holding quantile `q` of the observations between two scrapes. */
function bucketQuantileMs(before: ServerMetrics, after: ServerMetrics, q: number): number | undefined {
  const bounds = [...after.lagBuckets.keys()].sort((a, b) => a - b);
  const total = (after.lagBuckets.get(Infinity) ?? 0) - (before.lagBuckets.get(Infinity) ?? 0);
  if (total <= 0) return undefined;
  for (const bound of bounds) {
    const count = (after.lagBuckets.get(bound) ?? 0) - (before.lagBuckets.get(bound) ?? 0);
    if (count >= q * total) return bound * 1000;
  }
  return undefined;
}

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/** Classifies the servers' statements (pg_stat_statements' normalised texts). */
function byKind(rows: readonly { query: string; calls: number }[]): NonNullable<LiveMeasurement['statements']> {
  const kinds = { reads: 0, items: 0, categories: 0, claims: 0, other: 0, total: 0, otherTexts: [] as string[] };
  for (const { query, calls } of rows) {
    kinds.total += calls;
    if (/\bitem_events\b/.test(query)) kinds.reads += calls;
    else if (/set_config\(/.test(query)) kinds.claims += calls;
    else if (/\bfrom\s+"?items"?\b/i.test(query)) kinds.items += calls;
    else if (/\bfrom\s+"?categories"?\b/i.test(query)) kinds.categories += calls;
    else {
      kinds.other += calls;
      if (kinds.otherTexts.length < 5) kinds.otherTexts.push(`${calls} × ${query.replace(/\s+/g, ' ').slice(0, 120)}`);
    }
  }
  return kinds;
}

/** Waits until the subscriber process has `expected` results, or they stop coming; returns when the last came. */
async function settle(load: LiveLoadProcess, expected: number): Promise<{ at: number }> {
  let last = -1;
  let lastChange = performance.now();
  for (const deadline = performance.now() + SETTLE_TIMEOUT_MS; performance.now() < deadline; ) {
    const { received } = (await load.next('count', 10_000, 'count')) as { received: number };
    if (received !== last) {
      last = received;
      lastChange = performance.now();
    }
    if (received >= expected || performance.now() - lastChange > 3_000) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { at: lastChange };
}

/**
 * Measures W6 with `subscribers` subscriptions: starts a poolgraph server, opens the
 * subscriptions from the subscriber process, writes `LIVE_WRITE_RATE` rows a second for the
 * warm-up (not measured) and then for `context.seconds`, and stops everything. The data set is
 * restored afterwards.
 */
export async function measureLive(subscribers: number, context: MeasureContext): Promise<LiveMeasurement> {
  const { observer } = context;
  if (!context.database.writable) {
    return { workload: 'W6', subscribers, status: 'skipped', note: 'writes rows: with DATABASE_URL it runs only with --seed' };
  }
  const groups = liveGroups(subscribers);
  const server = await startServer({
    mode: 'poolgraph',
    env: context.env,
    verbose: context.verbose,
    nodePath: context.nodePath,
    ...(context.profileDir ? { profileFile: join(context.profileDir, `poolgraph-W6-${subscribers}.cpuprofile`) } : {}),
  });
  let load: LiveLoadProcess | undefined;
  let writer: Writer | undefined;
  try {
    const expectedOf = (rows: LiveRows) => rows.categoryIds.reduce((sum, categoryId) => sum + deliveriesOf(groups, categoryId), 0);
    const maxSeconds = context.warmupSeconds + context.seconds + 300;
    load = new LiveLoadProcess({ url: `${server.origin}/graphql`, headers: {}, groups, openConcurrency: OPEN_CONCURRENCY, maxSeconds });
    const open = (await load.next('open', 120_000)) as { opened: number; failed: number; failures: string[]; ms: number };
    if (open.failed > 0) throw new Error(`${open.failed} of ${subscribers} subscriptions failed to open: ${open.failures.join('; ')}`);
    let gauge = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
      gauge = (await scrape(server)).subscriptions;
      if (gauge >= subscribers) break;
    }
    if (gauge !== subscribers) throw new Error(`the server counts ${gauge} subscriptions, not ${subscribers}`);

    writer = await Writer.connect(context.database.url);
    if (context.warmupSeconds > 0) {
      const warm = await writer.write(LIVE_WRITE_RATE, context.warmupSeconds);
      await settle(load, expectedOf(warm.rows));
    }
    await load.next('reset', 10_000, 'reset');

    const metricsBefore = await scrape(server);
    await observer.resetStatements();
    const serverCpuBefore = processCpuSeconds(server.pid);
    const postgresCpuBefore = observer.postmasterPid && postgresCpuSeconds(observer.postmasterPid);
    const benchCpuBefore = process.cpuUsage();
    const processesBefore = processSnapshot();
    const machineBefore = machineBusySeconds();
    const startedAt = performance.now();
    observer.startPolling(POLL_INTERVAL_MS, [APPLICATION_NAME, LISTENER_APPLICATION_NAME]);
    let written: Awaited<ReturnType<Writer['write']>>;
    let settled: { at: number };
    let peakConnections: number;
    try {
      if (context.profileDir) await server.profile('start');
      written = await writer.write(LIVE_WRITE_RATE, context.seconds);
      settled = await settle(load, expectedOf(written.rows));
      if (context.profileDir) await server.profile('stop');
    } finally {
      peakConnections = await observer.stopPolling();
    }
    const windowSeconds = (performance.now() - startedAt) / 1000;
    const machineAfter = machineBusySeconds();
    const processesAfter = processSnapshot();
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const serverCpuAfter = processCpuSeconds(server.pid);
    const postgresCpuAfter = observer.postmasterPid && postgresCpuSeconds(observer.postmasterPid);
    const statementRows = await observer.statementsOfServers();
    const metricsAfter = await scrape(server);
    const result = (await load.next('result', 120_000, `rows ${JSON.stringify(written.rows)}`)) as unknown as LiveLoadResult & { event?: string };
    delete result.event;

    const statements = statementRows ? byKind(statementRows) : undefined;
    const ticks = statements?.reads;
    const lastCommit = written.rows.committedAt.at(-1) ?? 0;
    const postmaster = observer.postmasterPid;
    const loadPid = load.pid;
    const ours = (pid: number, entry: { ppid: number }) =>
      pid === process.pid || pid === server.pid || pid === loadPid || pid === postmaster || entry.ppid === postmaster;
    return {
      workload: 'W6',
      subscribers,
      status: 'ok',
      groups,
      openMs: open.ms,
      subscriptionsGauge: gauge,
      writes: {
        count: written.rows.ids.length,
        perSecond: written.rows.ids.length / written.seconds,
        insertMs: { p50: percentile(written.insertMs, 0.5), p99: percentile(written.insertMs, 0.99) },
      },
      load: result,
      // `settled.at` is on the performance clock; the commit on the wall clock.
      settleMs: Math.max(0, settled.at + performance.timeOrigin - lastCommit),
      ...(statements ? { statements } : {}),
      ...(ticks ? { ticks, statementsPerTick: (statements?.total ?? 0) / ticks, eventsPerTick: (metricsAfter.eventsRead - metricsBefore.eventsRead) / ticks } : {}),
      server: {
        deliveries: metricsAfter.deliveries - metricsBefore.deliveries,
        dropped: metricsAfter.dropped - metricsBefore.dropped,
        lagBucketMs: { p50: bucketQuantileMs(metricsBefore, metricsAfter, 0.5), p99: bucketQuantileMs(metricsBefore, metricsAfter, 0.99) },
      },
      peakConnections,
      cpuSeconds: {
        server: difference(serverCpuBefore, serverCpuAfter),
        postgres: difference(postgresCpuBefore, postgresCpuAfter),
        load: result.cpuSeconds,
        bench: (benchCpu.user + benchCpu.system) / 1e6,
        machine: difference(machineBefore, machineAfter),
      },
      windowSeconds,
      busiestOthers: busiestOthers(processesBefore, processesAfter, ours, 3),
    };
  } finally {
    load?.kill();
    await writer?.close();
    await server.stop();
    await context.database.reseed();
  }
}

function difference(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : after - before;
}
