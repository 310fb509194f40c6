import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { isPoolTimeout, POOL_TIMEOUT_MESSAGE } from '../request/connection-failures.js';
import type { ConnectionSource } from '../request/connection-source.js';

/** Options of {@link ReplicaRouter}. */
export interface ReplicaRouterOptions {
  /** The primary's pool: every write, every batch, and the reads while the replica is down. */
  primary: pg.Pool;
  /**
   * The replica's pool. Give it a shorter `connectionTimeoutMillis` than `timeoutMs` (the server
   * gives it half, see {@link replicaConnectTimeoutMs}): a read that waits that long for the
   * replica still has the rest of `timeoutMs` to get a connection from the primary.
   */
  replica: pg.Pool;
  /**
   * `POOL_TIMEOUT_MS`: the longest a read waits for a connection in all, its attempt on the
   * replica included; past it the read fails as if the primary's pool had timed out
   * (`DATABASE_BUSY`). 0 means no bound, as for pg-pool.
   */
  timeoutMs: number;
  /** Receives one `warn` line when the replica goes down and one `info` line when it is back. */
  logger?: Logger;
  /** Where `poolgraph_replica_up` and `poolgraph_replica_fallbacks_total` are registered. */
  registry?: Registry;
  /** Pause between two probes of a replica that is down. @default 1000 */
  probeIntervalMs?: number;
  /**
   * Longest the probe's `select 1` may take. Its connect is bounded by the replica pool's own
   * `connectionTimeoutMillis` (by this when the pool has none), so a probe never leaves a
   * connection attempt behind that the next probe would overlap. @default 1000
   */
  probeTimeoutMs?: number;
}

/**
 * Why a read that could have run on the replica ran on the primary (the `reason` label of
 * `poolgraph_replica_fallbacks_total`):
 * - `replica_down`: the replica was already known to be down;
 * - `connect_failed`: taking a replica connection failed (refused, authentication, no answer
 *   within its connect timeout); the replica is now down;
 * - `replica_busy`: the read waited in the replica pool's queue for the pool's whole connect
 *   timeout (every replica connection in use, or still connecting). That alone does not take the
 *   replica down: a loaded replica still answers; one that does not answer fails the connections
 *   being opened, which do.
 */
export type FallbackReason = 'replica_down' | 'connect_failed' | 'replica_busy';

/**
 * The replica pool's `connectionTimeoutMillis` for a server whose `POOL_TIMEOUT_MS` is
 * `timeoutMs`: half of it, so that a read whose replica does not answer at all still has the other
 * half to get a connection from the primary, and the read's whole wait stays within
 * `POOL_TIMEOUT_MS`. 0 (no bound) stays 0.
 */
export function replicaConnectTimeoutMs(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.max(1, Math.ceil(timeoutMs / 2)) : 0;
}

/**
 * A {@link ConnectionSource} over a primary and a read replica: writes (and anything not marked
 * read-only: mutations, batches) take a primary connection; reads take a replica connection while
 * the replica is up, and a primary one when it is not.
 *
 * The replica goes down when taking a connection from it fails for another reason than its pool
 * being busy, or when a connection it gave out breaks (the scope calls {@link connectionFailed};
 * a read that failed at its first statement then asks again and gets the primary). A read never
 * waits longer than `timeoutMs` in all: the replica pool's own timeout is shorter (half), and the
 * primary gets what is left.
 *
 * While down, nothing is sent to the replica but a probe every `probeIntervalMs` (a connection,
 * within the replica pool's connect timeout, and `select 1` within `probeTimeoutMs`; one at a
 * time, on an `unref`ed timer so it never keeps the process alive). The first probe that answers
 * puts the replica back. Each transition is one log line; the metrics say the state
 * (`poolgraph_replica_up`) and count the reads that ran on the primary instead
 * (`poolgraph_replica_fallbacks_total{reason}`).
 *
 * Replication lag is not this class's concern: a read on the replica may not yet see a write
 * another request just made on the primary.
 */
export class ReplicaRouter implements ConnectionSource {
  readonly #primary: pg.Pool;
  readonly #replica: pg.Pool;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #probeIntervalMs: number;
  readonly #probeTimeoutMs: number;
  /** Every client the replica pool ever opened (pg-pool reuses client objects, never moves them). */
  readonly #fromReplica = new WeakSet<pg.PoolClient>();
  readonly #fallbacks: Counter<'reason'> | undefined;
  #up = true;
  #downSince = 0;
  #probeTimer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;
  #closed = false;

  constructor(options: ReplicaRouterOptions) {
    this.#primary = options.primary;
    this.#replica = options.replica;
    this.#timeoutMs = options.timeoutMs;
    this.#logger = options.logger;
    this.#probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 1_000;
    this.#replica.on('connect', this.#onReplicaConnect);
    if (options.registry) {
      const registers = [options.registry];
      const up: Gauge = new Gauge({
        name: 'poolgraph_replica_up',
        help: 'Whether reads go to the read replica (1) or to the primary because it did not answer (0).',
        registers,
        collect: () => up.set(this.#up ? 1 : 0),
      });
      this.#fallbacks = new Counter({
        name: 'poolgraph_replica_fallbacks_total',
        help: 'Reads that ran on the primary instead of the read replica, by reason.',
        labelNames: ['reason'],
        registers,
      });
      // Every reason shows from the start, at 0, so rate() and alerts see the series.
      for (const reason of ['replica_down', 'connect_failed', 'replica_busy'] as const) this.#fallbacks.inc({ reason }, 0);
    }
  }

  /** True while reads go to the replica; false while it is down and being probed. */
  get replicaUp(): boolean {
    return this.#up;
  }

  /**
   * Takes a connection: from the primary unless `readOnly`; a read gets the replica's while it is
   * up, and falls back to the primary (with what is left of `timeoutMs`) when that fails.
   */
  async connect(readOnly: boolean): Promise<pg.PoolClient> {
    if (!readOnly) return this.#primary.connect();
    if (!this.#up) return this.#fallBack('replica_down', this.#timeoutMs);
    const started = performance.now();
    try {
      return await this.#replica.connect();
    } catch (error) {
      if (this.#closed) throw error;
      // pg-pool's queue timeout: every replica connection was in use (or still connecting, and
      // those fail on their own if the replica is gone). Not a reason to take it down.
      const busy = isPoolTimeout(error);
      if (!busy) this.markDown(error);
      // At least 1 ms: an idle primary connection is still handed out at once.
      const left = this.#timeoutMs > 0 ? Math.max(1, this.#timeoutMs - (performance.now() - started)) : 0;
      return this.#fallBack(busy ? 'replica_busy' : 'connect_failed', left);
    }
  }

  /**
   * Told by the request scope that a connection it handed out broke. One from the replica takes
   * the replica down (the scope's retry of a first read then lands on the primary); one from the
   * primary changes nothing here.
   */
  connectionFailed(client: pg.PoolClient, error: unknown): void {
    if (this.#fromReplica.has(client)) this.markDown(error);
  }

  /**
   * Takes the replica out of use, as when it stops answering: reads go to the primary until a
   * probe answers. Logs one `warn` line with `error`'s message; does nothing if it is down already
   * or the router is closed. `npm start` calls it when the replica does not answer at start.
   */
  markDown(error: unknown): void {
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#downSince = performance.now();
    this.#logger?.warn(
      { replica: true, reason: error instanceof Error ? error.message : String(error) },
      'read replica unavailable: reads go to the primary',
    );
    this.#scheduleProbe();
  }

  /** Stops probing (waits for a probe in flight) and stops watching the replica pool. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#replica.off('connect', this.#onReplicaConnect);
    await this.#probing;
  }

  readonly #onReplicaConnect = (client: pg.PoolClient): void => {
    this.#fromReplica.add(client);
  };

  #fallBack(reason: FallbackReason, timeoutMs: number): Promise<pg.PoolClient> {
    this.#fallbacks?.inc({ reason });
    return connectWithin(this.#primary, timeoutMs);
  }

  #scheduleProbe(): void {
    if (this.#closed || this.#up || this.#probeTimer) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      this.#probing = this.#probe().finally(() => {
        this.#probing = undefined;
        this.#scheduleProbe();
      });
    }, this.#probeIntervalMs);
    this.#probeTimer.unref();
  }

  /**
   * One probe: a replica connection (within the replica pool's connect timeout) and `select 1`
   * (within `probeTimeoutMs`); never throws.
   */
  async #probe(): Promise<void> {
    let client: pg.PoolClient;
    try {
      const poolBound = (this.#replica.options.connectionTimeoutMillis ?? 0) > 0;
      client = await (poolBound ? this.#replica.connect() : connectWithin(this.#replica, this.#probeTimeoutMs));
    } catch (error) {
      this.#logger?.debug({ err: error }, 'read replica probe: no connection');
      return;
    }
    // pg reads a per-query `query_timeout` (its types do not declare it): a replica that accepts
    // connections but does not answer fails the probe instead of holding it.
    const ping = { text: 'select 1', query_timeout: this.#probeTimeoutMs };
    try {
      await client.query(ping);
    } catch (error) {
      // The connection may be the broken one that took the replica down: never pool it again.
      client.release(error instanceof Error ? error : new Error(String(error)));
      this.#logger?.debug({ err: error }, 'read replica probe: select 1 failed');
      return;
    }
    client.release();
    if (this.#closed) return;
    this.#up = true;
    this.#logger?.info(
      { replica: true, downForMs: Math.round(performance.now() - this.#downSince) },
      'read replica answers again: reads go back to it',
    );
  }
}

/**
 * `pool.connect()`, failing with pg-pool's own timeout error (so the request scope reports
 * `DATABASE_BUSY`) when no connection came within `timeoutMs` (0: no bound but the pool's own).
 * pg-pool cannot cancel a wait: a connection that arrives after the deadline is returned to the
 * pool at once.
 */
function connectWithin(pool: pg.Pool, timeoutMs: number): Promise<pg.PoolClient> {
  const poolTimeoutMs = pool.options.connectionTimeoutMillis ?? 0;
  if (timeoutMs <= 0 || (poolTimeoutMs > 0 && poolTimeoutMs <= timeoutMs)) return pool.connect();
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(POOL_TIMEOUT_MESSAGE));
    }, timeoutMs);
    pool.connect().then(
      (client) => {
        if (!late) {
          clearTimeout(timer);
          resolve(client);
        } else client.release();
      },
      (error: unknown) => {
        if (!late) {
          clearTimeout(timer);
          reject(error);
        }
      },
    );
  });
}
