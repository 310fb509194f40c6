import { type Kysely, type Updateable, sql } from 'kysely';
import pg from 'pg';
import { queryCompiledOnce } from '../db/request/compiled-once.js';
import type { Database, ItemColumn, ItemRow, ItemRowPart, ItemTable } from '../db/schema.js';

/** pg's own `timestamptz` parser (postgres-date), the one a pool with default parsers applies. */
const parseTimestamptz: (value: string) => Date = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text');

/**
 * When the item was created, as a `Date`, whichever pool read the row: our pools leave
 * `timestamptz` as text (see `poolTypeParsers`) and it is parsed here, only for the rows whose
 * `createdAt` is selected, with the same parser pg would have used, so the answer is the same.
 */
export function createdAtOf(createdAt: ItemRow['created_at']): Date {
  return typeof createdAt === 'string' ? parseTimestamptz(createdAt) : createdAt;
}

/** Every column of `items` (a record, so that the compiler sees a column left out). */
const EVERY_COLUMN: Readonly<Record<ItemColumn, true>> = {
  id: true,
  number: true,
  label: true,
  category_id: true,
  created_at: true,
  owner_id: true,
};

/**
 * Every column of `items`, in table order: what a read of whole rows fetches. Statements name
 * their columns instead of `*`: a column added to the table while the server runs (a migration
 * of the next release) changes neither their answers nor the result type of the prepared
 * statements the connections keep (PostgreSQL refuses to run one whose `*` has grown:
 * "cached plan must not change result type").
 */
export const ITEM_COLUMNS: readonly ItemColumn[] = Object.keys(EVERY_COLUMN) as ItemColumn[];

/**
 * True when the row holds every column, so that it may stand for the item anywhere (the by-id
 * loader's cache): rows of a list that selected fewer columns are partial.
 */
export function isWholeItemRow(row: ItemRowPart): row is ItemRow {
  return ITEM_COLUMNS.every((column) => row[column] !== undefined);
}

/**
 * The columns to read for these asked ones: each once, in table order (so that equal sets give
 * the same statement text), and never none (`id` then: a statement needs one column).
 */
export function columnsToRead(asked: Iterable<ItemColumn>): readonly ItemColumn[] {
  const wanted = new Set(asked);
  const columns = ITEM_COLUMNS.filter((column) => wanted.has(column));
  return columns.length > 0 ? columns : ['id'];
}

/**
 * A column the read behind this row fetched. Each `Item` field reads only the columns
 * `resolvers/item-columns.ts` maps it to, which its list fetched: a missing one is a bug in that
 * map, reported as such rather than answered as null.
 */
export function readColumn<Column extends ItemColumn>(row: ItemRowPart, column: Column): ItemRow[Column] {
  const value = row[column];
  if (value === undefined) throw new Error(`items.${column} was not read for this selection`);
  return value as ItemRow[Column];
}

/** A page of items by keyset: ids greater than `afterId`, optionally within a `number` range. */
export interface ItemPage {
  first: number;
  afterId?: string | undefined;
  minNumber?: number | undefined;
  maxNumber?: number | undefined;
}

/**
 * Items of one page, ordered by id, with these columns (at least one). One statement, served by
 * the primary key.
 */
export async function listItems(
  db: Kysely<Database>,
  page: ItemPage,
  columns: readonly ItemColumn[] = ITEM_COLUMNS,
): Promise<ItemRowPart[]> {
  const { afterId, minNumber, maxNumber, first } = page;
  const shape = `listItems:${columns.join()}:${afterId !== undefined}:${minNumber !== undefined}:${maxNumber !== undefined}`;
  const values = [
    ...(afterId !== undefined ? [afterId] : []),
    ...(minNumber !== undefined ? [minNumber] : []),
    ...(maxNumber !== undefined ? [maxNumber] : []),
    first,
  ];
  return queryCompiledOnce(db, shape, values, () => {
    let query = db.selectFrom('items').select(columns);
    if (afterId !== undefined) query = query.where('id', '>', afterId);
    if (minNumber !== undefined) query = query.where('number', '>=', minNumber);
    if (maxNumber !== undefined) query = query.where('number', '<=', maxNumber);
    return query.orderBy('id').limit(first).compile();
  });
}

/**
 * The items with these ids (these columns of them, at least one), in no particular order;
 * unknown ids are absent.
 */
export async function findItemsByIds(
  db: Kysely<Database>,
  ids: readonly string[],
  columns: readonly ItemColumn[] = ITEM_COLUMNS,
): Promise<ItemRowPart[]> {
  const values = [...ids];
  return queryCompiledOnce(db, `findItemsByIds:${columns.join()}`, [values], () =>
    db.selectFrom('items').select(columns).where('id', '=', sql<string>`any(${values}::bigint[])`).compile(),
  );
}

/** Which category's items to load, at most how many, and which of their columns. */
export interface CategoryItemsKey {
  categoryId: string;
  first: number;
  /** The columns needed. @default every column */
  columns?: readonly ItemColumn[] | undefined;
}

/** An item row tagged with the index of the {@link CategoryItemsKey} it answers. */
export type ItemRowForKey = ItemRowPart & { key_index: number };

/**
 * The first items (by id) of several categories in ONE statement, each category with its own
 * limit: a LATERAL subquery per key, each an index range scan on `(category_id, id)`. Rows come
 * back tagged with the index of their key, so callers never slice children in JavaScript. They
 * hold the columns any of the keys asked for.
 */
export async function findItemsByCategories(
  db: Kysely<Database>,
  keys: readonly CategoryItemsKey[],
): Promise<ItemRowForKey[]> {
  const categoryIds = keys.map((key) => key.categoryId);
  const limits = keys.map((key) => key.first);
  const columns = columnsToRead(keys.flatMap((key) => key.columns ?? ITEM_COLUMNS));
  return queryCompiledOnce(db, `findItemsByCategories:${columns.join()}`, [categoryIds, limits], () => sql<ItemRowForKey>`
    select (k.ordinality - 1)::int as key_index, ${sql.join(columns.map((column) => sql.ref(`i.${column}`)))}
    from unnest(${categoryIds}::bigint[], ${limits}::int[]) with ordinality as k(category_id, lim, ordinality)
    cross join lateral (
      select * from items where items.category_id = k.category_id order by items.id limit k.lim
    ) as i
    order by k.ordinality, i.id
  `.compile(db));
}

/** How many items each of these categories holds; categories without items are absent. */
export async function countItemsByCategories(
  db: Kysely<Database>,
  categoryIds: readonly string[],
): Promise<{ category_id: string; count: number }[]> {
  const rows = await db
    .selectFrom('items')
    .select(['category_id', (eb) => eb.fn.countAll<number>().as('count')])
    .where('category_id', '=', sql<string>`any(${[...categoryIds]}::bigint[])`)
    .groupBy('category_id')
    .execute();
  return rows.map((row) => ({ category_id: String(row.category_id), count: Number(row.count) }));
}

/** The values of a new item. */
export interface NewItem {
  number: number;
  label?: string | undefined;
  categoryId?: string | null | undefined;
  /** The creating caller's `sub` (row-level security refuses any other); null without a token. */
  ownerId?: string | null | undefined;
}

/** Inserts one item and returns its row. A missing category raises PostgreSQL error 23503. */
export async function insertItem(db: Kysely<Database>, item: NewItem): Promise<ItemRow> {
  const { number, label } = item;
  const categoryId = item.categoryId ?? null;
  const ownerId = item.ownerId ?? null;
  // Without a label the column is left out (its default applies): two shapes.
  const values = label === undefined ? [number, categoryId, ownerId] : [number, label, categoryId, ownerId];
  const [row] = await queryCompiledOnce(db, `insertItem:${label !== undefined}`, values, () =>
    db
      .insertInto('items')
      .values(
        label === undefined
          ? { number, category_id: categoryId, owner_id: ownerId }
          : { number, label, category_id: categoryId, owner_id: ownerId },
      )
      .returning(ITEM_COLUMNS)
      .compile(),
  );
  if (!row) throw new Error('INSERT ... RETURNING returned no row');
  return row;
}

/** Changes an item; returns its new row, or undefined when no item has this id. */
export async function updateItem(
  db: Kysely<Database>,
  id: string,
  changes: Updateable<ItemTable>,
): Promise<ItemRow | undefined> {
  if (Object.keys(changes).length === 0) {
    return db.selectFrom('items').select(ITEM_COLUMNS).where('id', '=', id).executeTakeFirst();
  }
  return db.updateTable('items').set(changes).where('id', '=', id).returning(ITEM_COLUMNS).executeTakeFirst();
}

/**
 * True when an item with this id exists (row-level security lets everyone read): tells a write that
 * changed no row because the row is another caller's from one that found none. Runs only then.
 */
export async function itemExists(db: Kysely<Database>, id: string): Promise<boolean> {
  const row = await db.selectFrom('items').select('id').where('id', '=', id).executeTakeFirst();
  return row !== undefined;
}

/** Deletes an item; true when a row was deleted. */
export async function deleteItem(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('items').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** True for PostgreSQL's refusal of a row by a row-level security policy (42501). */
export function isRowSecurityRefusal(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code === '42501' && /row-level security/.test(error.message);
}

/** True for PostgreSQL's foreign-key violation on `items.category_id` (an unknown category). */
export function isUnknownCategoryError(error: unknown): boolean {
  return (
    error instanceof pg.DatabaseError &&
    error.code === '23503' &&
    error.constraint === 'items_category_id_fkey'
  );
}
