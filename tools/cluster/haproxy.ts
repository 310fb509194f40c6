import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readServerStates, type ServerState } from './haproxy-stats.js';
import { type ManagedProcess, spawnManaged, type StopStep } from './managed-process.js';
import { ManagedService } from './managed-service.js';
import { createPrivateDir } from './service-user.js';
import { waitUntil } from './wait.js';

/** Debian's `haproxy` package (2.6 on Debian 12, 3.0 on Debian 13). */
export const HAPROXY_BINARY = '/usr/sbin/haproxy';

/** One poolgraph instance HAProxy balances to. */
export interface Backend {
  host: string;
  port: number;
}

/** Options of {@link startHaproxy}. */
export interface StartHaproxyOptions {
  /** TCP port on 127.0.0.1 for HTTP clients. */
  port: number;
  /** The instances, named `instance-1`, `instance-2`… in HAProxy's stats, in this order. */
  backends: readonly Backend[];
  /** HAProxy's folder (config, stats socket), which must not exist yet. @default a new temp folder */
  dir?: string;
  /**
   * Receives every line it prints: in the foreground HAProxy reports server state changes
   * (`Server instances/instance-1 is DOWN…`) on stderr; requests are not logged.
   */
  onLine?: (line: string) => void;
}

/** SIGUSR1 is HAProxy's soft stop (finish requests), SIGTERM its hard one. */
const STOP_LADDER: readonly StopStep[] = [
  { signal: 'SIGTERM', waitMs: 5_000 },
  { signal: 'SIGKILL', waitMs: 5_000 },
];
const START_TIMEOUT_MS = 15_000;
/** How often HAProxy asks each instance's `/ready`. */
export const CHECK_INTERVAL_MS = 500;

/** An HAProxy process that we started and stop by its PID. */
export class Haproxy extends ManagedService {
  /** Names it in errors and listings. */
  override readonly name = 'haproxy';
  /** Its HTTP port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly #statsSocket: string;

  /** Use {@link startHaproxy}. */
  constructor(process: ManagedProcess, port: number, dir: string) {
    super(process, dir, STOP_LADDER);
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    this.#statsSocket = statsSocketOf(dir);
  }

  /** Each instance as HAProxy's health checks see it now (`UP`, `DOWN`, `UP 1/2`…). */
  servers(): Promise<ServerState[]> {
    return readServerStates(this.#statsSocket);
  }

  /** Resolves once `count` instances (default: all) are `UP`; bounded by `timeoutMs`. */
  async waitForUp(count?: number, timeoutMs = 30_000): Promise<ServerState[]> {
    return waitUntil(
      async () => {
        const servers = await this.servers();
        const up = servers.filter((server) => server.status === 'UP').length;
        return up >= (count ?? servers.length) && servers.length > 0 ? servers : undefined;
      },
      { what: `${count ?? 'all'} instances to be UP in HAProxy`, timeoutMs, watch: this },
    );
  }


}

/**
 * Starts Debian's HAProxy in the foreground (`-db`, so the PID is the proxy's own) on 127.0.0.1,
 * balancing HTTP round-robin over `backends` with `GET /ready` as the health check: every 500 ms,
 * out after 2 failures, back after 1 success. A poolgraph instance that drains answers 503 there,
 * so it leaves the rotation before it stops. A connection refused by a dead instance is retried on
 * another (`option redispatch`): nothing was sent, so even a mutation is safe to retry.
 * Resolves once its stats socket answers (the instances need not be up: see
 * {@link Haproxy.waitForUp}).
 */
export async function startHaproxy(options: StartHaproxyOptions): Promise<Haproxy> {
  if (!existsSync(HAPROXY_BINARY)) throw new Error(`${HAPROXY_BINARY} not found: apt-get install haproxy`);
  // HAProxy runs as us: it binds a high port and reads nothing private but its own config.
  const dir = await createPrivateDir(options.dir, 'poolgraph-haproxy-', undefined);
  const configFile = join(dir, 'haproxy.cfg');
  let haproxy: Haproxy | undefined;
  try {
    await writeFile(configFile, config(options, dir));
    const process = spawnManaged({
      name: 'haproxy',
      command: HAPROXY_BINARY,
      args: ['-db', '-f', configFile],
      env: { PATH: globalThis.process.env.PATH ?? '/usr/bin:/bin' },
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
    haproxy = new Haproxy(process, options.port, dir);
    const started = haproxy;
    await waitUntil(async () => ((await started.servers()).length > 0 ? true : undefined), {
      what: 'HAProxy to answer on its stats socket',
      timeoutMs: START_TIMEOUT_MS,
      watch: started,
    });
    return haproxy;
  } catch (error) {
    await haproxy?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function statsSocketOf(dir: string): string {
  return join(dir, 'stats.sock');
}

/** haproxy.cfg for `options`. */
function config(options: StartHaproxyOptions, dir: string): string {
  return [
    '# Written by tools/cluster.',
    'global',
    `  stats socket ${statsSocketOf(dir)} mode 600 level user`,
    '',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    '  timeout server 60s',
    // /ready waits up to READY_TIMEOUT_MS (1 s) for a database ping, then answers 503 itself.
    '  timeout check 1500ms',
    '  retries 2',
    '  option redispatch',
    '',
    'frontend poolgraph',
    `  bind 127.0.0.1:${options.port}`,
    '  default_backend instances',
    '',
    'backend instances',
    '  balance roundrobin',
    '  option httpchk GET /ready',
    '  http-check expect status 200',
    `  default-server inter ${CHECK_INTERVAL_MS}ms fall 2 rise 1`,
    ...options.backends.map((backend, index) => `  server instance-${index + 1} ${backend.host}:${backend.port} check`),
    '',
  ].join('\n');
}
