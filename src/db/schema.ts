import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * The tables poolgraph reads and writes, as Kysely sees them. `bigint` ids come back from `pg` as
 * strings (JavaScript numbers cannot hold every int8), which is also what GraphQL's `ID` wants.
 */
export interface Database {
  categories: CategoryTable;
  items: ItemTable;
}

/** `categories`: a named group of items. */
export interface CategoryTable {
  id: Generated<string>;
  name: string;
}

/** `items`: a numbered item, optionally in a category (`ON DELETE SET NULL`). */
export interface ItemTable {
  id: Generated<string>;
  number: number;
  label: ColumnType<string, string | undefined, string>;
  category_id: string | null;
  /**
   * PostgreSQL's text (`2024-02-29 23:59:59.123456+00`) from the pools `createPool` makes, which
   * leave `timestamptz` unparsed; a `Date` from a pool with pg's default parsers (one lent to
   * `createServer`). Read it through `createdAtOf` (`repositories/items.ts`), which takes both.
   */
  created_at: ColumnType<string | Date, never, never>;
  /**
   * The `sub` of the caller who created the item; null for seeded rows and for items created
   * without a token. Row-level security lets only that caller (or an admin) change the row.
   */
  owner_id: ColumnType<string | null, string | null | undefined, never>;
}

/** A row of `categories` as repositories return it; the GraphQL `Category` is resolved from it. */
export type CategoryRow = Selectable<CategoryTable>;

/** A whole row of `items`, as the by-id reads and the writes return it. */
export type ItemRow = Selectable<ItemTable>;

/** A column of `items`. */
export type ItemColumn = keyof ItemRow;

/**
 * An `items` row holding the columns one read fetched: the lists read only the columns their
 * selection needs (`resolvers/item-columns.ts`), the other reads the whole row. The GraphQL `Item`
 * is resolved from it; each field reads only the columns it maps to, which its list fetched.
 */
export type ItemRowPart = Partial<ItemRow>;
