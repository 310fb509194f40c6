import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItemEvent } from '../../src/db/events/event-cursor.js';
import { EventListener, LISTENER_APPLICATION_NAME } from '../../src/db/events/event-listener.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/server.js';

/**
 * I8 (docs/design.md): the listener delivers every committed change to `items`, in id order,
 * none twice, whatever happens to its connection meanwhile. Writes come from concurrent
 * connections of their own, as clients' would.
 */
describe('the live-update listener', () => {
  let database: TestDatabase;
  let writers: pg.Pool;
  beforeAll(async () => {
    database = await createTestDatabase({ categories: 3, itemsPerCategory: 3 });
    writers = new pg.Pool({ connectionString: database.url, max: 8 });
    // Its connections may still be closing when afterAll drops the database (see database.ts).
    writers.on('error', () => undefined);
  });
  afterAll(async () => {
    await writers?.end();
    await database?.drop();
  });

  function listen(received: ItemEvent[]): EventListener {
    return new EventListener({
      connectionString: database.url,
      logger: pino({ level: 'silent' }),
      onEvents: (events) => void received.push(...events),
      reconnectDelayMs: 50,
    });
  }

  /** `count` inserts from up to 8 connections at once; resolves with the new items' ids. */
  async function write(count: number, label: string): Promise<string[]> {
    return Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const { rows } = await writers.query<{ id: string }>('insert into items (number, label) values ($1, $2) returning id', [i, label]);
        return rows[0]!.id;
      }),
    );
  }

  function expectInOrderOnce(received: ItemEvent[], created: string[]): void {
    const ids = received.map((event) => BigInt(event.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!), 'ids strictly increasing').toBe(true);
    expect(received.filter((event) => event.kind === 'created').map((event) => event.itemId).sort()).toEqual([...created].sort());
  }

  it('delivers every write of concurrent writers in id order, none missing, none twice', async () => {
    const received: ItemEvent[] = [];
    const listener = listen(received);
    await listener.start();
    try {
      const created = await write(200, 'concurrent');
      expect(await eventually(() => received.length >= 200, 10_000)).toBe(true);
      expectInOrderOnce(received, created);
      // A write that rolls back leaves a gap in the ids for good: later events still come.
      await writers.query("begin; insert into items (number, label) values (1, 'rolled back'); rollback").catch(() => undefined);
      const after = await write(3, 'after the gap');
      expect(await eventually(() => received.length >= 203, 5_000)).toBe(true);
      expectInOrderOnce(received, [...created, ...after]);
    } finally {
      await listener.stop();
    }
  });

  it('waits for a writer whose transaction began after the newest one that ended (its xid is not in the snapshot)', async () => {
    // The order that lost an event under load: B takes its xid, then A takes a higher one and
    // event N, then B writes N + 1 and commits. Until A ends, a snapshot's xmax is B's xid + 1, so
    // A runs "above" it and its bounds show nothing running (xmin = xmax), yet N is still to come.
    const received: ItemEvent[] = [];
    const listener = listen(received);
    await listener.start();
    const [a, b] = [await writers.connect(), await writers.connect()];
    try {
      await b.query('begin');
      await b.query('select pg_current_xact_id()');
      await a.query('begin');
      const { rows: byA } = await a.query<{ id: string }>("insert into items (number, label) values (1, 'A, still running') returning id");
      const { rows: byB } = await b.query<{ id: string }>("insert into items (number, label) values (2, 'B, committed') returning id");
      await b.query('commit');
      // B's event is read and held back at A's gap; reads go on every 20 ms meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received, 'nothing delivered past a gap a running writer holds').toEqual([]);
      await a.query('commit');
      expect(await eventually(() => received.length >= 2, 5_000)).toBe(true);
      expect(received.map((event) => event.itemId)).toEqual([byA[0]!.id, byB[0]!.id]);
    } finally {
      await a.query('rollback').catch(() => undefined);
      a.release();
      b.release();
      await listener.stop();
    }
  });

  it('delivers what arrives within its tick interval in one batch, and every event still once, in order', async () => {
    const batches: ItemEvent[][] = [];
    const listener = new EventListener({
      connectionString: database.url,
      logger: pino({ level: 'silent' }),
      onEvents: (events) => void batches.push(events),
      minReadIntervalMs: 500,
    });
    await listener.start();
    try {
      const created: string[] = [];
      // Five writes 20 ms apart, well inside one 500 ms interval: the first wakes a read at once,
      // the other four wait for the next read and come together.
      for (let i = 0; i < 5; i += 1) {
        created.push(...(await write(1, `tick ${i}`)));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await eventually(() => batches.flat().length >= 5, 5_000)).toBe(true);
      expectInOrderOnce(batches.flat(), created);
      expect(batches.length, `batches of ${batches.map((batch) => batch.length).join(', ')}`).toBeLessThanOrEqual(2);
    } finally {
      await listener.stop();
    }
  });

  it('loses nothing when its backend is killed mid-stream, and says it reconnected', async () => {
    const received: ItemEvent[] = [];
    const listener = listen(received);
    await listener.start();
    try {
      const first = write(100, 'before the kill');
      const pid = listener.backendPid;
      expect(pid).toBeGreaterThan(0);
      await database.query('select pg_terminate_backend($1)', [pid]);
      const created = [...(await first), ...(await write(100, 'after the kill'))];
      expect(await eventually(() => received.length >= 200, 10_000)).toBe(true);
      expectInOrderOnce(received, created);
      expect(listener.reconnects).toBeGreaterThanOrEqual(1);
      expect(listener.backendPid).not.toBe(pid);
      const [row] = await database.query<{ count: number }>(
        'select count(*)::int as count from pg_stat_activity where application_name = $1 and datname = current_database()',
        [LISTENER_APPLICATION_NAME],
      );
      expect(row?.count, 'one listener connection').toBe(1);
    } finally {
      await listener.stop();
    }
  });
});
