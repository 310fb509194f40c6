import { describe, expect, it } from 'vitest';
import { EventCursor, type ItemEvent } from '../../src/db/events/event-cursor.js';

const event = (id: number): ItemEvent => ({ id: String(id), kind: 'created', itemId: String(id), categoryId: null, at: 0 });
const ids = (events: readonly ItemEvent[]) => events.map((e) => Number(e.id));

describe('the order events are delivered in', () => {
  it('delivers consecutive events at once, each once', () => {
    const cursor = new EventCursor(0n);
    expect(ids(cursor.advance({ events: [event(1), event(2)], xmin: 5n }).deliver)).toEqual([1, 2]);
    expect(ids(cursor.advance({ events: [event(2), event(3)], xmin: 5n }).deliver)).toEqual([3]);
    expect(cursor.after).toBe(3n);
  });

  it('waits at an id a running transaction may still fill, and delivers it first once it commits', () => {
    const cursor = new EventCursor(0n);
    // Event 2 is visible, 1 is not: its transaction may still run. The cursor asks for a horizon.
    expect(cursor.advance({ events: [event(2)], xmin: 5n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
    cursor.holdUntil(9n);
    // Still running (xmin 8 < the horizon 9): keep waiting, with the horizon it has.
    expect(cursor.advance({ events: [event(2)], xmin: 8n })).toEqual({ deliver: [], holding: true, wantsHorizon: false });
    expect(ids(cursor.advance({ events: [event(1), event(2)], xmin: 8n }).deliver)).toEqual([1, 2]);
  });

  it('skips a gap once every transaction that could fill it has ended (a rolled-back write)', () => {
    const cursor = new EventCursor(0n);
    expect(cursor.advance({ events: [event(2), event(3)], xmin: 5n }).holding).toBe(true);
    cursor.holdUntil(9n);
    expect(ids(cursor.advance({ events: [event(2), event(3)], xmin: 9n }).deliver)).toEqual([2, 3]);
  });

  it('waits at a gap even when the snapshot shows no transaction below its xmax (xmin = xmax)', () => {
    // pg_snapshot_xmax is the newest *completed* xid + 1: a writer that took a higher xid and still
    // runs is in neither bound. Skipping gaps on xmin = xmax lost an event under load.
    const cursor = new EventCursor(10n);
    expect(cursor.advance({ events: [event(12), event(40)], xmin: 7n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
    cursor.holdUntil(8n);
    expect(ids(cursor.advance({ events: [event(11), event(12), event(40)], xmin: 7n }).deliver)).toEqual([11, 12]);
  });

  it('keeps waiting without a horizon, and asks again, when taking one failed', () => {
    const cursor = new EventCursor(0n);
    expect(cursor.advance({ events: [event(2)], xmin: 5n }).wantsHorizon).toBe(true);
    // However far xmin moves, a gap with no horizon is never settled.
    expect(cursor.advance({ events: [event(2)], xmin: 500n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
  });

  it('judges a second gap by its own horizon, not the first one\'s', () => {
    const cursor = new EventCursor(0n);
    expect(cursor.advance({ events: [event(2)], xmin: 5n }).holding).toBe(true);
    cursor.holdUntil(9n);
    // The first gap settles (xmin 9 >= 9); 4 is missing and a transaction begun since may hold it.
    expect(cursor.advance({ events: [event(2), event(3), event(5)], xmin: 9n })).toEqual({
      deliver: [event(2), event(3)],
      holding: true,
      wantsHorizon: true,
    });
    cursor.holdUntil(14n);
    expect(cursor.advance({ events: [event(5)], xmin: 13n }).holding).toBe(true);
    expect(ids(cursor.advance({ events: [event(4), event(5)], xmin: 13n }).deliver)).toEqual([4, 5]);
  });

  it('forgets a gap\'s horizon when it rewinds', () => {
    const cursor = new EventCursor(0n);
    cursor.advance({ events: [event(2)], xmin: 5n });
    cursor.holdUntil(9n);
    cursor.rewind(0n);
    expect(cursor.advance({ events: [event(2)], xmin: 9n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
  });

  it('settles the gap below the ids handed out before it started with the start\'s horizon, and no later gap with it', () => {
    // Placed after event 3, ids up to 8 handed out (the seed's, rolled back or pending), xid 20 taken after.
    const cursor = new EventCursor(3n, { taken: 8n, horizon: 20n });
    // A writer older than xid 20 still runs (xmin 15): one of 4..8 may still come.
    expect(cursor.advance({ events: [event(9)], xmin: 15n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
    expect(ids(cursor.advance({ events: [event(6), event(9)], xmin: 20n }).deliver)).toEqual([6, 9]);
    // 10 was handed out after the start: the start's horizon says nothing about it.
    expect(cursor.advance({ events: [event(11)], xmin: 500n })).toEqual({ deliver: [], holding: true, wantsHorizon: true });
  });
});
