import { type Kysely, sql } from 'kysely';
import { queryCompiledOnce } from '../db/request/compiled-once.js';
import type { CategoryRow, Database } from '../db/schema.js';

/** Every column of `categories`, named rather than `*` (see `ITEM_COLUMNS`). */
const EVERY_COLUMN: Readonly<Record<keyof CategoryRow, true>> = { id: true, name: true };
const CATEGORY_COLUMNS = Object.keys(EVERY_COLUMN) as (keyof CategoryRow)[];

/** A page of categories by keyset: ids greater than `afterId`. */
export interface CategoryPage {
  first: number;
  afterId?: string | undefined;
}

/** Categories of one page, ordered by id. */
export async function listCategories(db: Kysely<Database>, page: CategoryPage): Promise<CategoryRow[]> {
  return pageOfCategories(db, page, false);
}

/** A category row with the number of its items. */
export type CategoryRowWithItemCount = CategoryRow & { item_count: number };

/**
 * Like {@link listCategories}, each row with its number of items, still ONE statement: a
 * correlated count per category, served by the index on `(category_id, id)` like the grouped
 * count of `countItemsByCategories`, without that second statement and its round trip.
 */
export async function listCategoriesWithItemCounts(
  db: Kysely<Database>,
  page: CategoryPage,
): Promise<CategoryRowWithItemCount[]> {
  // The counted statement selects `item_count` (`$if` types it as optional).
  return (await pageOfCategories(db, page, true)) as CategoryRowWithItemCount[];
}

/** One page of categories, with their item counts when `counted`. */
function pageOfCategories(db: Kysely<Database>, page: CategoryPage, counted: boolean) {
  const { afterId, first } = page;
  const values = afterId !== undefined ? [afterId, first] : [first];
  return queryCompiledOnce(db, `pageOfCategories:${counted}:${afterId !== undefined}`, values, () =>
    db
      .selectFrom('categories')
      .select(CATEGORY_COLUMNS)
      .$if(counted, (query) =>
        query.select(sql<number>`(select count(*)::int from items where items.category_id = categories.id)`.as('item_count')),
      )
      .$if(afterId !== undefined, (query) => query.where('id', '>', afterId ?? ''))
      .orderBy('id')
      .limit(first)
      .compile(),
  );
}

/** The categories with these ids, in no particular order; unknown ids are simply absent. */
export async function findCategoriesByIds(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<CategoryRow[]> {
  const values = [...ids];
  return queryCompiledOnce(db, 'findCategoriesByIds', [values], () =>
    db.selectFrom('categories').select(CATEGORY_COLUMNS).where('id', '=', sql<string>`any(${values}::bigint[])`).compile(),
  );
}
