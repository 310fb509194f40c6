/**
 * `npm run soak -- --seconds S --connections C [--min-requests N --max-seconds M]`: load with
 * faults, and a check that nothing was lost. It starts its own embedded PostgreSQL (in a temp
 * folder) and a poolgraph server on 127.0.0.1, runs C client loops sending a mix of W1-W4 for S
 * seconds, and on past S until N requests were sent, but never past M seconds (bounded in count
 * too: a slow machine runs longer, not with less load, and a machine too slow for N in M fails),
 * terminates the server's backends and restarts PostgreSQL at intervals, then prints a summary and
 * exits 1 if an invariant broke:
 * - the app never held more than POOL_SIZE + POOL_MAX_OVERFLOW connections (pg_stat_activity);
 * - afterwards at most POOL_SIZE remain, none `idle in transaction`;
 * - every createItem that was acknowledged is in the table, and none that reported failure is;
 * - the heap does not keep growing after warm-up (see {@link heapGrowth}; needs `--expose-gc`,
 *   which `npm run soak` passes).
 * It samples memory about 30 times over the run (`--sample-every-ms`), printing each sample to
 * stderr and all of them in the summary.
 * Pool settings come from the environment like the server's (POOL_SIZE, POOL_MAX_OVERFLOW, ...).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { createServer } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { type EmbeddedDatabase, startEmbeddedDatabase } from '../src/db/setup/embedded.js';
import { migrateToLatest } from '../src/db/setup/migrate.js';
import { withOneConnection } from '../src/db/setup/one-connection.js';
import { APPLICATION_NAME } from '../src/db/pools/pool.js';
import { createDrainableHttpServer } from '../src/http/http-server.js';
import { seed } from '../src/db/setup/seed.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    connections: { type: 'string', default: '64' },
    'kill-every-ms': { type: 'string', default: '2000' },
    'restart-every-ms': { type: 'string', default: '5000' },
    'restart-down-ms': { type: 'string', default: '500' },
    'sample-every-ms': { type: 'string', default: '0' },
    'min-requests': { type: 'string', default: '0' },
    'max-seconds': { type: 'string' },
  },
});

const seconds = boundedInteger('seconds', values.seconds, 1, 3600);
const connections = boundedInteger('connections', values.connections, 1, 1024);
const killEveryMs = boundedInteger('kill-every-ms', values['kill-every-ms'], 100, 3_600_000);
const restartEveryMs = boundedInteger('restart-every-ms', values['restart-every-ms'], 500, 3_600_000);
const restartDownMs = boundedInteger('restart-down-ms', values['restart-down-ms'], 0, 60_000);
/** 0: about 30 samples over the run. */
const sampleEveryMs =
  boundedInteger('sample-every-ms', values['sample-every-ms'], 0, 3_600_000) || Math.max(500, Math.round((seconds * 1000) / 30));
/** A hard cap on requests, whatever the machine's speed: the loop is bounded in count and time. */
const MAX_REQUESTS = seconds * 20_000;
const minRequests = boundedInteger('min-requests', values['min-requests'], 0, MAX_REQUESTS);
const maxSeconds = boundedInteger('max-seconds', values['max-seconds'] ?? values.seconds, seconds, 3600);

/** The first third of the run: pools filling, JIT, caches (validation, statements) warming. */
const WARM_UP_SHARE = 1 / 3;
/** Growth tolerated above the baseline: the larger of this many MiB and this share of it. */
const HEAP_TOLERANCE_MIB = 12;
const HEAP_TOLERANCE_SHARE = 0.15;
/** A steady climb smaller than this is not called a leak (noise of a few MiB between samples). */
const HEAP_TREND_FLOOR_MIB = 4;

function boundedInteger(name: string, value: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    process.stderr.write(`soak: --${name} must be a whole number from ${min} to ${max}, got "${value}"\n`);
    process.exit(2);
  }
  return parsed;
}

const W1 = '{ items { number } }';
const W2 = '{ categories(first: 20) { name itemCount items(first: 10) { id number category { name } } } }';
const W3 = `{ ${Array.from({ length: 20 }, (_, i) => `i${i}: item(id: "${i * 37 + 5}") { number label }`).join(' ')} }`;
const W4 = 'mutation($label: String!) { createItem(input: { number: 7, label: $label, categoryId: "1" }) { id } }';

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { extensions?: { code?: string; writeOutcome?: string } }[];
}

const config = loadConfig();
const pool = { ...config.pool, statementTimeoutMs: 5_000, idleTimeoutMs: Math.min(config.pool.idleTimeoutMs, 2_000) };
const limit = pool.size + pool.maxOverflow;

const folder = await mkdtemp(join(tmpdir(), 'poolgraph-soak-'));
await chmod(folder, 0o755);
const dataDir = join(folder, 'data');
let embedded: EmbeddedDatabase | undefined = await startEmbeddedDatabase({ dataDir });
const url = embedded.url;
const dbPort = Number(new URL(url).port);
await migrateToLatest(url);
await withOneConnection(url, (db) => seed(db, { categories: 100, itemsPerCategory: 100 }));

const server = createServer({ database: { ...pool, connectionString: url }, logger: pino({ level: 'silent' }) });
const http = createDrainableHttpServer(server.requestListener);
const port = await http.listen(0, '127.0.0.1');
const endpoint = `http://127.0.0.1:${port}/graphql`;

const memoryAtStart = process.memoryUsage();
const responses = new Map<string, number>();
const acknowledged = new Set<string>();
const failed = new Set<string>();
let requests = 0;
let writes = 0;
let unknownOutcome = 0;
let peak = 0;
let kills = 0;
let restarts = 0;
const count = (key: string) => responses.set(key, (responses.get(key) ?? 0) + 1);

/** An observer connection of our own (not the app's pool), reopened after restarts. */
let observer: pg.Client | undefined;
async function observe<Row extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<Row[] | undefined> {
  try {
    if (!observer) {
      const client = new pg.Client({ connectionString: url, application_name: 'poolgraph-soak' });
      client.on('error', () => undefined);
      await client.connect();
      observer = client;
    }
    return (await observer.query<Row>(sql, params)).rows;
  } catch {
    await observer?.end().catch(() => undefined);
    observer = undefined;
    return undefined;
  }
}

const appConnections = async () =>
  (
    await observe<{ total: number; idle_in_transaction: number }>(
      `select count(*)::int as total,
              count(*) filter (where state like 'idle in transaction%')::int as idle_in_transaction
       from pg_stat_activity where datname = current_database() and application_name = $1`,
      [APPLICATION_NAME],
    )
  )?.[0];

const loadStartedAt = Date.now();
const deadline = loadStartedAt + seconds * 1000;
const hardDeadline = loadStartedAt + maxSeconds * 1000;
/** Until `--seconds` and `--min-requests` are both reached, within `--max-seconds` and MAX_REQUESTS. */
const running = () => {
  const now = Date.now();
  return requests < MAX_REQUESTS && now < hardDeadline && (now < deadline || requests < minRequests);
};

async function client(id: number): Promise<void> {
  for (let n = 0; running(); n += 1) {
    const kind = (id + n) % 4;
    requests += 1;
    let label: string | undefined;
    let body: GraphQLBody;
    try {
      const payload =
        kind === 3
          ? { query: W4, variables: { label: (label = `soak-${id}-${n}`) } }
          : { query: [W1, W2, W3][kind] };
      if (label) writes += 1;
      const response = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(30_000),
      });
      body = (await response.json()) as GraphQLBody;
      const code = body.errors?.[0]?.extensions?.code;
      count(code ? `${response.status} ${code}` : `${response.status}`);
    } catch (error) {
      // No answer: whether a write happened is unknown, so it is neither acknowledged nor failed.
      count(`no response (${(error as Error).name})`);
      continue;
    }
    if (label) {
      if (body.data && !body.errors) acknowledged.add(label);
      // The connection broke during COMMIT: the server itself cannot know, and says so.
      else if (body.errors?.some((error) => error.extensions?.writeOutcome === 'UNKNOWN')) unknownOutcome += 1;
      else failed.add(label);
    }
  }
}

async function poller(): Promise<void> {
  while (running()) {
    const now = await appConnections();
    if (now) peak = Math.max(peak, now.total);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface MemorySample {
  /** Seconds since the load started. */
  s: number;
  rssMiB: number;
  heapUsedMiB: number;
  /** heapUsed right after a full collection; only with `node --expose-gc`. */
  heapAfterGcMiB?: number;
}
const samples: MemorySample[] = [];
const startedAt = Date.now();
const gc: (() => void) | undefined = typeof globalThis.gc === 'function' ? globalThis.gc : undefined;
function sampleMemory(): void {
  const before = process.memoryUsage();
  gc?.();
  const sample: MemorySample = {
    s: Math.round((Date.now() - startedAt) / 100) / 10,
    rssMiB: mib(before.rss),
    heapUsedMiB: mib(before.heapUsed),
    ...(gc ? { heapAfterGcMiB: mib(process.memoryUsage().heapUsed) } : {}),
  };
  samples.push(sample);
  process.stderr.write(`soak memory ${JSON.stringify(sample)}\n`);
}

async function sampler(): Promise<void> {
  while (running()) {
    sampleMemory();
    // A last sample at --seconds; past it (a load still short of --min-requests), the usual pace.
    const untilDeadline = deadline - Date.now();
    await new Promise((resolve) => setTimeout(resolve, untilDeadline > 0 ? Math.min(sampleEveryMs, untilDeadline) : sampleEveryMs));
  }
}

async function killer(): Promise<void> {
  while (running()) {
    await new Promise((resolve) => setTimeout(resolve, killEveryMs));
    if (!running()) return;
    const killed = await observe(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and application_name = $1`,
      [APPLICATION_NAME],
    );
    kills += killed?.length ?? 0;
  }
}

async function restarter(): Promise<void> {
  while (running()) {
    await new Promise((resolve) => setTimeout(resolve, restartEveryMs));
    if (!running()) return;
    await embedded?.stop();
    embedded = undefined;
    await observer?.end().catch(() => undefined);
    observer = undefined;
    await new Promise((resolve) => setTimeout(resolve, restartDownMs));
    embedded = await startEmbeddedDatabase({ dataDir, port: dbPort });
    restarts += 1;
  }
}

let exitCode = 0;
const problems: string[] = [];
try {
  await Promise.all([...Array.from({ length: connections }, (_, id) => client(id)), poller(), killer(), restarter(), sampler()]);
  const loadSeconds = Math.round((Date.now() - loadStartedAt) / 100) / 10;

  // Afterwards: overflow connections close after the idle timeout; POOL_SIZE may stay.
  let after = await appConnections();
  const settleBy = Date.now() + pool.idleTimeoutMs + 5_000;
  while (after && after.total > pool.size && Date.now() < settleBy) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    after = await appConnections();
  }
  // Load over, overflow connections closed: what is still held now is kept, not in flight.
  sampleMemory();

  const stored = new Set(
    (await observe<{ label: string }>("select label from items where label like 'soak-%'"))?.map((row) => row.label) ?? [],
  );
  const lost = [...acknowledged].filter((label) => !stored.has(label));
  const phantom = [...failed].filter((label) => stored.has(label));
  const memoryAtEnd = process.memoryUsage();

  if (peak > limit) problems.push(`peak ${peak} connections > POOL_SIZE + POOL_MAX_OVERFLOW = ${limit}`);
  if (!after) problems.push('could not count connections after the soak');
  else {
    if (after.total > pool.size) problems.push(`${after.total} connections left > POOL_SIZE = ${pool.size}`);
    if (after.idle_in_transaction > 0) problems.push(`${after.idle_in_transaction} connections idle in transaction`);
  }
  if (lost.length > 0) problems.push(`${lost.length} acknowledged writes missing, e.g. ${lost[0]}`);
  if (phantom.length > 0) problems.push(`${phantom.length} writes reported as failed exist, e.g. ${phantom[0]}`);
  if (acknowledged.size === 0) problems.push('no write was acknowledged: the soak did not exercise writes');
  if (requests < minRequests) {
    problems.push(`only ${requests} requests in ${loadSeconds} s, fewer than --min-requests ${minRequests}: the machine was too slow for --max-seconds ${maxSeconds}`);
  }
  const growth = heapGrowth(samples, loadSeconds);
  if (growth?.leaking) {
    problems.push(
      `heap after GC grew from ${growth.baselineMiB} MiB after warm-up to ${growth.endMiB} MiB after the load ` +
        `(${growth.climbing ? 'climbing steadily' : `more than ${growth.toleranceMiB} MiB`}): something keeps what requests leave behind`,
    );
  }

  const summary = {
    seconds,
    loadSeconds,
    connections,
    requests,
    minRequests,
    responses: Object.fromEntries([...responses].sort(([a], [b]) => a.localeCompare(b))),
    faults: { backendsTerminated: kills, postgresRestarts: restarts },
    connectionsPeak: peak,
    connectionsLimit: limit,
    connectionsAfter: after?.total ?? null,
    idleInTransactionAfter: after?.idle_in_transaction ?? null,
    writes: {
      sent: writes,
      acknowledged: acknowledged.size,
      failed: failed.size,
      outcomeUnknown: unknownOutcome,
      lost: lost.length,
      phantom: phantom.length,
    },
    memoryMiB: {
      rssStart: mib(memoryAtStart.rss),
      rssEnd: mib(memoryAtEnd.rss),
      heapUsedStart: mib(memoryAtStart.heapUsed),
      heapUsedEnd: mib(memoryAtEnd.heapUsed),
      heapGrowth: growth ?? 'not measured: run node with --expose-gc',
      samples,
    },
    problems,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  exitCode = problems.length > 0 ? 1 : 0;
} finally {
  await observer?.end().catch(() => undefined);
  await http.drain(5_000).done;
  await server.close();
  await embedded?.stop();
  await rm(folder, { recursive: true, force: true });
}
process.exit(exitCode);

/**
 * Whether the heap kept growing after warm-up. Measured after a full GC, so garbage does not
 * count; the baseline is the lowest heap of the middle third of the run, the end is the last
 * sample (the load over, so nothing in flight). Leaking: the end exceeds the baseline by more than
 * the tolerance, or the heap climbed steadily, every sample of the last third above every sample
 * of the middle third, by more than {@link HEAP_TREND_FLOOR_MIB} (a short run's small leak).
 * Undefined without `--expose-gc`, or with too few samples.
 */
function heapGrowth(all: MemorySample[], loadSeconds: number):
  | { baselineMiB: number; endMiB: number; toleranceMiB: number; climbing: boolean; leaking: boolean }
  | undefined {
  const warmUpS = loadSeconds * WARM_UP_SHARE;
  const measured = all.filter((sample) => sample.heapAfterGcMiB !== undefined);
  const heap = (samples: MemorySample[]) => samples.map((sample) => sample.heapAfterGcMiB ?? Number.NaN);
  const middle = heap(measured.filter((sample) => sample.s >= warmUpS && sample.s < 2 * warmUpS));
  const last = heap(measured.filter((sample) => sample.s >= 2 * warmUpS));
  const endMiB = all.at(-1)?.heapAfterGcMiB;
  if (middle.length === 0 || last.length === 0 || endMiB === undefined) return undefined;
  const baselineMiB = Math.min(...middle);
  const toleranceMiB = Math.round(Math.max(HEAP_TOLERANCE_MIB, baselineMiB * HEAP_TOLERANCE_SHARE) * 10) / 10;
  const growth = endMiB - baselineMiB;
  const climbing = Math.min(...last) > Math.max(...middle) && growth > HEAP_TREND_FLOOR_MIB;
  return { baselineMiB, endMiB, toleranceMiB, climbing, leaking: growth > toleranceMiB || climbing };
}

function mib(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}
