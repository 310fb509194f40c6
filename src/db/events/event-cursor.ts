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
  /** `pg_snapshot_xmin` of the read: every transaction below it had ended. */
  xmin: bigint;
  /** `pg_snapshot_xmax` of the read: every transaction that had begun is below it. */
  xmax: bigint;
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
}

/**
 * Delivers the outbox's events in id order, none twice and none skipped, although ids are taken
 * when a transaction writes and become visible when it commits, in another order: event 11 may be
 * read while event 10's transaction still runs. A missing id is either such a pending event or a
 * permanent gap (a rolled-back write; ids a crash skipped). The cursor stops at the first missing
 * id until every transaction that could hold it has ended: that id was taken before a later one
 * that was visible, so its transaction had begun, and had an id below the read's `xmax`; once a
 * later read's `xmin` reaches that `xmax`, all of them have ended, and an id still missing never
 * comes. A read with no transaction running at all (`xmin = xmax`) settles every gap at once.
 */
export class EventCursor {
  #last: bigint;
  /** The `xmax` of the read that first stopped at the current gap. */
  #gapHorizon: bigint | undefined;

  /** `last`: the id of the last event already delivered (or that came before the first subscriber). */
  constructor(last: bigint) {
    this.#last = last;
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

  /** Takes one read and returns what to deliver from it. */
  advance(read: EventRead): Advance {
    const deliver: ItemEvent[] = [];
    for (const event of read.events) {
      const id = BigInt(event.id);
      if (id <= this.#last) continue;
      // A gap passed earlier in this read settles nothing about this one: its horizon is new.
      const settled = read.xmin === read.xmax || (this.#gapHorizon !== undefined && read.xmin >= this.#gapHorizon);
      if (id !== this.#last + 1n && !settled) {
        this.#gapHorizon ??= read.xmax;
        return { deliver, holding: true };
      }
      deliver.push(event);
      this.#last = id;
      this.#gapHorizon = undefined;
    }
    return { deliver, holding: false };
  }
}
