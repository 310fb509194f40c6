import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { DatabaseBusyError, DatabaseUnavailableError } from '../../errors.js';
import { isConnectionFailure, isPoolTimeout, toError } from './connection-failures.js';
import type { ConnectionSource } from './connection-source.js';

/** A write on a connection idle at least this long is preceded by a ping (see `needsPrePing`). */
export const PRE_PING_AFTER_IDLE_MS = 250;

/** When each healthy connection last went back to the pool (`performance.now()`). */
const lastReturned = new WeakMap<pg.PoolClient, number>();

/** A statement that may change rows (Kysely writes them in lower case; a CTE may hide a write). */
export const WRITE_STATEMENT = /^\s*(insert|update|delete|merge|with)\b/i;

/** A statement that opens a transaction. */
export const BEGIN_STATEMENT = /^(begin|start transaction)\b/i;

/** What one request did with the database, reported when its scope is released. */
export interface RequestScopeStats {
  /** SQL statements sent, `BEGIN`/`COMMIT`/`ROLLBACK` included. */
  statements: number;
  /**
   * Connections taken from the pool: 0 for a request that ran no SQL, otherwise 1 — or 2 when the
   * first was found dead at its first statement and replaced (`retried`).
   */
  connectionsTaken: number;
  /** True when the request's first connection was dead and its first statement ran again. */
  retried: boolean;
  /** `pg_backend_pid()` of the connection the request used, or null when it took none. */
  backendPid: number | null;
  /** Time spent waiting for the pool to hand out the connection, in milliseconds. */
  acquireWaitMs: number;
  /** True when no connection became free within the pool's timeout (`DATABASE_BUSY`). */
  acquireTimedOut: boolean;
  /** Time the connection was held, from acquire to release, in milliseconds. */
  heldMs: number;
  /** True when the connection was destroyed on release instead of returned (it broke). */
  destroyed: boolean;
}

/**
 * The one pooled connection of a request (see `RequestScope`): taken from its source at the
 * first statement, replaced once when it turns out to have died before the request used it,
 * and given back — or destroyed, when it broke — by {@link RequestConnection.release}. It keeps what the
 * request's stats report about it. Statements are sent by the scope; this class only hands out
 * the client and keeps its record.
 */
export class RequestConnection {
  readonly #source: ConnectionSource;
  readonly #poolTimeoutMs: number;
  #client: Promise<pg.PoolClient> | undefined;
  /** Why the connection must be destroyed rather than pooled, once something broke it. */
  #broken: unknown;
  /** A named statement was refused as stale on this connection: destroy it at release. */
  #stalePreparedStatement: unknown;
  #answered = 0;
  #readOnly = false;
  #statements = 0;
  #taken = 0;
  #retried = false;
  #backendPid: number | null = null;
  #acquireWaitMs = 0;
  #acquireTimedOut = false;
  #heldMs = 0;
  #acquiredAt = 0;

  constructor(source: ConnectionSource, poolTimeoutMs: number) {
    this.#source = source;
    this.#poolTimeoutMs = poolTimeoutMs;
  }

  /** What the request did with its connection so far. */
  get stats(): RequestScopeStats {
    return {
      statements: this.#statements,
      connectionsTaken: this.#taken,
      retried: this.#retried,
      backendPid: this.#backendPid,
      acquireWaitMs: this.#acquireWaitMs,
      acquireTimedOut: this.#acquireTimedOut,
      heldMs: this.#heldMs,
      destroyed: this.#broken !== undefined,
    };
  }

  /** True once a connection was asked for. */
  get requested(): boolean {
    return this.#client !== undefined;
  }

  /** True when the connection must be destroyed at release. */
  get broken(): boolean {
    return this.#broken !== undefined;
  }

  /**
   * Whether the connections taken from now on may come from a read replica (the source decides).
   * It also applies to a connection that replaces a dead one.
   */
  allowReplica(allowed: boolean): void {
    this.#readOnly = allowed;
  }

  /** The request's connection, taken from the source at the first call. */
  client(): Promise<pg.PoolClient> {
    this.#client ??= this.#acquire();
    return this.#client;
  }

  /** Counts a statement sent on the request's connection (the scope sends them). */
  sent(): void {
    this.#statements += 1;
  }

  /** Counts a statement the current connection answered. */
  answeredOne(): void {
    this.#answered += 1;
  }

  /** Marks the connection as not to be pooled again; the first reason is kept. */
  markBroken(error: unknown): void {
    this.#broken ??= error;
  }

  /**
   * A named statement was refused as stale: the connection's record of them is wrong now. When it
   * ran `rerun` unnamed instead, that is one more statement. (`runStatement`'s `onStale`.)
   */
  staleStatement(error: unknown, rerun: boolean): void {
    this.#stalePreparedStatement ??= error;
    if (rerun) this.#statements += 1;
  }

  /** Tells the source that the connection it lent failed (a replica may have gone away). */
  reportFailure(error: unknown): void {
    if (this.#broken !== undefined) return;
    void this.#client?.then((client) => this.#source.connectionFailed?.(client, error), () => undefined);
  }

  /**
   * A failed statement may run again, once, when it was the first on its connection and failed
   * because the connection was already gone, and running it twice cannot write twice: the request
   * only reads (`writes` false), or the statement is the BEGIN of a transaction.
   */
  mayRetry(sql: string, error: unknown, writes: boolean): boolean {
    return !this.#retried && this.#answered === 0 && (!writes || BEGIN_STATEMENT.test(sql)) && isConnectionFailure(error);
  }

  /**
   * A write sent as the first statement on a connection cannot run again if that connection turns
   * out to be dead (it may have failed after the server ran it). A connection that sat in the pool
   * for a while is the one that may have died unnoticed, so such a write is preceded by a ping
   * (SQLAlchemy's `pool_pre_ping`), which can be retried. Under load connections are never idle
   * that long, and writes pay nothing.
   */
  needsPrePing(sql: string, client: pg.PoolClient): boolean {
    if (this.#answered > 0 || this.#retried || !WRITE_STATEMENT.test(sql)) return false;
    const idleSince = lastReturned.get(client);
    return idleSince === undefined || performance.now() - idleSince >= PRE_PING_AFTER_IDLE_MS;
  }

  /** Pings `client`; a dead one is replaced by a fresh connection, which is returned. */
  async prePing(client: pg.PoolClient): Promise<pg.PoolClient> {
    this.#statements += 1;
    try {
      await client.query(';');
      this.#answered += 1;
      return client;
    } catch (error) {
      if (!isConnectionFailure(error)) throw error;
      return this.replaceDead(client, error);
    }
  }

  /** Destroys `dead` and takes a fresh connection in its place (once per request). */
  async replaceDead(dead: pg.PoolClient, error: unknown): Promise<pg.PoolClient> {
    this.#retried = true;
    this.#source.connectionFailed?.(dead, error);
    dead.removeListener('error', this.#onClientError);
    dead.release(toError(error));
    this.#broken = undefined;
    this.#client = this.#acquire();
    return this.#client;
  }

  /** The connection taken, or undefined when none was (or taking it failed). */
  async settled(): Promise<pg.PoolClient | undefined> {
    return this.#client?.catch(() => undefined);
  }

  /**
   * Gives `client` (what {@link RequestConnection.settled} returned) back to the pool, or destroys it when it broke,
   * went stale, or would go back inside a transaction (pg-pool resets nothing on release). Call
   * once, when nothing runs.
   */
  release(client: pg.PoolClient | undefined): void {
    if (!client) return;
    client.removeListener('error', this.#onClientError);
    this.#heldMs = performance.now() - this.#acquiredAt;
    // Last line of defence: whatever happened before, a connection whose server side is still
    // in a transaction ('T') or a failed one ('E') must not reach the next request.
    if (this.#broken === undefined && client.getTransactionStatus() !== 'I') {
      this.#broken = new Error('connection released inside a transaction');
    }
    this.#broken ??= this.#stalePreparedStatement;
    if (this.#broken === undefined) lastReturned.set(client, performance.now());
    // pg-pool destroys a client released with a truthy error instead of pooling it.
    client.release(this.#broken === undefined ? undefined : toError(this.#broken));
  }

  async #acquire(): Promise<pg.PoolClient> {
    const started = performance.now();
    let client: pg.PoolClient;
    try {
      client = await this.#source.connect(this.#readOnly);
    } catch (error) {
      if (isPoolTimeout(error)) {
        this.#acquireTimedOut = true;
        throw new DatabaseBusyError(this.#poolTimeoutMs);
      }
      throw new DatabaseUnavailableError(error);
    } finally {
      // Added up: a request whose first connection was dead waited for two.
      this.#acquireWaitMs += performance.now() - started;
    }
    this.#taken += 1;
    this.#acquiredAt = performance.now();
    // pg-pool listens for errors only on idle clients; while we hold this one, an `error` event
    // (the server closed the connection) would crash the process without a listener of ours.
    client.on('error', this.#onClientError);
    this.#backendPid = (client as pg.PoolClient & { processID?: number }).processID ?? null;
    return client;
  }

  readonly #onClientError = (error: Error): void => {
    this.#broken ??= error;
  };
}
