import { fileURLToPath } from 'node:url';
import { type ManagedProcess, type ProcessExit, spawnManaged, type StopStep } from './managed-process.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The line `src/main.ts` prints once it serves. */
const BANNER = /^poolgraph: GraphiQL at http:\/\/localhost:(\d+)\/graphql$/;
/** tsx compiles the server on the first start; three start at once on two cores. */
const START_TIMEOUT_MS = 60_000;
/** More than the server's own SHUTDOWN_TIMEOUT_MS (10 s) for draining requests in flight. */
const SIGTERM_WAIT_MS = 20_000;
/** What we pass through of our own environment; poolgraph's settings come only from `env`. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_EXTRA_CA_CERTS'] as const;

/** Options of {@link startPoolgraph}. */
export interface StartPoolgraphOptions {
  /** HTTP port on 127.0.0.1. */
  port: number;
  /**
   * poolgraph's settings (`DATABASE_URL`, `DATABASE_POOLER`, `DATABASE_REPLICA_URL`, `POOL_SIZE`…).
   * `PORT` and `HOST=127.0.0.1` are set from `port`, `LOG_FORMAT` defaults to `json`; nothing else
   * of our environment reaches the server but PATH, HOME, TMPDIR, LANG, TZ and NODE_EXTRA_CA_CERTS.
   */
  env: Record<string, string>;
  /** Names it in errors and listings. @default `poolgraph` */
  name?: string;
  /** Receives every line it prints (JSON log lines, the banner). */
  onLine?: (line: string) => void;
}

/** One `node --import tsx src/main.ts` process that we started and stop by its PID. */
export class PoolgraphInstance {
  /** `instance-1`…: names it in errors and listings. */
  readonly name: string;
  /** Its HTTP port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The PID of the node process (the server itself: no npm in between). */
  readonly pid: number;
  /** Resolves once it has exited. */
  readonly exited: Promise<ProcessExit>;
  readonly #process: ManagedProcess;

  /** Use {@link startPoolgraph}. */
  constructor(process: ManagedProcess, name: string, port: number) {
    this.#process = process;
    this.name = name;
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    this.pid = process.pid;
    this.exited = process.exited;
  }

  /** `http://127.0.0.1:<port>/graphql`. */
  get graphqlUrl(): string {
    return `${this.origin}/graphql`;
  }

  /** True until it has exited. */
  get running(): boolean {
    return this.#process.running;
  }

  /** Its last output lines (JSON log lines). */
  tail(count?: number): string {
    return this.#process.tail(count);
  }

  /**
   * A graceful stop: SIGTERM by PID (the server drains requests in flight, `/ready` turns 503,
   * the pool ends), SIGKILL only if it is still running after 20 s. Returns how it ended (exit
   * code 0 when it drained cleanly).
   */
  stop(): Promise<ProcessExit> {
    return this.#process.stop([
      { signal: 'SIGTERM', waitMs: SIGTERM_WAIT_MS },
      { signal: 'SIGKILL', waitMs: 5_000 },
    ]);
  }

  /** A crash: SIGKILL by PID, no draining; resolves once it has exited. */
  kill(): Promise<ProcessExit> {
    const ladder: readonly StopStep[] = [{ signal: 'SIGKILL', waitMs: 5_000 }];
    return this.#process.stop(ladder);
  }
}

/**
 * Spawns the real server, `node --import tsx src/main.ts` in the repository, on 127.0.0.1:`port`
 * with `env`, and resolves once it prints its banner (it has migrated, warmed its pool and
 * listens). If it exits first or is not serving within 60 s, it is killed and the error names
 * its last lines.
 */
export async function startPoolgraph(options: StartPoolgraphOptions): Promise<PoolgraphInstance> {
  const name = options.name ?? 'poolgraph';
  const inherited = Object.fromEntries(INHERITED.flatMap((key) => (process.env[key] ? [[key, process.env[key]]] : [])));
  const child = spawnManaged({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', 'src/main.ts'],
    cwd: REPO_ROOT,
    env: { ...inherited, LOG_FORMAT: 'json', ...options.env, PORT: String(options.port), HOST: '127.0.0.1' },
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  try {
    const [, port] = await child.waitForLine(BANNER, START_TIMEOUT_MS);
    if (Number(port) !== options.port) throw child.failure(`serves on port ${port}, not ${options.port}`);
  } catch (error) {
    await child.stop([{ signal: 'SIGKILL', waitMs: 5_000 }]);
    throw error;
  }
  return new PoolgraphInstance(child, name, options.port);
}
