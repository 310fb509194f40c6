/** One row of `item_events` (migration 0003), as the listener reads it. */
export interface ItemEvent {
  /** `bigserial`, as text (pg's int8). */
  id: string;
  kind: 'created' | 'updated' | 'deleted';
  itemId: string;
  categoryId: string | null;
  /** When the change was written (the writer's clock_timestamp()), in ms since the epoch. */
  at: number;
}

/** One read of the events after {@link EventCursor.after}, with the snapshot it was read in. */
export interface EventRead {
  /** The events with an id above the cursor, in id order. */
  events: readonly ItemEvent[];
  /** `pg_snapshot_xmin` of the read: every transaction with an xid below it had ended. */
  xmin: bigint;
}

/** What {@link EventCursor.advance} decided for one read. */
export interface Advance {
  /** The events to deliver now, in id order: each exactly once over the cursor's life. */
  deliver: ItemEvent[];
  /**
   * True when it stopped at a gap that a transaction still running may fill: read again soon
   * (no NOTIFY comes when that transaction rolls back).
   */
  holding: boolean;
  /**
   * True when it stopped at a gap it has no horizon for yet: take a new transaction id
   * (`pg_current_xact_id()`) now, after this read, and give it to {@link EventCursor.holdUntil}.
   */
  wantsHorizon: boolean;
}

/**
 * Delivers the outbox's events in id order, none twice and none skipped, although ids are taken
 * when a transaction writes and become visible when it commits, in another order: event 11 may be
 * read while event 10's transaction still runs. A missing id is either such a pending event or a
 * permanent gap (a rolled-back write; ids a crash skipped). The cursor stops at the first missing
 * id until every transaction that could hold it has ended.
 *
 * The missing id was taken before a later id that this read saw committed, and its writer had a
 * transaction id (xid) before taking it (the trigger runs after the row is written). An xid
 * assigned after this read (the horizon: `pg_current_xact_id()`, run by the listener) is therefore
 * above the writer's, since xids are handed out in order; once a later read's `xmin` reaches the
 * horizon, every transaction below it has ended, and an id still missing never comes.
 *
 * The snapshot's `xmax` cannot serve as the horizon, nor `xmin = xmax` as "nothing runs": `xmax` is
 * the newest *completed* xid + 1, and a transaction that took a higher xid and still runs is in
 * neither bound (an event was lost that way under load; `test/live/event-cursor.test.ts`).
 */
export class EventCursor {
  #last: bigint;
  /** An xid assigned after the read that first stopped at the current gap. */
  #gapHorizon: bigint | undefined;
  readonly #start: { taken: bigint; horizon: bigint } | undefined;

  /**
   * `last`: the id of the last event already delivered, or the newest committed one when the
   * listener starts. `start`, when given, says what else was known then: the ids handed out up to
   * `taken` (the sequence's last value, committed or not) and an xid assigned after that. A gap of
   * ids at or below `taken` (writes rolled back before the start, or events the seed and the
   * retention sweep removed) is settled as soon as a read's `xmin` reaches that xid, which is at
   * once when nothing older runs, with no horizon of its own to take.
   */
  constructor(last: bigint, start?: { taken: bigint; horizon: bigint }) {
    this.#last = last;
    this.#start = start;
  }

  /** Read the events with an id above this. */
  get after(): bigint {
    return this.#last;
  }

  /**
   * Goes back to `last` (an earlier {@link after}): what was to be delivered since could not be,
   * and is read and delivered again.
   */
  rewind(last: bigint): void {
    this.#last = last;
    this.#gapHorizon = undefined;
  }

  /**
   * Sets the horizon of the gap the last {@link advance} stopped at (when it asked for one): an xid
   * taken after that read. A horizon already set is kept, as the earlier one is the tighter.
   */
  holdUntil(xid: bigint): void {
    this.#gapHorizon ??= xid;
  }

  /** Takes one read and returns what to deliver from it. */
  advance(read: EventRead): Advance {
    const deliver: ItemEvent[] = [];
    for (const event of read.events) {
      const id = BigInt(event.id);
      if (id <= this.#last) continue;
      // A gap passed earlier in this read settles nothing about this one: its horizon is new.
      const settled =
        (this.#gapHorizon !== undefined && read.xmin >= this.#gapHorizon) ||
        (this.#start !== undefined && id - 1n <= this.#start.taken && read.xmin >= this.#start.horizon);
      if (id !== this.#last + 1n && !settled) {
        return { deliver, holding: true, wantsHorizon: this.#gapHorizon === undefined };
      }
      deliver.push(event);
      this.#last = id;
      this.#gapHorizon = undefined;
    }
    return { deliver, holding: false, wantsHorizon: false };
  }
}
