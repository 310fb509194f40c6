import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LoadPlan, LoadResult } from './load.js';
import { requestProfile } from './profiler.js';
import { READY_PREFIX, type ServerMode, STATS_PATH } from './protocol.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVER_ENTRY = fileURLToPath(new URL('./server.ts', import.meta.url));
const LOAD_ENTRY = fileURLToPath(new URL('./load.ts', import.meta.url));

/** Lines a child printed last, for the error message when it fails. */
export class Tail {
  readonly #lines: string[] = [];
  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > 20) this.#lines.shift();
  }
  toString(): string {
    return this.#lines.join('\n');
  }
}

/** A bench server process (see `server.ts`). */
export interface ServerProcess {
  pid: number;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** The requests and statements it has counted itself. */
  stats(): Promise<{ requests: number; statements: number }>;
  /** Starts or stops its CPU profiler (stopping writes the profile file). */
  profile(action: 'start' | 'stop'): Promise<void>;
  /** SIGTERM, then waits for the exit (SIGKILL after 15 s). */
  stop(): Promise<void>;
}

/** Options of {@link startServer}. */
export interface StartServerOptions {
  mode: ServerMode;
  env: NodeJS.ProcessEnv;
  /** Allow the server to profile itself into this file (see `PROFILE_PATH`). */
  profileFile?: string;
  /** Copy the server's output to stderr. */
  verbose: boolean;
  /** The Node executable it runs on. @default this process's own (`process.execPath`) */
  nodePath?: string;
}

/** Spawns `tools/bench/server.ts` and waits until it listens. */
export function startServer(options: StartServerOptions): Promise<ServerProcess> {
  return spawnBenchServer({
    label: `the ${options.mode} server`,
    prefix: options.mode,
    args: ['--import', 'tsx', SERVER_ENTRY, '--mode', options.mode],
    cwd: REPO_ROOT,
    env: options.profileFile ? { ...options.env, BENCH_PROFILE_FILE: options.profileFile } : options.env,
    verbose: options.verbose,
    nodePath: options.nodePath,
  });
}

/**
 * What {@link spawnBenchServer} runs: any process that speaks the bench server protocol
 * (protocol.ts), its profile endpoint (profiler.ts) included.
 */
export interface BenchServerSpawn {
  /** For messages: "the raw server", "the mercurius peer". */
  label: string;
  /** Before each line copied to stderr with `verbose`. */
  prefix: string;
  /** Node's arguments (`--import tsx <entry> …`). */
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  verbose: boolean;
  nodePath: string | undefined;
}

/**
 * Spawns a bench server (poolgraph's `server.ts` or a peer), waits until it prints its ready line
 * (60 s at most; killed otherwise), and returns it as a {@link ServerProcess}.
 */
export async function spawnBenchServer(spec: BenchServerSpawn): Promise<ServerProcess> {
  const child = spawn(spec.nodePath ?? process.execPath, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new Tail();
  const exited = once(child, 'exit');
  const lines = [createInterface({ input: child.stdout }), createInterface({ input: child.stderr })];
  const ready = new Promise<number>((resolve, reject) => {
    const onLine = (line: string) => {
      if (spec.verbose) process.stderr.write(`[${spec.prefix}] ${line}\n`);
      tail.push(line);
      if (line.startsWith(READY_PREFIX)) resolve((JSON.parse(line.slice(READY_PREFIX.length)) as { port: number }).port);
    };
    for (const reader of lines) reader.on('line', onLine);
    void exited.then(([code]) => reject(new Error(`${spec.label} exited (${code}) before listening:\n${tail}`)));
  });
  const port = await withTimeout(ready, 60_000, `${spec.label} did not start within 60 s:\n${tail}`).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  if (!spec.verbose) {
    // Once it listens nothing reads its output (the tail is for a failed start), so stop splitting
    // it into lines: poolgraph at LOG_LEVEL=info prints one per request, and parsing them in this
    // process took CPU from the run it measures. The output is still drained, so it never blocks.
    for (const reader of lines) reader.close();
    child.stdout.resume();
    child.stderr.resume();
  }
  const origin = `http://127.0.0.1:${port}`;
  return {
    pid: pidOf(child),
    origin,
    async stats() {
      const response = await fetch(`${origin}${STATS_PATH}`);
      return (await response.json()) as { requests: number; statements: number };
    },
    profile: (action) => requestProfile(origin, action),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Events of a load process, in order. */
export interface LoadProcess {
  pid: number;
  /** Resolves when the warm-up is over and the process waits for {@link LoadProcess.go}. */
  warmed: Promise<void>;
  /** Starts the measured run; resolves with its result. */
  go(): Promise<LoadResult>;
  /** Kills the process if it still runs (a measurement that failed before or during `go`). */
  kill(): void;
}

/** Spawns `tools/bench/load.ts` with `plan`; the warm-up starts at once. */
export function startLoad(plan: LoadPlan): LoadProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD_ENTRY, JSON.stringify(plan)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const tail = new Tail();
  createInterface({ input: child.stderr }).on('line', (line) => tail.push(line));
  const exited = once(child, 'exit');
  const failed = exited.then(([code]) => {
    throw new Error(`the load generator exited (${code}) early:\n${tail}`);
  });
  failed.catch(() => undefined);
  let onWarmed!: () => void;
  let onResult!: (result: LoadResult) => void;
  const warmed = new Promise<void>((resolve) => (onWarmed = resolve));
  const result = new Promise<LoadResult>((resolve) => (onResult = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    tail.push(line);
    if (!line.startsWith('{')) return;
    const event = JSON.parse(line) as { event: string } & LoadResult;
    if (event.event === 'warmed') onWarmed();
    if (event.event === 'result') {
      const { event: _event, ...loadResult } = event;
      onResult(loadResult);
    }
  });
  const timeoutMs = (plan.warmupSeconds + plan.seconds) * 1000 + 60_000;
  const kill = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  return {
    pid: pidOf(child),
    warmed: Promise.race([warmed, failed]),
    go() {
      child.stdin.end('go\n');
      return withTimeout(Promise.race([result, failed]), timeoutMs, 'the load generator did not finish in time').finally(kill);
    },
    kill,
  };
}

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('a child process could not be started');
  return child.pid;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
