import { cpuMsPerDelivery, LIVE_WRITE_RATE, type LiveMeasurement, liveCorrect, liveOtherCores } from './live.js';
import { LIVE_CATEGORIES } from './live-workload.js';
import { type Measurement, otherCores } from './measure.js';
import type { BenchTarget } from './protocol.js';
import { PEER_NAMES } from './peers.js';
import { fixed, okMeasurement, whole } from './report-format.js';
import { type PeerRatio, peersSection } from './report-peers.js';
import { WORKLOADS, type WorkloadName } from './workloads.js';

export type { PeerRatio } from './report-peers.js';

/** What a run was, for the report's header. */
export interface RunInfo {
  date: string;
  machine: string;
  /** The Node version the servers ran on (`--node`, or the bench's own). */
  node: string;
  /** The Node version of the bench itself and its load generator. */
  benchNode: string;
  postgres: string;
  database: string;
  /** The role the servers log in as, and whether row-level security binds it. */
  serverRole: string;
  commit: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** How many times each run was repeated (the median is reported). */
  rounds: number;
  poolSize: number;
  maxOverflow: number;
  /** Where the statement counts came from, or why there are none. */
  statementSource: string;
  /** Set when the run was profiled (the numbers then include the profiler's cost). */
  profiled: boolean;
}

/** A check of issue 8's (and issue 19's) targets: a ratio or a count, and whether it is met. */
interface Check {
  what: string;
  value: string;
  target: string;
  met: boolean | undefined;
}

const ORDER: readonly WorkloadName[] = ['W1', 'W1-token', 'W2', 'W3', 'W4', 'W5'];

/**
 * The most SQL statements per request PostgreSQL may count for each workload on poolgraph. A
 * workload with a token has one more: the `set_config` of the caller's claims, pipelined in the
 * same round trip as the statement after it.
 */
const STATEMENT_TARGETS: Partial<Record<WorkloadName, { max: number; target: string }>> = {
  W1: { max: 1, target: '1' },
  'W1-token': { max: 2, target: '2: set_config + the SELECT' },
  W2: { max: 3, target: '≤ 3' },
  W3: { max: 1, target: '1' },
  W4: { max: 2, target: '2: set_config + the INSERT (no BEGIN/COMMIT it does not need)' },
  W5: { max: 1, target: '1' },
};
const TARGET_ORDER: readonly BenchTarget[] = ['poolgraph', 'raw', 'unpooled', ...PEER_NAMES];

/** The measurements by target (poolgraph first, then raw, unpooled and the peers), then workload. */
export function sorted(measurements: readonly Measurement[]): Measurement[] {
  return [...measurements].sort(
    (a, b) => TARGET_ORDER.indexOf(a.target) - TARGET_ORDER.indexOf(b.target) || ORDER.indexOf(a.workload) - ORDER.indexOf(b.workload),
  );
}

/** Requests per second of a measured (target, workload), if it was measured. */
export function rate(measurements: readonly Measurement[], target: BenchTarget, workload: WorkloadName): number | undefined {
  return okMeasurement(measurements, target, workload)?.load?.requestsPerSecond;
}

/** True when every measured run answered every request right, and none failed. */
export function allCorrect(measurements: readonly Measurement[]): boolean {
  return measurements.every(
    (m) =>
      m.status === 'skipped' ||
      (m.status === 'ok' && m.load !== undefined && m.load.mismatches + m.load.non2xx + m.load.errors + m.load.timeouts === 0),
  );
}

function checks(measurements: readonly Measurement[]): Check[] {
  const result: Check[] = [];
  const ratio = (what: string, a: number | undefined, b: number | undefined, min: number | undefined, target: string) => {
    if (a === undefined || b === undefined) return;
    const value = a / b;
    result.push({ what, value: `${value.toFixed(2)} ×`, target, met: min === undefined ? undefined : value >= min });
  };
  const w1 = rate(measurements, 'poolgraph', 'W1');
  ratio('W1 poolgraph / raw', w1, rate(measurements, 'raw', 'W1'), 0.65, '≥ 0.65 ×');
  ratio('W2 poolgraph / raw', rate(measurements, 'poolgraph', 'W2'), rate(measurements, 'raw', 'W2'), 0.7, '≥ 0.70 ×');
  ratio('W1 pooled / unpooled', w1, rate(measurements, 'unpooled', 'W1'), undefined, '(for orientation)');
  ratio('W3 / W1 (poolgraph)', rate(measurements, 'poolgraph', 'W3'), w1, 0.9, '≥ 0.90 × (within 10%)');
  ratio('W4 / W1 (poolgraph)', rate(measurements, 'poolgraph', 'W4'), w1, 0.9, '≥ 0.90 × (within 10%)');
  ratio('W1-token / W1 (poolgraph, issue 19)', rate(measurements, 'poolgraph', 'W1-token'), w1, 0.9, '≥ 0.90 ×');
  for (const m of sorted(measurements)) {
    if (m.target !== 'poolgraph') continue;
    const statements = STATEMENT_TARGETS[m.workload];
    if (statements && m.statementsPerRequest !== undefined) {
      result.push({
        what: `${m.workload} SQL statements / request`,
        value: fixed(m.statementsPerRequest, 2),
        target: statements.target,
        met: m.statementsPerRequest <= statements.max + 0.005,
      });
    }
    if (WORKLOADS[m.workload].token && m.roundTripsPerRequest !== undefined) {
      result.push({
        what: `${m.workload} round trips / request`,
        value: fixed(m.roundTripsPerRequest, 2),
        target: '1',
        met: m.roundTripsPerRequest <= 1.005,
      });
    }
  }
  const ok = measurements.filter((m) => m.status === 'ok');
  const peak = Math.max(0, ...ok.map((m) => m.peakConnections ?? 0));
  const pooledPeak = Math.max(0, ...ok.filter((m) => m.target !== 'unpooled').map((m) => m.peakConnections ?? 0));
  if (ok.length > 0) {
    result.push({ what: 'peak connections (poolgraph, raw)', value: String(pooledPeak), target: '≤ 10', met: pooledPeak <= 10 });
    if (peak !== pooledPeak) result.push({ what: 'peak connections (unpooled)', value: String(peak), target: '(for orientation)', met: undefined });
  }
  const errors = ok.reduce((sum, m) => sum + (m.load ? m.load.mismatches + m.load.non2xx + m.load.errors + m.load.timeouts : 0), 0);
  if (measurements.length > 0) result.push({ what: 'wrong answers, non-2xx and socket errors', value: String(errors), target: '0', met: errors === 0 && allCorrect(measurements) });
  return result;
}

/** Issue 20's targets for W6: p99 lag, statements per tick whatever the subscribers, the pool's bound. */
function liveChecks(live: readonly LiveMeasurement[]): Check[] {
  const result: Check[] = [];
  const ok = live.filter((m) => m.status === 'ok');
  for (const m of ok) {
    const p99 = m.load?.lagMs?.p99;
    if (p99 !== undefined) result.push({ what: `W6 p99 delivery lag, ${whole(m.subscribers)} subscribers`, value: `${fixed(p99, 1)} ms`, target: '< 100 ms', met: p99 < 100 });
  }
  const perTick = ok.filter((m) => m.statementsPerTick !== undefined);
  if (perTick.length > 0) {
    result.push({
      what: `W6 SQL statements / tick (${perTick.map((m) => whole(m.subscribers)).join(' / ')} subscribers)`,
      value: perTick.map((m) => fixed(m.statementsPerTick, 2)).join(' / '),
      target: '≤ 3 whatever the subscribers: the read, one load of items, one of categories',
      met: perTick.every((m) => (m.statementsPerTick ?? Infinity) <= 3.005),
    });
  }
  if (ok.length > 0) {
    const peak = Math.max(0, ...ok.map((m) => m.peakConnections ?? 0));
    result.push({ what: 'W6 peak connections (pool + listener)', value: String(peak), target: '≤ 11: the pool\'s 10 + the listener', met: peak <= 11 });
  }
  if (live.length > 0) {
    const right = live.every(liveCorrect);
    result.push({ what: 'W6 results missing, wrong, twice, out of order, or subscriptions ended', value: right ? '0' : 'some', target: '0', met: right });
  }
  return result;
}

/** W6's section: delivery, lag, statements per tick, connections, CPU. */
function liveSection(info: RunInfo, live: readonly LiveMeasurement[]): string[] {
  const lines: string[] = [
    '## Live updates (W6, issue 20)',
    '',
    `GraphQL-over-SSE subscriptions held by a subscriber process of their own (9 in 10 \`subscription { itemCreated { id number category { name } } }\`, ` +
      `1 in 10 \`itemCreated(categoryId: c) { id number }\` over ${LIVE_CATEGORIES} categories) while the bench INSERTs ${LIVE_WRITE_RATE} items a second ` +
      `into those categories in turn for ${info.seconds} s (after ${info.warmupSeconds} s at the same rate, not measured), each INSERT autocommitted on a connection of its own.`,
    '',
    '| subscribers | writes/s | results received / expected | wrong, errors, out of order | lag p50 ms | lag p99 ms | lag max ms | server hand-over p50 / p99 (bucket) | last result after last commit ms |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const m of live) {
    if (m.status !== 'ok' || !m.load) {
      lines.push(`| ${whole(m.subscribers)} | ${m.status}: ${(m.note ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} | | | | | | | |`);
      continue;
    }
    const l = m.load;
    const ended = Object.entries(l.ended).map(([reason, count]) => `${count} ended (${reason})`).join(', ');
    const bucket = (ms: number | undefined) => (ms === undefined ? '–' : ms === Infinity ? '> 5000' : `≤ ${ms}`);
    lines.push(
      `| ${whole(m.subscribers)} | ${fixed(m.writes?.perSecond, 0)} | ${whole(l.received)} / ${whole(l.expected)} | ${l.wrong}, ${l.errors}, ${l.outOfOrder}${ended ? `; ${ended}` : ''} | ` +
        `${fixed(l.lagMs?.p50, 1)} | ${fixed(l.lagMs?.p99, 1)}${m.p99Range ? ` (${fixed(m.p99Range[0], 1)}–${fixed(m.p99Range[1], 1)})` : ''} | ${fixed(l.lagMs?.max, 1)} | ` +
        `${bucket(m.server?.lagBucketMs.p50)} / ${bucket(m.server?.lagBucketMs.p99)} | ${fixed(m.settleMs, 0)} |`,
    );
  }
  lines.push(
    '',
    '| subscribers | ticks | events / tick | SQL statements / tick | reads, item loads, category loads, other | peak connections | CPU server | CPU PostgreSQL | CPU subscribers | CPU other | server CPU ms / result |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const m of live) {
    if (m.status !== 'ok' || !m.load || !m.cpuSeconds || !m.windowSeconds) continue;
    const cores = (seconds: number | undefined) => fixed(seconds === undefined ? undefined : seconds / (m.windowSeconds ?? 1), 2);
    const st = m.statements;
    lines.push(
      `| ${whole(m.subscribers)} | ${whole(m.ticks)} | ${fixed(m.eventsPerTick, 2)} | ${fixed(m.statementsPerTick, 2)} | ` +
        `${st ? `${st.reads}, ${st.items}, ${st.categories}, ${st.other + st.claims}` : '–'} | ${m.peakConnections ?? '–'} | ` +
        `${cores(m.cpuSeconds.server)} | ${cores(m.cpuSeconds.postgres)} | ${cores(m.cpuSeconds.load)} | ${fixed(liveOtherCores(m), 2)} | ${fixed(cpuMsPerDelivery(m), 4)} |`,
    );
  }
  lines.push(
    '',
    ...live
      .filter((m) => (m.attempts ?? 1) > 1 || (liveOtherCores(m) ?? 0) > 0.15)
      .map(
        (m) =>
          `- W6 at ${whole(m.subscribers)} subscribers was measured ${m.attempts ?? 1} time(s); the least disturbed run is shown` +
          ((liveOtherCores(m) ?? 0) > 0.15 ? `, which still shared the machine (${fixed(liveOtherCores(m), 2)} cores: ${m.busiestOthers || 'unattributed'}).` : '.'),
      ),
    '- **Lag**: for every result every subscriber received, its arrival in the subscriber process (the chunk that completed it, ' +
      '`performance.timeOrigin + performance.now()`) less its row\'s commit time as the writer saw it (when its INSERT returned), both ' +
      'processes on this machine\'s clock; the percentiles weigh every delivery. It includes the subscriber process\'s own delay in reading ' +
      '(it shares the 2 cores), as autocannon\'s latency does. "Server hand-over" is the server\'s own histogram ' +
      '(`poolgraph_live_delivery_lag_seconds`, from the trigger\'s `clock_timestamp()` to the result handed to the transport, one observation ' +
      'per execution shared by a group of subscribers), as the upper bound of the bucket holding the quantile.',
    '- **Ticks**: calls of the listener\'s read of `item_events` in `pg_stat_statements`, including reads that found nothing new (a ' +
      'notification that came while a read ran); statements per tick are all the server role\'s statements (the writer, the database ' +
      'owner, is left out) divided by them. Each tick delivering rows loads them with one statement per table whatever the number of subscribers.',
    '- **Peak connections**: the pool\'s (`poolgraph`) and the listener\'s (`poolgraph-listener`) backends together, polled every 20 ms.',
    '- **CPU**: as above, over the writes and until the last result arrived; "CPU subscribers" is the subscriber process (`tools/bench/live-load.ts`), ' +
      '"other" excludes the bench itself (which writes). Server CPU ms / result divides the server\'s CPU by the results received.',
    '',
  );
  return lines;
}

/** The report as Markdown (written to docs/benchmarks.md and printed). */
export function renderReport(
  info: RunInfo,
  measurements: readonly Measurement[],
  chartPath: string | undefined,
  live: readonly LiveMeasurement[] = [],
  peerRatios: readonly PeerRatio[] = [],
): string {
  const rows = sorted(measurements);
  const lines: string[] = [];
  lines.push(
    '# Benchmarks',
    '',
    `Measured by \`npm run bench\` on ${info.date}: ${info.machine}, Node ${info.node}${info.node === info.benchNode ? '' : ` for the servers (the load generator on ${info.benchNode})`}, PostgreSQL ${info.postgres} ` +
      `(${info.database}), poolgraph at ${info.commit}, in \`AUTH_MODE=jwt\`, logged in as ${info.serverRole}. ` +
      `${info.connections} connections, ${info.seconds} s per workload after a ${info.warmupSeconds} s warm-up` +
      (info.rounds > 1 ? `, each run ${info.rounds} times (targets interleaved; the median shown, the range in brackets), ` : ', ') +
      `100 categories × 100 items, \`POOL_SIZE=${info.poolSize}\`, \`POOL_MAX_OVERFLOW=${info.maxOverflow}\`.` +
      (info.profiled ? ' **Profiled run: the V8 CPU profiler ran in the server during each measured run, which slows it down.**' : ''),
    '',
  );
  // W6 alone (`--workloads W6`) has no HTTP workload to show.
  if (rows.length > 0) {
    if (chartPath) lines.push(`![Requests per second per workload and target](${chartPath})`, '');
    lines.push(
      '## Throughput and correctness',
      '',
      '| target | workload | req/s | p50 ms | p99 ms | non-2xx | socket errors | GraphQL errors | wrong bodies |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const m of rows) {
      if (m.status !== 'ok' || !m.load) {
        lines.push(`| ${m.target} | ${m.workload} | ${m.status}: ${(m.note ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} | | | | | | |`);
        continue;
      }
      const l = m.load;
      lines.push(
        `| ${m.target} | ${m.workload} | ${whole(l.requestsPerSecond)}${m.range ? ` (${whole(m.range[0])}–${whole(m.range[1])})` : ''} | ` +
          `${fixed(l.latencyMs.p50, 0)} | ${fixed(l.latencyMs.p99, 0)} | ` +
          `${l.non2xx} | ${l.errors + l.timeouts} | ${l.graphqlErrors} | ${l.mismatches} |`,
      );
    }
    lines.push(
      '',
      '## Database and CPU',
      '',
      'CPU is in cores (CPU seconds per second of the measured run) for the server process, all of PostgreSQL\'s processes, and the load generator; the machine has ' +
        `${info.machine.split(' ')[0]} of them.`,
      '',
      '| target | workload | SQL statements / request | of them set_config | round trips / request | peak connections | CPU server | CPU PostgreSQL | CPU load generator | CPU other | server CPU ms / request |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const m of rows) {
      if (m.status !== 'ok' || !m.load || !m.cpuSeconds || !m.windowSeconds) continue;
      const cores = (seconds: number | undefined) => fixed(seconds === undefined ? undefined : seconds / (m.windowSeconds ?? 1), 2);
      const { server, postgres, load } = m.cpuSeconds;
      const perRequest = server === undefined ? undefined : (server * 1000) / m.load.requests;
      lines.push(
        `| ${m.target} | ${m.workload} | ${fixed(m.statementsPerRequest, 2)} | ${fixed(m.claimStatementsPerRequest, 2)} | ` +
          `${fixed(m.roundTripsPerRequest, 2)} | ${m.peakConnections ?? '–'} | ` +
          `${cores(server)} | ${cores(postgres)} | ${cores(load)} | ${fixed(otherCores(m), 2)} | ${fixed(perRequest, 3)} |`,
      );
    }
    const disturbed = rows.filter((m) => (otherCores(m) ?? 0) > 0.15);
    const repeated = rows.filter((m) => (m.attempts ?? 1) > 1);
    if (repeated.length > 0 || disturbed.length > 0) lines.push('');
    for (const m of repeated) {
      lines.push(`- ${m.target} ${m.workload} was measured ${m.attempts} times, as other processes used the CPU; the least disturbed run is shown.`);
    }
    for (const m of disturbed) {
      lines.push(`- ${m.target} ${m.workload} still shared the machine (${fixed(otherCores(m), 2)} cores: ${m.busiestOthers || 'unattributed'}): its figures are low.`);
    }
  }
  if (peerRatios.length > 0) lines.push('', ...peersSection(measurements, peerRatios));
  if (live.length > 0) lines.push('', ...liveSection(info, live));
  lines.push('', `## Against the targets of issues 8${live.length > 0 ? ', 19 and 20' : ' and 19'}`, '', '| what | value | target | met |', '| --- | ---: | --- | --- |');
  for (const check of [...checks(measurements), ...liveChecks(live)]) {
    lines.push(`| ${check.what} | ${check.value} | ${check.target} | ${check.met === undefined ? '' : check.met ? 'yes' : '**no**'} |`);
  }
  lines.push(
    '',
    'Through PgBouncer (`DATABASE_POOLER=transaction`), and the gains of each speed change: [benchmarks-pgbouncer.md](benchmarks-pgbouncer.md) (measured by hand, not rewritten by this command).',
    '',
    '## How it is measured',
    '',
    ...Object.values(WORKLOADS)
      .filter((w) => rows.some((m) => m.workload === w.name))
      .map((w) => `- **${w.name}**: ${w.summary}.`),
    '- **poolgraph**: `tools/bench/server.ts` runs `createServer` with the options `npm start` passes, ' +
      'in a process of its own (one per workload), its pool warmed up to `POOL_SIZE`. `LOG_LEVEL` is `warn` unless set (`info`, the default of npm start, when peers run). ' +
      'Every poolgraph server, for every workload, runs with a random `AUTH_JWT_SECRET` of the run (`AUTH_MODE=jwt`) and ' +
      'logs in as the role above (where the bench may write: `poolgraph_app`, made with a random password, neither ' +
      'superuser nor `BYPASSRLS`, so row-level security binds it, as `npm start` requires in jwt mode); migrations, ' +
      'the seed and the bench\'s observer use the database owner. So W1 and W1-token run on the same kind of server.',
    '- **The token** (W1-token, W4): one HS256 JWT signed with jose at the start of the run (`sub` `bench`, no other ' +
      'claims but `iat` and `exp`), sent as `Authorization: Bearer` on every request, as a client reuses its token. ' +
      'The server verifies it once and then finds it in its cache of verified tokens (re-verified each minute), and ' +
      'sends `select set_config(\'request.jwt.claims\', $1, true)` pipelined before the operation\'s statement: ' +
      'one round trip, one implicit transaction. So W1-token measures what a caller with a token costs over W1: the ' +
      'header, the cache look-up, an asynchronous context build, and one more statement for PostgreSQL to parse and run. ' +
      'raw and unpooled do not run it (raw has no GraphQL or authentication; unpooled\'s cost is its connection per ' +
      'request, which a token does not change). W4 carries the token because jwt mode refuses an anonymous write.',
    '- **raw**: the same process entry answering W1 and W2 with node:http and one hand-written SQL statement each ' +
      '(`tools/bench/raw-server.ts`; W2 with a LATERAL subquery and `json_agg`) on a pool made by the same `createPool`, ' +
      'sending the same JSON bytes as poolgraph: no GraphQL at all, the practical limit of Node and pg here.',
    '- **unpooled**: poolgraph on a `pg.Pool` with `maxUses: 1`, so pg-pool closes every connection when it is released ' +
      'and every request opens a new one (TCP, startup, SCRAM authentication); still at most 10 at once.',
    '- The load generator is autocannon in a process of its own (`tools/bench/load.ts`), on 127.0.0.1 only, bounded in ' +
      'time and request count. Before loading, each server answers the workload three times and each answer must equal, ' +
      'byte for byte, the JSON computed from the seed\'s formula (W4: match `{"data":{"createItem":{"id":"<digits>"}}}`); ' +
      'then **every** response of the warm-up and the measured run is compared the same way: "wrong bodies" counts those ' +
      'that differ, "GraphQL errors" those among them that carry `errors`.',
    `- SQL statements per request: ${info.statementSource}, divided by the requests that used the database in the same ` +
      'window (the server\'s own count, read once the requests autocannon cut off at the end have finished; a request ' +
      'cut off before its first statement is not counted). BEGIN and COMMIT count as statements, and so does the ' +
      '`set_config` of a caller\'s claims ("of them set_config": those whose text calls `set_config`).',
    '- Round trips per request: the server\'s own count over the same requests (poolgraph: the request scope\'s ' +
      '`statements`, as in the request log and `poolgraph_request_statements`, which counts each statement it sent with ' +
      'whatever was pipelined before it as one; raw: its one query). Without a token the two counts are equal.',
    '- Peak connections: the servers\' backends (`application_name = \'poolgraph\'`) in `pg_stat_activity`, polled every ' +
      '20 ms during the measured run. For unpooled, connections that live a few milliseconds can fall between two polls.',
    '- CPU: `utime + stime` from `/proc/<pid>/stat` before and after the measured run: the server process; PostgreSQL\'s ' +
      'postmaster with every child, live or exited (exited backends through the postmaster\'s `cutime`); the load ' +
      'generator measures itself (`process.cpuUsage()`). The bench\'s own observer connection (one poll every 20 ms) is in ' +
      'PostgreSQL\'s figure. "CPU other" is the whole machine\'s busy time (`/proc/stat`, steal included) less those three: ' +
      'the bench\'s orchestrator, the kernel\'s work not charged to them, and anything else that ran; a large value means ' +
      'the run shared the machine and its numbers are low.',
    '- W4 inserts rows; the data set is restored (reseeded) after it, before anything else runs.',
    '',
  );
  return lines.join('\n');
}
