import { join } from 'node:path';
import type { BenchDatabase, Observer } from './database.js';
import { busiestOthers, machineBusySeconds, postgresCpuSeconds, processCpuSeconds, processSnapshot } from './cpu.js';
import type { LoadResult } from './load.js';
import { type LoadProcess, type ServerProcess, startLoad, startServer } from './processes.js';
import { isPeerName, startPeer } from './peers.js';
import type { BenchTarget } from './protocol.js';
import { isExpectedBody, type Workload, type WorkloadName } from './workloads.js';

/** One (target, workload) of a run and what came of it. */
export interface Measurement {
  target: BenchTarget;
  workload: WorkloadName;
  /**
   * `ok`: measured; `wrong-answer`: the check before loading failed, so nothing was loaded;
   * `skipped`: not allowed on this database; `failed`: a process of the bench failed.
   */
  status: 'ok' | 'wrong-answer' | 'skipped' | 'failed';
  /** Why it was skipped or failed, or what the wrong answer was. */
  note?: string;
  load?: LoadResult;
  /**
   * SQL statements per completed request during the measured run, as PostgreSQL counts them
   * (`pg_stat_statements`; the server's own count without it): a `set_config` pipelined before a
   * statement counts as one more.
   */
  statementsPerRequest?: number;
  /** Where the statement count came from. */
  statementSource?: 'pg_stat_statements' | 'server counter';
  /**
   * Of {@link Measurement.statementsPerRequest}, the `set_config('request.jwt.claims', ...)` that
   * carry the caller's claims (only with `pg_stat_statements`).
   */
  claimStatementsPerRequest?: number;
  /**
   * Round trips to PostgreSQL per completed request: the server's own count (poolgraph: the
   * scope's `statements`, one per statement it sent, with whatever was pipelined before it).
   */
  roundTripsPerRequest?: number;
  /** Most of the servers' connections seen in `pg_stat_activity` during the measured run. */
  peakConnections?: number;
  /**
   * CPU time during the measured run, in seconds: of each process group, and of the whole machine
   * (so that `machine - server - postgres - load` is what everything else used).
   */
  cpuSeconds?: { server?: number; postgres?: number; load: number; machine?: number };
  /** Wall time of the CPU window, in seconds. */
  windowSeconds?: number;
  /** The other processes that used the most CPU during the measured run. */
  busiestOthers?: string;
  /** How many times it was measured (see `--attempts`); this is the least disturbed one. */
  attempts?: number;
  /** With several rounds: the lowest and highest req/s of the rounds (this is the median one). */
  range?: [number, number];
}

/** What {@link measure} needs besides the target and workload. */
export interface MeasureContext {
  database: BenchDatabase;
  /** The token sent as `Authorization: Bearer` by the workloads that carry one. */
  token: string;
  observer: Observer;
  env: NodeJS.ProcessEnv;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Where the server's CPU profile of the measured run goes, when profiling. */
  profileDir: string | undefined;
  verbose: boolean;
  /** The Node executable the servers run on (the load generator runs on the bench's own). */
  nodePath: string;
  log(line: string): void;
}

/** How often `pg_stat_activity` is polled for the peak of connections. */
const POLL_INTERVAL_MS = 20;

/**
 * Measures one workload on one target: starts a server process of its own, checks its answer
 * (three times) against the expected bytes, warms it up, then loads it from a separate process
 * while counting statements, connections and CPU, and stops it. A workload that wrote has the data
 * set restored afterwards.
 */
export async function measure(target: BenchTarget, workload: Workload, context: MeasureContext): Promise<Measurement> {
  const { observer } = context;
  if (workload.writes && !context.database.writable) {
    return {
      target,
      workload: workload.name,
      status: 'skipped',
      note: 'writes rows: with DATABASE_URL it runs only with --seed',
    };
  }
  // Peers are profiled too: a peer's profile beside poolgraph's shows what it does differently.
  const profileFile = context.profileDir ? { profileFile: join(context.profileDir, `${target}-${workload.name}.cpuprofile`) } : {};
  const server = isPeerName(target)
    ? await startPeer(target, { env: context.env, verbose: context.verbose, nodePath: context.nodePath, ...profileFile })
    : await startServer({ mode: target, env: context.env, verbose: context.verbose, nodePath: context.nodePath, ...profileFile });
  let load: LoadProcess | undefined;
  try {
    const url = `${server.origin}${target === 'raw' ? `/${workload.name}` : '/graphql'}`;
    const headers: Record<string, string> = workload.token ? { authorization: `Bearer ${context.token}` } : {};
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: workload.body,
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.text();
      if (response.status !== 200 || !isExpectedBody(workload, body)) {
        return {
          target,
          workload: workload.name,
          status: 'wrong-answer',
          note: `HTTP ${response.status}: ${body.slice(0, 300)}`,
        };
      }
    }

    const generator = startLoad({
      url,
      body: workload.body,
      headers,
      expected: 'exact' in workload.expected ? workload.expected : { pattern: workload.expected.pattern.source },
      connections: context.connections,
      warmupSeconds: context.warmupSeconds,
      seconds: context.seconds,
    });
    load = generator;
    await generator.warmed;

    // Requests the warm-up abandoned still finish on the server: let them, so that the counters
    // below start together.
    const serverStatsBefore = await settle(server);
    await observer.resetStatements();
    const statementsBefore = await observer.statementCount();
    const serverCpuBefore = processCpuSeconds(server.pid);
    const postgresCpuBefore = observer.postmasterPid && postgresCpuSeconds(observer.postmasterPid);
    const processesBefore = processSnapshot();
    const machineBefore = machineBusySeconds();
    const startedAt = performance.now();
    observer.startPolling(POLL_INTERVAL_MS);
    let result: LoadResult;
    let peakConnections: number;
    try {
      const profiled = context.profileDir !== undefined;
      if (profiled) await server.profile('start');
      result = await generator.go();
      if (profiled) await server.profile('stop');
    } finally {
      // On every path: a poll left running would query every 20 ms through the next runs.
      peakConnections = await observer.stopPolling();
    }
    const windowSeconds = (performance.now() - startedAt) / 1000;
    const machineAfter = machineBusySeconds();
    const processesAfter = processSnapshot();
    const serverCpuAfter = processCpuSeconds(server.pid);
    const postgresCpuAfter = observer.postmasterPid && postgresCpuSeconds(observer.postmasterPid);
    // Statements per request divides the statements by the requests the SERVER answered in the
    // same window, once the requests autocannon cut off at the end have finished too: autocannon's
    // own count leaves those out, though their statements ran.
    const serverStatsAfter = await settle(server);
    const statementsAfter = await observer.statementCount();

    const fromPgStat = statementsBefore !== undefined && statementsAfter !== undefined;
    const roundTrips = serverStatsAfter.statements - serverStatsBefore.statements;
    const statements = fromPgStat ? statementsAfter.statements - statementsBefore.statements : roundTrips;
    const answered = serverStatsAfter.requests - serverStatsBefore.requests;
    const perRequest = (count: number) => (answered > 0 ? count / answered : undefined);
    const postmaster = observer.postmasterPid;
    const ours = (pid: number, entry: { ppid: number }) =>
      pid === process.pid || pid === server.pid || pid === generator.pid || pid === postmaster || entry.ppid === postmaster;
    return {
      target,
      workload: workload.name,
      status: 'ok',
      load: result,
      statementsPerRequest: perRequest(statements),
      statementSource: fromPgStat ? 'pg_stat_statements' : 'server counter',
      claimStatementsPerRequest: fromPgStat ? perRequest(statementsAfter.claims - statementsBefore.claims) : undefined,
      roundTripsPerRequest: perRequest(roundTrips),
      peakConnections,
      cpuSeconds: {
        server: difference(serverCpuBefore, serverCpuAfter),
        postgres: difference(postgresCpuBefore, postgresCpuAfter),
        load: result.cpuSeconds,
        machine: difference(machineBefore, machineAfter),
      },
      windowSeconds,
      busiestOthers: busiestOthers(processesBefore, processesAfter, ours, 3),
    };
  } finally {
    load?.kill();
    await server.stop();
    if (workload.writes) await context.database.reseed();
  }
}

/**
 * The round whose req/s is the median (the lower middle one of an even count), with the range of
 * all rounds; a round that did not measure is returned instead, so that a failure shows.
 */
export function median(rounds: readonly Measurement[]): Measurement {
  const failed = rounds.find((m) => m.status !== 'ok' || !m.load);
  if (failed || rounds.length < 2) return failed ?? (rounds[0] as Measurement);
  const sorted = [...rounds].sort((a, b) => (a.load?.requestsPerSecond ?? 0) - (b.load?.requestsPerSecond ?? 0));
  const middle = sorted[Math.floor((sorted.length - 1) / 2)] as Measurement;
  return {
    ...middle,
    range: [sorted[0]?.load?.requestsPerSecond ?? 0, sorted.at(-1)?.load?.requestsPerSecond ?? 0],
  };
}

/**
 * The cores used during the measured run by everything but the server, PostgreSQL and the load
 * generator (other programs, the bench's orchestrator, kernel work charged to no process).
 */
export function otherCores(m: Measurement): number | undefined {
  const cpu = m.cpuSeconds;
  if (!cpu || !m.windowSeconds || cpu.machine === undefined || cpu.server === undefined || cpu.postgres === undefined) {
    return undefined;
  }
  return (cpu.machine - cpu.server - cpu.postgres - cpu.load) / m.windowSeconds;
}

/** Waits until the server's counters stop moving (at most 5 s) and returns them. */
async function settle(server: ServerProcess): Promise<{ requests: number; statements: number }> {
  let last = await server.stats();
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = await server.stats();
    if (now.requests === last.requests && now.statements === last.statements) return now;
    last = now;
  }
  return last;
}

function difference(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : after - before;
}
