/**
 * `npm run bench`: poolgraph against a no-GraphQL baseline and against itself without pooling,
 * in one run on one PostgreSQL. See README "Benchmarks" and `docs/benchmarks.md` (which this
 * writes, with `docs/benchmarks.svg`).
 *
 *   npm run bench -- [--seconds 10] [--warmup-seconds 2] [--connections 32]
 *                    [--workloads W1,W1-token,W2,W3,W4,W5,W6] [--targets poolgraph,raw,unpooled]
 *                    [--live-subscribers 1000,100]
 *                    [--rounds 1] [--attempts 3] [--no-write] [--output docs/benchmarks.md]
 *                    [--profile DIR] [--seed] [--verbose] [--node 24] [--peers]
 *
 * Without `DATABASE_URL` it starts an embedded PostgreSQL (with `pg_stat_statements`) in a temp
 * folder, seeded 100 x 100, and removes it afterwards. With `DATABASE_URL` it uses that database
 * as it finds it and never writes to it (W4 is skipped), unless `--seed` says it may replace all
 * of its rows with the data set (then W4 runs too).
 *
 * Every poolgraph server runs in `AUTH_MODE=jwt` (a random `AUTH_JWT_SECRET` of the run) and,
 * where the bench may write (the embedded database, or `--seed`), logs in as `poolgraph_app`, the
 * non-superuser role row-level security binds, as `npm start` requires in that mode; migrations,
 * the seed and the bench's observer use the database owner's role. One HS256 token is signed at
 * start and sent as `Authorization: Bearer` by W1-token and W4 (a write needs one in jwt mode).
 *
 * W6 (live updates, `live.ts`) runs on poolgraph only, once per `--live-subscribers` count: that
 * many GraphQL-over-SSE subscriptions held by a subscriber process of its own while the bench
 * INSERTs 200 items a second for `--seconds` (after `--warmup-seconds` at the same rate); it
 * reports the delivery lag (p50/p99), statements per tick, peak connections and server CPU per
 * delivered result, in a section of the report and under `live` in the JSON summary.
 *
 * A run during which other processes used the CPU is measured again, up to `--attempts` times.
 * With `--rounds N` every run is repeated N times, the targets interleaved, and the median (by
 * req/s) reported with the range. `--node 24` runs the servers (poolgraph, raw, unpooled) on the
 * newest Node 24 from the npm package `node` (through npx) instead of the bench's own Node; the
 * load generator stays on the bench's, so two runs differ only in the servers' Node. The report
 * and the JSON summary say which Node the servers ran on. The last line printed is a JSON summary;
 * the exit code is 1 when any answer was wrong or any request failed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.js';
import { machineBusySeconds } from './cpu.js';
import { createBenchAuth } from './auth.js';
import { type NodeBinary, resolveNodeBinary } from './node-binary.js';
import { type BenchDatabase, Observer, openBenchDatabase } from './database.js';
import { type Measurement, measure, median, otherCores } from './measure.js';
import { ensurePeersInstalled, PEER_NAMES, PEER_WORKLOAD_NAMES, type PeerName, isPeerName, peerWorkload } from './peers.js';
import type { BenchTarget } from './protocol.js';
import { allCorrect, type PeerRatio, rate, renderReport, type RunInfo, sorted } from './report.js';
import { type LiveMeasurement, cpuMsPerDelivery, liveCorrect, liveMedian, liveOtherCores, measureLive } from './live.js';
import { WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from './workloads.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const POOL_SIZE = 10;
/** Above this much CPU used by other processes (in cores), a run is measured again. */
const BUSY_CORES = 0.15;
const MAX_OVERFLOW = 0;
/**
 * The workloads each target answers: raw knows W1 and W2, unpooled is measured on W1. Neither runs
 * W1-token: raw verifies no tokens (it has no GraphQL or auth to compare), and unpooled's cost is
 * its new connection per request, which a token does not change.
 */
const SUPPORTED: Record<BenchTarget, readonly WorkloadName[]> = {
  poolgraph: WORKLOAD_NAMES,
  raw: ['W1', 'W2'],
  unpooled: ['W1'],
  ...(Object.fromEntries(PEER_NAMES.map((peer) => [peer, PEER_WORKLOAD_NAMES])) as Record<PeerName, readonly WorkloadName[]>),
};

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    workloads: { type: 'string', default: 'W1,W1-token,W2,W3,W4,W5,W6' },
    'live-subscribers': { type: 'string', default: '1000,100' },
    targets: { type: 'string', default: 'poolgraph,raw,unpooled' },
    output: { type: 'string', default: 'docs/benchmarks.md' },
    'no-write': { type: 'boolean', default: false },
    profile: { type: 'string' },
    seed: { type: 'boolean', default: false },
    attempts: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    verbose: { type: 'boolean', default: false },
    node: { type: 'string' },
    peers: { type: 'boolean', default: false },
  },
});

/**
 * What follows this line in the report file is written by hand (figures of other runs, such as
 * Node 20 against Node 24) and survives a rewrite.
 */
const KEPT_MARKER = '<!-- npm run bench keeps everything below this line -->';

/** The new report, followed by the hand-written part of the file it replaces, if any. */
function withKeptSection(report: string, file: string): string {
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const at = previous.indexOf(KEPT_MARKER);
  return at === -1 ? report : `${report.trimEnd()}\n\n${previous.slice(at)}`;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function boundedInteger(name: string, value: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) fail(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  return parsed;
}

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((item) => item.trim()).filter(Boolean);
  const wrong = items.filter((item) => !allowed.includes(item as T));
  if (items.length === 0 || wrong.length > 0) fail(`--${name} takes a comma-separated list of ${allowed.join(', ')}; got "${value}"`);
  return items as T[];
}

const seconds = boundedInteger('seconds', values.seconds, 1, 600);
const warmupSeconds = boundedInteger('warmup-seconds', values['warmup-seconds'], 0, 600);
const connections = boundedInteger('connections', values.connections, 1, 1024);
const attempts = boundedInteger('attempts', values.attempts, 1, 10);
const rounds = boundedInteger('rounds', values.rounds, 1, 20);
const workloads = list<WorkloadName | 'W6'>('workloads', values.workloads, [...WORKLOAD_NAMES, 'W6']);
const liveSubscribers = values['live-subscribers']
  .split(',')
  .map((count) => boundedInteger('live-subscribers', count.trim(), 1, 100_000));
// --peers adds every peer (peers.ts) to the targets; --targets may also name peers one by one.
const targets = list<BenchTarget>('targets', values.targets, ['poolgraph', 'raw', 'unpooled', ...PEER_NAMES]);
if (values.peers) targets.push(...PEER_NAMES.filter((peer) => !targets.includes(peer)));
const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
// A profiled server is slower: its numbers must not replace the committed ones.
const write = !values['no-write'] && profileDir === undefined;
const output = resolve(REPO_ROOT, values.output);
const chartFile = output.replace(/\.md$/, '') + '.svg';
if (profileDir) mkdirSync(profileDir, { recursive: true });

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
let serverNode: NodeBinary;
try {
  serverNode = resolveNodeBinary(values.node);
} catch (error) {
  fail((error as Error).message);
}
log(`servers run on Node ${serverNode.version} (${serverNode.path})${serverNode.path === process.execPath ? '' : `; the load generator on ${process.version}`}`);
const databaseUrl = process.env.DATABASE_URL || undefined;
if (values.seed && !databaseUrl) log('--seed only matters with DATABASE_URL; the embedded database is always seeded');
// Before any database or server: a peer install that fails ends the run here, once, with npm's lines.
const peersRun = targets.some(isPeerName);
if (peersRun) await ensurePeersInstalled(log);

const busyBefore = machineBusySeconds();
await new Promise((resolve) => setTimeout(resolve, 1_000));
const busyAfter = machineBusySeconds();
if (busyBefore !== undefined && busyAfter !== undefined && busyAfter - busyBefore > 0.25) {
  log(`the machine is busy before the run starts (${(busyAfter - busyBefore).toFixed(2)} cores in use): the numbers will be low`);
}
log(databaseUrl ? 'using DATABASE_URL' : 'starting an embedded PostgreSQL with pg_stat_statements');
const database: BenchDatabase = await openBenchDatabase(databaseUrl, values.seed);
log(`the servers log in as ${database.serverRole}`);
let exitCode = 0;
try {
  const observer = await Observer.connect(database.url, database.writable);
  try {
    if (!observer.statementSource) log('pg_stat_statements is not available: counting statements in the server processes instead');
    if (!observer.postmasterPid) log('PostgreSQL does not run on this machine (or /proc cannot show it): no CPU figure for it');
    const auth = await createBenchAuth();
    // The run's own token settings only: an AUTH_ISSUER or AUTH_JWKS_URL of the caller's shell
    // would make the servers refuse the bench's token.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AUTH_')));
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      DATABASE_URL: database.serverUrl,
      AUTH_MODE: 'jwt',
      AUTH_JWT_SECRET: auth.secret,
      POOL_SIZE: String(POOL_SIZE),
      POOL_MAX_OVERFLOW: String(MAX_OVERFLOW),
      // Beside peers (--peers, or named in --targets), poolgraph runs at npm start's defaults
      // (issue 21): its request log line at info.
      LOG_LEVEL: process.env.LOG_LEVEL || (peersRun ? 'info' : 'warn'),
    };
    const context = { database, token: auth.token, observer, env, connections, seconds, warmupSeconds, profileDir, verbose: values.verbose, nodePath: serverNode.path, log };
    /**
     * Measures one workload on one target; a run that shared the machine with other work is
     * measured again, keeping the least disturbed attempt: its numbers would be low for reasons
     * that are not the server's.
     */
    const measureUndisturbed = async (target: BenchTarget, name: WorkloadName, round: number): Promise<Measurement> => {
      let kept: Measurement | undefined;
      let attempt = 1;
      for (; ; attempt += 1) {
        log(`${target} ${name}${rounds > 1 ? ` (round ${round})` : ''}: ${warmupSeconds} s warm-up + ${seconds} s at c=${connections}`);
        const workload = isPeerName(target) ? peerWorkload(target, name) : WORKLOADS[name];
        const measurement = await measure(target, workload, context).catch(
          (error: unknown): Measurement => ({ target, workload: name, status: 'failed', note: (error as Error).message }),
        );
        log(`${target} ${name}: ${describe(measurement)}`);
        if (!kept || (otherCores(measurement) ?? 0) < (otherCores(kept) ?? 0)) kept = measurement;
        const other = otherCores(measurement);
        if (other === undefined || other <= BUSY_CORES || attempt === attempts) break;
        log(`other processes used ${other.toFixed(2)} cores during that run (${measurement.busiestOthers || 'unattributed'}): measuring again`);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
      }
      return { ...kept, attempts: attempt };
    };

    /** W6 at `count` subscribers, measured again (up to `--attempts`) while other processes used the CPU. */
    const measureLiveUndisturbed = async (count: number, round: number): Promise<LiveMeasurement> => {
      let kept: LiveMeasurement | undefined;
      let attempt = 1;
      for (; ; attempt += 1) {
        log(`poolgraph W6${rounds > 1 ? ` (round ${round})` : ''}: ${count} subscribers, ${warmupSeconds} s warm-up + ${seconds} s of writes at 200/s`);
        const measurement = await measureLive(count, context).catch(
          (error: unknown): LiveMeasurement => ({ workload: 'W6', subscribers: count, status: 'failed', note: (error as Error).message }),
        );
        log(`poolgraph W6 (${count} subscribers): ${describeLive(measurement)}`);
        if (!kept || (liveOtherCores(measurement) ?? 0) < (liveOtherCores(kept) ?? 0)) kept = measurement;
        const other = liveOtherCores(measurement);
        if (other === undefined || other <= BUSY_CORES || attempt === attempts) break;
        log(`other processes used ${other.toFixed(2)} cores during that run (${measurement.busiestOthers || 'unattributed'}): measuring again`);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
      }
      return { ...kept, attempts: attempt };
    };

    // Rounds interleave the targets: each workload runs on every target, one after the other,
    // before the next workload, so that a slow spell of the machine hits all of them alike.
    const byRound: Measurement[][] = [];
    for (let round = 1; round <= rounds; round += 1) {
      const measured: Measurement[] = [];
      for (const name of WORKLOAD_NAMES) {
        for (const target of targets) {
          if (workloads.includes(name) && SUPPORTED[target].includes(name)) measured.push(await measureUndisturbed(target, name, round));
        }
      }
      byRound.push(measured);
    }
    const measurements = (byRound[0] ?? []).map((first, i) => median(byRound.map((measured) => measured[i] ?? first)));
    const peerRatios = peerRatiosOf(byRound, targets.filter(isPeerName));

    // W6 on poolgraph, after the HTTP workloads: each round, each number of subscribers.
    const liveRounds: LiveMeasurement[][] = liveSubscribers.map(() => []);
    if (workloads.includes('W6') && targets.includes('poolgraph')) {
      for (let round = 1; round <= rounds; round += 1) {
        for (const [i, count] of liveSubscribers.entries()) liveRounds[i]?.push(await measureLiveUndisturbed(count, round));
      }
    }
    const live = liveRounds.filter((measured) => measured.length > 0).map(liveMedian);

    const info: RunInfo = {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
      node: serverNode.version,
      benchNode: process.version,
      postgres: observer.serverVersion,
      database: database.description,
      serverRole: database.serverRole,
      commit: commitDescription(),
      connections,
      seconds,
      warmupSeconds,
      rounds,
      poolSize: POOL_SIZE,
      maxOverflow: MAX_OVERFLOW,
      statementSource: observer.statementSource
        ? '`pg_stat_statements` (the sum of `calls` in the benchmark database, reset before each run, the bench\'s own queries left out)'
        : 'counted by the server processes themselves (poolgraph: `onScopeReleased` statistics), as `pg_stat_statements` was not available',
      profiled: profileDir !== undefined,
    };
    const chartLink = write ? relative(dirname(output), chartFile) : undefined;
    const report = renderReport(info, measurements, chartLink, live, peerRatios);
    process.stdout.write(`\n${report}\n`);
    if (write) {
      writeFileSync(output, withKeptSection(report, output));
      writeFileSync(chartFile, renderChart(measurements, `c=${connections}, ${seconds} s per workload, ${info.machine.split(',')[0]}`));
      log(`wrote ${relative(REPO_ROOT, output)} and ${relative(REPO_ROOT, chartFile)}`);
    }
    if (profileDir) log(`CPU profiles in ${profileDir}; summarise one with: npm run bench:profile -- <file.cpuprofile>`);
    const correct = allCorrect(measurements) && live.every(liveCorrect);
    if (!correct) exitCode = 1;
    const summary = {
      serverNode: serverNode.version,
      serverRole: database.serverRole,
      correct,
      ratios: {
        w1PoolgraphToRaw: ratio(rate(measurements, 'poolgraph', 'W1'), rate(measurements, 'raw', 'W1')),
        w2PoolgraphToRaw: ratio(rate(measurements, 'poolgraph', 'W2'), rate(measurements, 'raw', 'W2')),
        w1PooledToUnpooled: ratio(rate(measurements, 'poolgraph', 'W1'), rate(measurements, 'unpooled', 'W1')),
        w1TokenToW1: ratio(rate(measurements, 'poolgraph', 'W1-token'), rate(measurements, 'poolgraph', 'W1')),
      },
      peerRatios,
      // In the report's order (by target), not the run's (rounds interleave the targets).
      measurements: sorted(measurements).map((m) => ({
        target: m.target,
        workload: m.workload,
        status: m.status,
        note: m.note,
        requestsPerSecond: m.load?.requestsPerSecond,
        requestsPerSecondRange: m.range,
        requests: m.load?.requests,
        mismatches: m.load?.mismatches,
        bodiesChecked: m.load?.bodiesChecked,
        non2xx: m.load?.non2xx,
        errors: m.load ? m.load.errors + m.load.timeouts : undefined,
        statementsPerRequest: m.statementsPerRequest,
        claimStatementsPerRequest: m.claimStatementsPerRequest,
        roundTripsPerRequest: m.roundTripsPerRequest,
        peakConnections: m.peakConnections,
        otherCores: otherCores(m),
        attempts: m.attempts,
      })),
      live: live.map((m) => ({
        workload: m.workload,
        subscribers: m.subscribers,
        status: m.status,
        note: m.note,
        correct: liveCorrect(m),
        writes: m.writes?.count,
        writesPerSecond: m.writes?.perSecond,
        received: m.load?.received,
        expected: m.load?.expected,
        wrong: m.load?.wrong,
        errors: m.load?.errors,
        outOfOrder: m.load?.outOfOrder,
        ended: m.load?.ended,
        lagMs: m.load?.lagMs,
        lagP99Range: m.p99Range,
        serverLagBucketMs: m.server?.lagBucketMs,
        settleMs: m.settleMs,
        ticks: m.ticks,
        statementsPerTick: m.statementsPerTick,
        eventsPerTick: m.eventsPerTick,
        statements: m.statements,
        peakConnections: m.peakConnections,
        serverCpuMsPerDelivery: cpuMsPerDelivery(m),
        cpuCores: m.cpuSeconds && m.windowSeconds
          ? Object.fromEntries(Object.entries(m.cpuSeconds).map(([name, seconds]) => [name, seconds === undefined ? undefined : seconds / (m.windowSeconds ?? 1)]))
          : undefined,
        otherCores: liveOtherCores(m),
        attempts: m.attempts,
      })),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await observer.close();
  }
} finally {
  await database.stop();
}
process.exit(exitCode);

function describeLive(m: LiveMeasurement): string {
  if (m.status !== 'ok' || !m.load) return `${m.status}${m.note ? `: ${m.note}` : ''}`;
  const l = m.load;
  const cores = (s: number | undefined) => (s === undefined || !m.windowSeconds ? '?' : (s / m.windowSeconds).toFixed(2));
  return (
    `${l.received}/${l.expected} results (${l.wrong} wrong, ${l.errors} errors, ${l.outOfOrder} out of order, ${Object.keys(l.ended).length === 0 ? 'none ended' : `ended: ${JSON.stringify(l.ended)}`}), ` +
    `lag p50 ${l.lagMs?.p50 ?? '?'} ms, p99 ${l.lagMs?.p99 ?? '?'} ms, max ${l.lagMs?.max ?? '?'} ms; ` +
    `${m.writes?.count ?? '?'} writes at ${m.writes?.perSecond.toFixed(0) ?? '?'}/s; ${m.ticks ?? '?'} ticks, ` +
    `${m.statementsPerTick?.toFixed(2) ?? '?'} statements/tick (${m.eventsPerTick?.toFixed(2) ?? '?'} events/tick); peak ${m.peakConnections ?? '?'} connections; ` +
    `CPU server ${cores(m.cpuSeconds?.server)}, PostgreSQL ${cores(m.cpuSeconds?.postgres)}, subscribers ${cores(m.cpuSeconds?.load)} cores; ` +
    `${cpuMsPerDelivery(m)?.toFixed(4) ?? '?'} server CPU ms/result`
  );
}

function describe(m: Measurement): string {
  if (m.status !== 'ok' || !m.load) return `${m.status}${m.note ? `: ${m.note}` : ''}`;
  const l = m.load;
  return (
    `${Math.round(l.requestsPerSecond)} req/s, p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms, ` +
    `${m.statementsPerRequest?.toFixed(2) ?? '?'} statements/request ` +
    `(${m.claimStatementsPerRequest?.toFixed(2) ?? '?'} set_config), ${m.roundTripsPerRequest?.toFixed(2) ?? '?'} round trips/request, peak ${m.peakConnections} connections, ` +
    `${l.mismatches} wrong, ${l.non2xx} non-2xx, ${l.errors + l.timeouts} socket errors`
  );
}

/**
 * poolgraph's req/s over each peer's, per workload: the median of the per-round ratios (each
 * round's two runs were measured back to back), with the rounds' lowest and highest.
 */
function peerRatiosOf(byRound: readonly Measurement[][], peers: readonly PeerName[]): PeerRatio[] {
  const result: PeerRatio[] = [];
  for (const peer of peers) {
    for (const workload of PEER_WORKLOAD_NAMES) {
      const perRound = byRound
        .map((measured) => ratio(rate(measured, 'poolgraph', workload), rate(measured, peer, workload)))
        .filter((value): value is number => value !== undefined)
        .sort((a, b) => a - b);
      if (perRound.length === 0) continue;
      const mid = Math.floor(perRound.length / 2);
      const value = perRound.length % 2 === 1 ? perRound[mid]! : (perRound[mid - 1]! + perRound[mid]!) / 2;
      result.push({ peer, workload, ratio: value, range: [perRound[0]!, perRound.at(-1)!], rounds: perRound.length });
    }
  }
  return result;
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a / b;
}

/** The commit measured, and whether the working tree differed from it. */
function commitDescription(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'src').length > 0;
    return dirty ? `commit ${commit} with uncommitted changes in src/` : `commit ${commit}`;
  } catch {
    return 'an unknown commit (no git)';
  }
}
