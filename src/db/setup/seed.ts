import { type Kysely, sql } from 'kysely';
import type { Database } from '../schema.js';

/** The shape of the seeded data: `categories` categories of `itemsPerCategory` items each. */
export interface SeedSize {
  categories: number;
  itemsPerCategory: number;
}

/** The size `npm start` seeds the embedded database with, and benchmarks use. */
export const DEFAULT_SEED_SIZE: SeedSize = { categories: 100, itemsPerCategory: 100 };

/**
 * Replaces every row with the fixed data set of DESIGN.md, in one transaction: category n is
 * `category-<n>`; item g (1-based) has `number = g % 1000`, `label = 'item-<g>'` and belongs to
 * category `(g - 1) / itemsPerCategory + 1`. Ids restart at 1, so two runs agree exactly.
 *
 * Two set-based `INSERT ... SELECT generate_series` statements, so 100 x 100 takes milliseconds.
 */
export async function seed(db: Kysely<Database>, size: SeedSize): Promise<void> {
  const { categories, itemsPerCategory } = size;
  await db.transaction().execute(async (trx) => {
    // Row-level security binds the tables' owner too (forced): the seed writes as an admin.
    await sql`select set_config('request.jwt.claims', '{"role":"admin"}', true)`.execute(trx);
    await sql`truncate items, categories restart identity`.execute(trx);
    await sql`
      insert into categories (name)
      select 'category-' || n from generate_series(1, ${categories}::int) as n
    `.execute(trx);
    await sql`
      insert into items (number, label, category_id)
      select g % 1000, 'item-' || g, (g - 1) / ${itemsPerCategory}::int + 1
      from generate_series(1, ${categories * itemsPerCategory}::int) as g
    `.execute(trx);
    // The seed is not news: no subscriber is told of its rows. The ids go on (no restart), so a
    // listener's cursor stays right.
    await sql`truncate item_events`.execute(trx);
  });
}

/** True when neither table has a row: a database nobody has filled yet. */
export async function isEmpty(db: Kysely<Database>): Promise<boolean> {
  const row = await db
    .selectNoFrom((eb) => [
      eb.exists(eb.selectFrom('items').select('id')).as('has_items'),
      eb.exists(eb.selectFrom('categories').select('id')).as('has_categories'),
    ])
    .executeTakeFirstOrThrow();
  return !row.has_items && !row.has_categories;
}
