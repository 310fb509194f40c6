import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { CategoryRow, Database, ItemRowPart } from '../db/schema.js';
import { findCategoriesByIds } from '../repositories/categories.js';
import {
  type CategoryItemsKey,
  columnsToRead,
  countItemsByCategories,
  findItemsByCategories,
  findItemsByIds,
  ITEM_COLUMNS,
  isWholeItemRow,
} from '../repositories/items.js';
import { columnsKey, ItemLoader } from './item-loader.js';
import { ValueOrPromiseLoader } from './value-or-promise-loader.js';

/**
 * The DataLoaders of one request. Create them per request (never share them: their caches hold
 * what one user may see, and they must run on that request's connection). Each batch function
 * issues ONE statement for all the keys collected in a tick and returns one result per key, in
 * key order, `null` (or 0 / []) for a key that matched nothing.
 */
export interface Loaders {
  /**
   * Items by id, with the columns each load asks for; null for an unknown id. Whole rows the
   * request already holds are answered at once.
   */
  itemById: ItemLoader;
  /** Categories by id; null for an unknown id. Rows the request already holds are answered at once. */
  categoryById: ValueOrPromiseLoader<CategoryRow | null>;
  /** The number of items of each category; counts the request already holds are answered at once. */
  itemCountByCategory: ValueOrPromiseLoader<number>;
  /**
   * The first `first` items of each category, ordered by id (the limit applied in SQL), with at
   * least the key's columns.
   */
  itemsByCategory: DataLoader<CategoryItemsKey, ItemRowPart[], string>;
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
  return new RequestLoaders(db, onBatch);
}

/**
 * {@link Loaders}, each made at its first use: most operations use one or none of them (W1 none),
 * and four DataLoaders with their caches per request were garbage to collect. A loader's getter
 * runs once: the loader is then kept as a plain property of the object, so the many reads of a
 * nested query (W2: 240) cost nothing more.
 */
class RequestLoaders implements Loaders {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly onBatch: LoaderBatchObserver | undefined,
  ) {}

  get itemById(): ItemLoader {
    const { db } = this;
    return this.#keep('itemById', new ItemLoader(
      observed('itemById', this.onBatch, async (keys) => {
        // One statement for every load of the tick: the columns any of them asked for, and the id.
        const columns = columnsToRead(['id', ...keys.flatMap((key) => key.columns)]);
        const ids = keys.map((key) => key.id);
        return inKeyOrder(ids, await findItemsByIds(db, ids, columns), (row) => row.id ?? '');
      }),
    ));
  }

  get categoryById(): ValueOrPromiseLoader<CategoryRow | null> {
    const { db } = this;
    return this.#keep('categoryById', new ValueOrPromiseLoader<CategoryRow | null>(
      observed('categoryById', this.onBatch, async (ids) =>
        inKeyOrder(ids, await findCategoriesByIds(db, ids), (row) => row.id),
      ),
    ));
  }

  get itemCountByCategory(): ValueOrPromiseLoader<number> {
    const { db } = this;
    return this.#keep('itemCountByCategory', new ValueOrPromiseLoader<number>(
      observed('itemCountByCategory', this.onBatch, async (ids) => {
        const counts = new Map((await countItemsByCategories(db, ids)).map((row) => [row.category_id, row.count]));
        return ids.map((id) => counts.get(id) ?? 0);
      }),
    ));
  }

  get itemsByCategory(): DataLoader<CategoryItemsKey, ItemRowPart[], string> {
    const { db } = this;
    return this.#keep('itemsByCategory', new DataLoader<CategoryItemsKey, ItemRowPart[], string>(
      observed('itemsByCategory', this.onBatch, async (keys) => {
        const pages: ItemRowPart[][] = keys.map(() => []);
        // Each row is kept as pg made it (its extra `key_index` is never read again): copying every
        // row without it cost W2 more than the key is worth.
        for (const row of await findItemsByCategories(db, keys)) {
          pages[row.key_index]?.push(row);
          // Whole rows were fetched anyway: later `item(id:)` loads of the same request cost nothing.
          if (isWholeItemRow(row)) this.itemById.prime(row.id, row);
        }
        return pages;
      }),
      { cacheKeyFn: (key) => `${key.categoryId}:${key.first}:${columnsKey(key.columns ?? ITEM_COLUMNS)}` },
    ));
  }

  clearAfterWrite(): void {
    if (Object.hasOwn(this, 'itemById')) this.itemById.clearAll();
    if (Object.hasOwn(this, 'itemCountByCategory')) this.itemCountByCategory.clearAll();
    if (Object.hasOwn(this, 'itemsByCategory')) this.itemsByCategory.clearAll();
  }

  /** Keeps a loader made at its first use as a plain property: later reads skip the getter. */
  #keep<Name extends LoaderName>(name: Name, loader: Loaders[Name]): Loaders[Name] {
    Object.defineProperty(this, name, { value: loader, enumerable: true });
    return loader;
  }
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
