import { describe, expect, it } from 'vitest';
import { usePostgresStatements } from '../support/postgres-statements.js';
import { eventually, useTestEnvironment } from '../support/server.js';

/** The outbox keeps events for SUBSCRIPTION_RETENTION_S, then deletes them in batches. */
describe('the outbox of live updates', () => {
  const t = useTestEnvironment({}, { live: { retentionS: 1, retentionIntervalMs: 300 } });
  const statements = usePostgresStatements(() => t.database);

  const count = async () => (await t.database.query<{ n: number }>('select count(*)::int as n from item_events'))[0]?.n ?? -1;

  it('deletes events older than the retention, 1000 per statement, and keeps newer ones', async (context) => {
    const { seen } = await statements.during(context, async () => {
      await t.database.query("insert into items (number, label) select g, 'retention' from generate_series(1, 2500) as g");
      expect(await count()).toBeGreaterThanOrEqual(2500);
      expect(await eventually(async () => (await count()) === 0, 10_000)).toBe(true);
    });
    // 2500 rows: three batches (1000, 1000, 500), whatever sweeps found nothing before.
    expect(seen.calls(/delete from item_events/)).toBeGreaterThanOrEqual(3);
    await t.database.query("update items set label = 'fresh' where id = 1");
    expect(await count()).toBe(1);
  });
});
