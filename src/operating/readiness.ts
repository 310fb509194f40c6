import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from 'pino';

/** When {@link Readiness} says "not ready". */
export interface ReadinessOptions {
  /**
   * `READY_MAX_WAITING`: most callers that may wait for a pooled connection while the server
   * still calls itself ready; one more and `/ready` answers 503, so a load balancer sends new
   * requests elsewhere until the queue drains. @default 10
   */
  maxWaiting: number;
  /** `READY_TIMEOUT_MS`: longest the database ping may take. @default 1000 */
  timeoutMs: number;
}

/** The defaults of {@link ReadinessOptions}. */
export const DEFAULT_READINESS: Readonly<ReadinessOptions> = { maxWaiting: 10, timeoutMs: 1000 };

/** Why the server is not ready, as `/ready` reports it. */
export type NotReadyReason = 'DRAINING' | 'POOL_SATURATED' | 'DATABASE_TIMEOUT' | 'DATABASE_UNAVAILABLE';

/** What a readiness check found; `/ready` sends it as JSON. */
export type ReadinessReport =
  | { ready: true; pool: PoolCounts }
  | { ready: false; reason: NotReadyReason; message: string; pool: PoolCounts };

/** pg-pool's counters at the time of a check. */
export interface PoolCounts {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/**
 * Whether the server should get traffic: not while it drains, not while more than `maxWaiting`
 * callers queue for a connection, and not when the database does not answer a ping within
 * `timeoutMs`.
 *
 * The ping goes through the pool, as requests do: it checks what they depend on (a pooled
 * connection, with their credentials and settings), and the app never holds more connections than
 * `POOL_SIZE + POOL_MAX_OVERFLOW` (a dedicated connection would be one more). So that it takes
 * nothing from requests:
 * - it never queues: when every connection is in use and none may be opened, it is skipped, and
 *   the waiting count decides alone (busy connections are the database answering);
 * - one ping at a time: concurrent checks (several load balancers) share the one in flight;
 * - it holds its connection for one `SELECT 1`, bounded by `timeoutMs`; a connection that fails
 *   the ping is destroyed, not returned.
 */
export class Readiness {
  readonly #pool: pg.Pool;
  readonly #options: ReadinessOptions;
  readonly #logger: Logger | undefined;
  #draining = false;
  #ping: Promise<NotReadyReason | undefined> | undefined;
  /** 1 while the ping sits in pg-pool's queue (see {@link #pingOnce}), which is not a request waiting. */
  #pingQueued = 0;
  #wasReady = true;

  constructor(pool: pg.Pool, options: ReadinessOptions, logger?: Logger) {
    this.#pool = pool;
    this.#options = options;
    this.#logger = logger;
  }

  /** From now on every check reports `DRAINING` (a graceful shutdown has begun). */
  startDraining(): void {
    this.#draining = true;
  }

  /** True once {@link startDraining} was called. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Checks readiness now; never rejects. */
  async check(): Promise<ReadinessReport> {
    const reason = await this.#notReadyReason();
    const pool = this.#counts();
    const report: ReadinessReport =
      reason === undefined ? { ready: true, pool } : { ready: false, reason, message: this.#explain(reason, pool), pool };
    if (report.ready !== this.#wasReady) {
      this.#wasReady = report.ready;
      if (report.ready) this.#logger?.info({ pool }, 'ready again');
      else this.#logger?.warn({ reason: report.reason, pool }, `not ready: ${report.message}`);
    }
    return report;
  }

  async #notReadyReason(): Promise<NotReadyReason | undefined> {
    if (this.#draining) return 'DRAINING';
    if (this.#waiting() > this.#options.maxWaiting) return 'POOL_SATURATED';
    const pool = this.#pool;
    // Every connection is in use and no other may open: pinging would queue behind requests.
    if (pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? 10)) return undefined;
    this.#ping ??= this.#pingOnce().finally(() => (this.#ping = undefined));
    const reason = await this.#ping;
    return this.#draining ? 'DRAINING' : reason;
  }

  async #pingOnce(): Promise<NotReadyReason | undefined> {
    const deadline = performance.now() + this.#options.timeoutMs;
    // pg-pool queues even a caller it can serve from an idle connection, until the next tick: the
    // ping must not count as a request waiting meanwhile.
    if (this.#pool.idleCount > 0) this.#pingQueued = 1;
    const connecting = this.#pool.connect();
    const dequeued = () => (this.#pingQueued = 0);
    connecting.then(dequeued, dequeued);
    let client: pg.PoolClient | undefined;
    try {
      client = await withTimeout(connecting, this.#options.timeoutMs);
      if (client === undefined) {
        // Still connecting: give the connection back whenever it comes.
        connecting.then((late) => late.release(), () => undefined);
        return 'DATABASE_TIMEOUT';
      }
      const query = client.query('select 1');
      const answered = await withTimeout(query, Math.max(1, deadline - performance.now()));
      if (answered === undefined) {
        // The statement may still be running: end the connection, and with it the statement.
        query.catch(() => undefined);
        client.release(new Error('readiness ping timed out'));
        return 'DATABASE_TIMEOUT';
      }
      client.release();
      return undefined;
    } catch (error) {
      // A failed ping leaves the connection in an unknown state: destroy it.
      client?.release(error instanceof Error ? error : new Error(String(error)));
      this.#logger?.debug({ err: error }, 'readiness ping failed');
      return error instanceof Error && /timeout/i.test(error.message) ? 'DATABASE_TIMEOUT' : 'DATABASE_UNAVAILABLE';
    }
  }

  #counts(): PoolCounts {
    const pool = this.#pool;
    return { total: pool.totalCount, idle: pool.idleCount, waiting: this.#waiting(), max: pool.options.max ?? 10 };
  }

  /** Callers queued for a connection, the ping excepted. */
  #waiting(): number {
    return Math.max(0, this.#pool.waitingCount - this.#pingQueued);
  }

  #explain(reason: NotReadyReason, pool: PoolCounts): string {
    switch (reason) {
      case 'DRAINING':
        return 'the server is shutting down';
      case 'POOL_SATURATED':
        return `${pool.waiting} requests are waiting for a database connection (at most ${this.#options.maxWaiting})`;
      case 'DATABASE_TIMEOUT':
        return `the database did not answer within ${this.#options.timeoutMs} ms`;
      case 'DATABASE_UNAVAILABLE':
        return 'the database cannot be reached';
    }
  }
}

/** `promise`'s value, or undefined when it has not settled after `ms`; the timer is always cleared. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
