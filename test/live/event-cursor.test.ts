import { describe, expect, it } from 'vitest';
import { EventCursor, type ItemEvent } from '../../src/db/events/event-cursor.js';

const event = (id: number): ItemEvent => ({ id: String(id), kind: 'created', itemId: String(id), categoryId: null, at: 0 });
const ids = (events: readonly ItemEvent[]) => events.map((e) => Number(e.id));

describe('the order events are delivered in', () => {
  it('delivers consecutive events at once, each once', () => {
    const cursor = new EventCursor(0n);
    expect(ids(cursor.advance({ events: [event(1), event(2)], xmin: 5n, xmax: 9n }).deliver)).toEqual([1, 2]);
    expect(ids(cursor.advance({ events: [event(2), event(3)], xmin: 5n, xmax: 9n }).deliver)).toEqual([3]);
    expect(cursor.after).toBe(3n);
  });

  it('waits at an id a running transaction may still fill, and delivers it first once it commits', () => {
    const cursor = new EventCursor(0n);
    // Event 2 is visible, 1 is not: its transaction may still run (xmin 5 < xmax 9).
    expect(cursor.advance({ events: [event(2)], xmin: 5n, xmax: 9n })).toEqual({ deliver: [], holding: true });
    // Still running (xmin 8 < the horizon 9): keep waiting.
    expect(cursor.advance({ events: [event(2)], xmin: 8n, xmax: 10n })).toEqual({ deliver: [], holding: true });
    expect(ids(cursor.advance({ events: [event(1), event(2)], xmin: 10n, xmax: 11n }).deliver)).toEqual([1, 2]);
  });

  it('skips a gap once every transaction that could fill it has ended (a rolled-back write)', () => {
    const cursor = new EventCursor(0n);
    expect(cursor.advance({ events: [event(2), event(3)], xmin: 5n, xmax: 9n }).holding).toBe(true);
    expect(ids(cursor.advance({ events: [event(2), event(3)], xmin: 9n, xmax: 12n }).deliver)).toEqual([2, 3]);
  });

  it('skips every gap when no transaction runs at all', () => {
    const cursor = new EventCursor(10n);
    expect(ids(cursor.advance({ events: [event(12), event(40)], xmin: 7n, xmax: 7n }).deliver)).toEqual([12, 40]);
  });

  it('judges a second gap by its own horizon, not the first one\'s', () => {
    const cursor = new EventCursor(0n);
    expect(cursor.advance({ events: [event(2)], xmin: 5n, xmax: 9n }).holding).toBe(true);
    // The first gap settles (xmin 9 >= 9); 4 is missing and a transaction begun since may hold it.
    expect(cursor.advance({ events: [event(2), event(3), event(5)], xmin: 9n, xmax: 14n })).toEqual({
      deliver: [event(2), event(3)],
      holding: true,
    });
    expect(ids(cursor.advance({ events: [event(4), event(5)], xmin: 13n, xmax: 15n }).deliver)).toEqual([4, 5]);
  });
});
