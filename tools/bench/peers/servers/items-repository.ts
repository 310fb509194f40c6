/**
 * The SQL of `items`: plain parameterised statements, one per function, executor first. Every
 * batch function takes all its keys in one statement (`= any($1)`) and returns rows in no
 * particular order; the loaders put them back in key order.
 */
import type { Executor } from './request-db.js';

/** A row of `items` as the API reads it (pg returns `bigint` as a string: ids stay exact). */
export interface ItemRow {
  id: string;
  number: number;
  label: string;
  category_id: string | null;
  owner_id: string | null;
}

const ITEM_COLUMNS = 'id, number, label, category_id, owner_id';

/** The first `first` items with an id above `after`, ordered by id. */
export function listItems(db: Executor, first: number, after: string): Promise<ItemRow[]> {
  return db.query<ItemRow>(`select ${ITEM_COLUMNS} from items where id > $1 order by id limit $2`, [after, first]);
}

/** The items with these ids (those that exist). */
export function findItemsByIds(db: Executor, ids: readonly string[]): Promise<ItemRow[]> {
  return db.query<ItemRow>(`select ${ITEM_COLUMNS} from items where id = any($1::bigint[])`, [ids]);
}

/** How many items each of these categories has; a category with none has no row. */
export function countItemsByCategoryIds(db: Executor, categoryIds: readonly string[]): Promise<{ category_id: string; count: number }[]> {
  return db.query(
    'select category_id, count(*)::int as count from items where category_id = any($1::bigint[]) group by category_id',
    [categoryIds],
  );
}

/**
 * The first `first` items of each category, ordered by id: a LATERAL subquery per category, so
 * each is an index range scan on `(category_id, id)` that stops after `first` rows, instead of
 * reading every item of every category to cut them in JavaScript.
 */
export function listItemsByCategoryIds(db: Executor, categoryIds: readonly string[], first: number): Promise<ItemRow[]> {
  return db.query<ItemRow>(
    `select i.id, i.number, i.label, i.category_id, i.owner_id
     from unnest($1::bigint[]) as c(id)
     cross join lateral (
       select ${ITEM_COLUMNS} from items where items.category_id = c.id order by id limit $2
     ) as i`,
    [categoryIds, first],
  );
}

/** What a new item is made of; `owner_id` is the caller's `sub`, which row-level security checks. */
export interface NewItem {
  number: number;
  label: string;
  categoryId: string | null;
  ownerId: string;
}

/** Inserts one item and returns it. Run it in the transaction that set the caller's claims. */
export async function insertItem(tx: Executor, item: NewItem): Promise<ItemRow> {
  const [row] = await tx.query<ItemRow>(
    `insert into items (number, label, category_id, owner_id) values ($1, $2, $3, $4) returning ${ITEM_COLUMNS}`,
    [item.number, item.label, item.categoryId, item.ownerId],
  );
  if (!row) throw new Error('insert into items returned no row');
  return row;
}
