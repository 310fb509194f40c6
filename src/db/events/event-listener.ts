import pg from 'pg';
import type { Logger } from 'pino';
import { EventCursor, type ItemEvent } from './event-cursor.js';

/** The channel migration 0003's trigger notifies on every change to `items`. */
export const ITEM_EVENTS_CHANNEL = 'poolgraph_item_events';

/** The `application_name` of the listener's connection, so operators and tests can find it. */
export const LISTENER_APPLICATION_NAME = 'poolgraph-listener';

/** Events read per statement; a longer backlog is read in several, one after the other. */
const READ_LIMIT = 1000;

/** How soon a read that failed on a live connection is tried again. */
const READ_RETRY_MS = 1_000;

/** Options of {@link EventListener}. */
export interface EventListenerOptions {
  /** A direct connection to the primary: LISTEN does not work through a transaction pooler. */
  connectionString: string;
  logger: Logger;
  /**
   * Receives each batch of events, in id order; the next read waits for it to settle. Throwing
   * means none of them was delivered: they are read and given again after a while.
   */
  onEvents(events: ItemEvent[]): void | Promise<void>;
  /** How soon to read again while waiting at a gap a running transaction may fill. @default 20 */
  gapRetryMs?: number;
  /**
   * The least time from one read's start to the next: events that arrive sooner wait and are
   * delivered together, in one tick. @default 0
   */
  minReadIntervalMs?: number;
  /** The first wait before reconnecting, doubled up to {@link maxReconnectDelayMs}. @default 100 */
  reconnectDelayMs?: number;
  /** @default 5000 */
  maxReconnectDelayMs?: number;
}

interface ReadRow {
  xmin: string;
  id: string | null;
  kind: ItemEvent['kind'] | null;
  item_id: string | null;
  category_id: string | null;
  at: number | null;
}

const READ_EVENTS = `
  select s.xmin::text as xmin, e.id::text as id, e.kind, e.item_id::text as item_id,
         e.category_id::text as category_id, (extract(epoch from e.at) * 1000)::float8 as at
  from (select pg_snapshot_xmin(pg_current_snapshot()) as xmin) as s
  left join lateral (select * from item_events where id > $1 order by id limit ${READ_LIMIT}) as e on true
  order by e.id`;

/**
 * A cursor after the newest committed event: later ones are delivered. It knows the ids handed
 * out so far, and an xid assigned after reading them (a statement of its own, so that it comes
 * after), so that the gap the seed and rolled-back writes leave below the next id costs nothing.
 */
async function placeCursor(client: pg.Client): Promise<EventCursor> {
  const { rows: [place] } = await client.query<{ last: string; taken: string }>(
    `select coalesce((select max(id) from item_events), 0)::text as last,
            coalesce(pg_sequence_last_value('item_events_id_seq'), 0)::text as taken`,
  );
  const { rows: [after] } = await client.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
  if (!place || !after) throw new Error('placing the live-update cursor read no row');
  return new EventCursor(BigInt(place.last), { taken: BigInt(place.taken), horizon: BigInt(after.xid) });
}

/**
 * The process's ONE connection for live updates (I8): a `pg.Client` of its own, never from the
 * request pool, that LISTENs on {@link ITEM_EVENTS_CHANNEL} and reads the outbox (`item_events`)
 * after the last event it delivered whenever a notification wakes it, after every reconnect, and
 * again shortly while it waits at a gap ({@link EventCursor}). A NOTIFY lost while the connection
 * was down, a killed backend or a restarted PostgreSQL loses no event: the rows are read on the
 * next connection, from where the cursor stood.
 */
export class EventListener {
  readonly #options: EventListenerOptions;
  #client: pg.Client | undefined;
  #cursor: EventCursor | undefined;
  #stopped = false;
  #reading: Promise<void> | undefined;
  #readAgain = false;
  #gapTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelayMs: number;
  #reconnects = 0;
  #lastReadAt = -Infinity;
  #spacingTimer: NodeJS.Timeout | undefined;

  constructor(options: EventListenerOptions) {
    this.#options = options;
    this.#reconnectDelayMs = options.reconnectDelayMs ?? 100;
  }

  /** Connects, LISTENs and places the cursor after the newest event: later ones are delivered. */
  async start(): Promise<void> {
    await this.#connect();
  }

  /** Reconnections since start (the log says each one). */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** The backend of the current connection (tests kill it), or undefined while reconnecting. */
  get backendPid(): number | undefined {
    return (this.#client as (pg.Client & { processID?: number }) | undefined)?.processID;
  }

  /** Stops reading and closes the connection; events not yet read stay in the outbox. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#gapTimer);
    clearTimeout(this.#spacingTimer);
    clearTimeout(this.#reconnectTimer);
    await this.#reading?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('the listener connection closed')));
    client.on('notification', () => this.#read());
    try {
      await client.connect();
      await client.query(`listen ${ITEM_EVENTS_CHANNEL}`);
      this.#cursor ??= await placeCursor(client);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    // Stopped while this connection was being made (a reconnect in flight): it is not kept.
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#reconnectDelayMs = this.#options.reconnectDelayMs ?? 100;
    // Whatever was written while no connection listened.
    this.#read();
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client || this.#stopped) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    this.#options.logger.warn({ err: error, reconnects: this.#reconnects }, 'the live-update listener lost its connection: reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopped) return;
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, this.#options.maxReconnectDelayMs ?? 5_000);
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          if (this.#stopped) return;
          this.#reconnects += 1;
          this.#options.logger.info({ reconnects: this.#reconnects }, 'the live-update listener reconnected');
        },
        (error: unknown) => {
          this.#options.logger.warn({ err: error, retryInMs: this.#reconnectDelayMs }, 'the live-update listener could not reconnect');
          this.#scheduleReconnect();
        },
      );
    }, delay);
  }

  /** Reads now, or right after the read in progress: reads never overlap, and none is lost. */
  #read(): void {
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    const wait = this.#lastReadAt + (this.#options.minReadIntervalMs ?? 0) - performance.now();
    if (wait > 0) {
      this.#spacingTimer ??= setTimeout(() => {
        this.#spacingTimer = undefined;
        if (!this.#stopped) this.#read();
      }, wait);
      return;
    }
    this.#lastReadAt = performance.now();
    this.#reading = this.#readUntilCaughtUp().finally(() => {
      this.#reading = undefined;
      if (this.#readAgain && !this.#stopped) {
        this.#readAgain = false;
        this.#read();
      }
    });
  }

  #readLater(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#gapTimer);
    this.#gapTimer = setTimeout(() => this.#read(), delayMs);
  }

  async #readUntilCaughtUp(): Promise<void> {
    for (;;) {
      const client = this.#client;
      const cursor = this.#cursor;
      if (!client || !cursor || this.#stopped) return;
      let rows: ReadRow[];
      try {
        ({ rows } = await client.query<ReadRow>(READ_EVENTS, [cursor.after.toString()]));
      } catch (error) {
        // A broken connection reconnects (its error event) and the next one reads again; any other
        // failure (a statement timeout, a missing grant) is retried here after a while.
        if (this.#client === client) {
          this.#options.logger.warn({ err: error }, 'reading live-update events failed; reading again shortly');
          this.#readLater(READ_RETRY_MS);
        }
        return;
      }
      const first = rows[0];
      if (!first) return;
      const events = rows.flatMap((row): ItemEvent[] =>
        row.id === null || row.kind === null || row.item_id === null
          ? []
          : [{ id: row.id, kind: row.kind, itemId: row.item_id, categoryId: row.category_id, at: row.at ?? 0 }],
      );
      const before = cursor.after;
      const { deliver, holding, wantsHorizon } = cursor.advance({ events, xmin: BigInt(first.xmin) });
      // Taken after the read, before anything is delivered: see EventCursor. A failure leaves the
      // gap without a horizon, and the next read asks again.
      const horizonTaken = wantsHorizon && (await this.#takeHorizon(client, cursor));
      if (deliver.length > 0) {
        try {
          await this.#options.onEvents(deliver);
        } catch (error) {
          // Nothing of them was delivered (the receiver delivers a batch whole or not at all): read
          // them again a little later, none lost and none twice.
          cursor.rewind(before);
          this.#options.logger.warn({ err: error }, 'delivering live-update events failed; reading them again shortly');
          this.#readLater(READ_RETRY_MS);
          return;
        }
      }
      // A gap a rolled-back write left is settled by reading again right after its horizon, if
      // nothing older runs; one a running writer holds is read again after a while.
      if (horizonTaken) continue;
      if (holding) {
        this.#readLater(this.#options.gapRetryMs ?? 20);
        return;
      }
      if (events.length < READ_LIMIT) return;
    }
  }

  /**
   * Gives the cursor an xid assigned now, after its read (an autocommitted transaction of its
   * own); false when that failed.
   */
  async #takeHorizon(client: pg.Client, cursor: EventCursor): Promise<boolean> {
    try {
      const { rows } = await client.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
      if (!rows[0]) return false;
      cursor.holdUntil(BigInt(rows[0].xid));
      return true;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'taking a transaction id to wait out a gap in the live-update events failed');
      return false;
    }
  }
}
