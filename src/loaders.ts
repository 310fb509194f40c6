import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { CategoryRow, Database, ItemRow } from './db/schema.js';
import { findCategoriesByIds } from './repositories/categories.js';
import {
  type CategoryItemsKey,
  countItemsByCategories,
  findItemsByCategories,
  findItemsByIds,
} from './repositories/items.js';

/**
 * The DataLoaders of one request. Create them per request (never share them: their caches hold
 * what one user may see, and they must run on that request's connection). Each batch function
 * issues ONE statement for all the keys collected in a tick and returns one result per key, in
 * key order, `null` (or 0 / []) for a key that matched nothing.
 */
export interface Loaders {
  /** Items by id; null for an unknown id. */
  itemById: DataLoader<string, ItemRow | null>;
  /** Categories by id; null for an unknown id. */
  categoryById: DataLoader<string, CategoryRow | null>;
  /** The number of items of each category. */
  itemCountByCategory: DataLoader<string, number>;
  /** The first `first` items of each category, ordered by id (the limit applied in SQL). */
  itemsByCategory: DataLoader<CategoryItemsKey, ItemRow[], string>;
  /** Forgets everything a write may have changed, so later loads see the request's own writes. */
  clearAfterWrite(): void;
}

/** The name of each loader of {@link Loaders}, as metrics label it. */
export type LoaderName = Exclude<keyof Loaders, 'clearAfterWrite'>;

/**
 * Told about every batch a loader dispatches, with its number of keys, before its statement runs
 * (metrics count batches and their sizes with it). It must not throw.
 */
export type LoaderBatchObserver = (loader: LoaderName, size: number) => void;

/**
 * Creates the loaders of one request, all running on `db` (the request's connection). With
 * `onBatch`, each batch is reported to it first; the batch functions are otherwise unchanged.
 */
export function createLoaders(db: Kysely<Database>, onBatch?: LoaderBatchObserver): Loaders {
  const itemById = new DataLoader<string, ItemRow | null>(
    observed('itemById', onBatch, async (ids) => inKeyOrder(ids, await findItemsByIds(db, ids), (row) => row.id)),
  );
  const categoryById = new DataLoader<string, CategoryRow | null>(
    observed('categoryById', onBatch, async (ids) =>
      inKeyOrder(ids, await findCategoriesByIds(db, ids), (row) => row.id),
    ),
  );
  const itemCountByCategory = new DataLoader<string, number>(
    observed('itemCountByCategory', onBatch, async (ids) => {
      const counts = new Map(
        (await countItemsByCategories(db, ids)).map((row) => [row.category_id, row.count]),
      );
      return ids.map((id) => counts.get(id) ?? 0);
    }),
  );
  const itemsByCategory = new DataLoader<CategoryItemsKey, ItemRow[], string>(
    observed('itemsByCategory', onBatch, async (keys) => {
      const pages: ItemRow[][] = keys.map(() => []);
      for (const { key_index: keyIndex, ...item } of await findItemsByCategories(db, keys)) {
        pages[keyIndex]?.push(item);
      }
      // The rows were fetched anyway: later `item(id:)` loads of the same request cost nothing.
      for (const item of pages.flat()) itemById.prime(item.id, item);
      return pages;
    }),
    { cacheKeyFn: (key) => `${key.categoryId}:${key.first}` },
  );
  return {
    itemById,
    categoryById,
    itemCountByCategory,
    itemsByCategory,
    clearAfterWrite() {
      itemById.clearAll();
      itemCountByCategory.clearAll();
      itemsByCategory.clearAll();
    },
  };
}

/**
 * `batch`, reporting each call's key count to `onBatch` first. It returns `batch`'s own promise,
 * so the results, their order and any rejection reach DataLoader exactly as before.
 */
function observed<Key, Value>(
  name: LoaderName,
  onBatch: LoaderBatchObserver | undefined,
  batch: DataLoader.BatchLoadFn<Key, Value>,
): DataLoader.BatchLoadFn<Key, Value> {
  if (!onBatch) return batch;
  return (keys) => {
    onBatch(name, keys.length);
    return batch(keys);
  };
}

/** One entry per key, in key order: the row whose id is the key, or null. */
function inKeyOrder<Row>(
  keys: readonly string[],
  rows: readonly Row[],
  idOf: (row: Row) => string,
): (Row | null)[] {
  const byId = new Map(rows.map((row) => [idOf(row), row]));
  return keys.map((key) => byId.get(key) ?? null);
}
