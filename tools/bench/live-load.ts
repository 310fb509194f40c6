/**
 * W6's subscriber process, apart from the server so that the server's CPU time is its own (as
 * autocannon is for W1-W5): `node --import tsx tools/bench/live-load.ts '<LivePlan JSON>'`.
 *
 * It opens the plan's SSE subscriptions (`live-workload.ts`), a bounded number at a time, prints
 * `{"event":"open",...}`, then records every result it receives: the item's id, the time the chunk
 * carrying it arrived (`performance.timeOrigin + performance.now()`, the machine's wall clock with
 * sub-millisecond resolution), and the result's bytes, compared with those of the same item's
 * earlier results of the same subscription document. Commands on stdin, one a line:
 *
 * - `count`: prints `{"event":"count","received":N,"ended":N}`;
 * - `reset`: forgets what was received so far (the warm-up's results) and prints `{"event":"reset"}`;
 * - `rows <LiveRows JSON>`: the rows the bench wrote since the reset, with their commit times:
 *   prints `{"event":"result",...}` (a {@link LiveLoadResult}) and exits.
 *
 * The lag of a result is its arrival time less the commit time of its row, as the writer saw it
 * (when its INSERT returned; both processes read the same clock), over every result received, so
 * the percentiles weigh each subscriber's each delivery. It includes the time this process took
 * to get to the chunk, as autocannon's latency does.
 */
import { createInterface } from 'node:readline';
import { deliveriesOf, documentOf, expectedData, type LiveGroup } from './live-workload.js';
import { openMany, openSse } from './sse-client.js';

/** What the bench asks the subscriber process to do. */
export interface LivePlan {
  /** `http://127.0.0.1:<port>/graphql`. */
  url: string;
  headers: Record<string, string>;
  groups: LiveGroup[];
  /** Subscriptions being opened at once. */
  openConcurrency: number;
  /** The process exits on its own after this long, whatever happens. */
  maxSeconds: number;
}

/** The rows written since the reset: ids (as text), commit times (ms since the epoch), categories and numbers. */
export interface LiveRows {
  ids: string[];
  committedAt: number[];
  categoryIds: number[];
  numbers: number[];
}

/** What the subscriber process saw of the measured writes. */
export interface LiveLoadResult {
  subscriptions: number;
  /** Results received for the rows written (each subscriber's each result). */
  received: number;
  /** Results the rows should have produced: per row, the subscribers whose filter it passes. */
  expected: number;
  /** Results whose bytes were not the expected answer (a GraphQL error included). */
  wrong: number;
  /** Results carrying GraphQL `errors` (`SUBSCRIBER_TOO_SLOW`, say). */
  errors: number;
  /** Results for ids no measured row has (or whose id could not be read). */
  unknown: number;
  /** Results of a subscription that were not after its previous one in id order (twice, or out of order). */
  outOfOrder: number;
  /** Subscriptions the server ended during the measured run, by reason. */
  ended: Record<string, number>;
  /** From commit to arrival, in ms, over every result received for a measured row. */
  lagMs: { p50: number; p90: number; p99: number; max: number; mean: number } | undefined;
  /** CPU time this process used from the reset to the `rows` command, in seconds. */
  cpuSeconds: number;
}

/** Results recorded at most (a bound on memory whatever the run's length). */
const MAX_RECORDS = 50_000_000;

const plan = JSON.parse(process.argv[2] ?? '') as LivePlan;
const url = new URL(plan.url);
if (url.hostname !== '127.0.0.1') {
  process.stderr.write(`bench live-load: refusing to connect to ${url.hostname}; only 127.0.0.1 is allowed\n`);
  process.exit(2);
}
const deadline = setTimeout(() => {
  process.stderr.write(`bench live-load: still running after ${plan.maxSeconds} s: exiting\n`);
  process.exit(3);
}, plan.maxSeconds * 1000);
deadline.unref();

const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

// Every result received since the reset: its item id and arrival time, in growable arrays.
let ids = new Float64Array(1 << 20);
let times = new Float64Array(1 << 20);
let count = 0;
let unreadable = 0;
let errors = 0;
let outOfOrder = 0;
let ended: Record<string, number> = {};
/** Per group: per item id, the first result's bytes and how many results had them; results that differed. */
let seen = plan.groups.map(() => new Map<number, { data: string; count: number }>());
let differing = 0;
let cpuAtReset = process.cpuUsage();

function record(groupIndex: number, data: string, receivedAt: number, last: { id: number }): void {
  // `{"data":{"itemCreated":{"id":"123",...`: the id without parsing the whole result.
  const at = data.indexOf('"id":"');
  const id = at < 0 ? NaN : Number(data.slice(at + 6, data.indexOf('"', at + 6)));
  if (data.includes('"errors"')) errors += 1;
  if (!Number.isFinite(id)) {
    unreadable += 1;
    return;
  }
  if (id <= last.id) outOfOrder += 1;
  last.id = id;
  const byId = seen[groupIndex] as Map<number, { data: string; count: number }>;
  const first = byId.get(id);
  if (!first) byId.set(id, { data, count: 1 });
  else if (first.data === data) first.count += 1;
  else differing += 1;
  if (count === ids.length) {
    if (count >= MAX_RECORDS) return;
    const grow = (array: Float64Array) => {
      const bigger = new Float64Array(array.length * 2);
      bigger.set(array);
      return bigger;
    };
    ids = grow(ids);
    times = grow(times);
  }
  ids[count] = id;
  times[count] = receivedAt;
  count += 1;
}

const started = performance.now();
const subscriptions = plan.groups.flatMap((group, groupIndex) => Array.from({ length: group.count }, () => groupIndex));
const { streams, failed, failures } = await openMany(subscriptions.length, plan.openConcurrency, (index) => {
  const groupIndex = subscriptions[index] as number;
  const last = { id: -1 };
  return openSse(url, documentOf(plan.groups[groupIndex] as LiveGroup), plan.headers, {
    onNext: (data, receivedAt) => record(groupIndex, data, receivedAt, last),
    onEnd: (reason) => (ended[reason] = (ended[reason] ?? 0) + 1),
  });
});
print({ event: 'open', opened: streams.length, failed, failures, ms: Math.round(performance.now() - started) });

function result(rows: LiveRows): LiveLoadResult {
  const committed = new Map<number, number>();
  let expected = 0;
  rows.ids.forEach((id, i) => {
    committed.set(Number(id), rows.committedAt[i] ?? NaN);
    expected += deliveriesOf(plan.groups, rows.categoryIds[i] ?? 0);
  });
  const lags = new Float64Array(count);
  let matched = 0;
  for (let i = 0; i < count; i += 1) {
    const at = committed.get(ids[i] as number);
    if (at !== undefined) lags[matched++] = (times[i] as number) - at;
  }
  const sorted = lags.subarray(0, matched).sort();
  const quantile = (q: number) => sorted[Math.min(matched - 1, Math.max(0, Math.ceil(q * matched) - 1))] as number;
  let sum = 0;
  for (const lag of sorted) sum += lag;
  // Each group's results for each row against the bytes the row must produce for it.
  let wrong = differing;
  rows.ids.forEach((id, i) => {
    const row = { id, number: rows.numbers[i] ?? NaN, categoryId: rows.categoryIds[i] ?? NaN };
    plan.groups.forEach((group, groupIndex) => {
      const first = seen[groupIndex]?.get(Number(id));
      if (first && first.data !== expectedData(group, row)) wrong += first.count;
    });
  });
  const round = (ms: number) => Math.round(ms * 100) / 100;
  const cpu = process.cpuUsage(cpuAtReset);
  return {
    subscriptions: streams.length,
    received: matched,
    expected,
    wrong,
    errors,
    unknown: count - matched + unreadable,
    outOfOrder,
    ended,
    lagMs:
      matched === 0
        ? undefined
        : { p50: round(quantile(0.5)), p90: round(quantile(0.9)), p99: round(quantile(0.99)), max: round(quantile(1)), mean: round(sum / matched) },
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'count') {
    print({ event: 'count', received: count, ended: Object.values(ended).reduce((a, b) => a + b, 0) });
  } else if (line === 'reset') {
    count = 0;
    unreadable = 0;
    errors = 0;
    outOfOrder = 0;
    differing = 0;
    ended = {};
    seen = plan.groups.map(() => new Map());
    cpuAtReset = process.cpuUsage();
    print({ event: 'reset' });
  } else if (line.startsWith('rows ')) {
    print({ event: 'result', ...result(JSON.parse(line.slice(5)) as LiveRows) });
    for (const stream of streams) stream.close();
    process.exit(0);
  }
});
// Stdin closed (the bench is gone): nothing more to do.
lines.on('close', () => process.exit(0));
