import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { CategoryRow, Database, ItemColumn, ItemRow, ItemRowPart } from '../db/schema.js';
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
  categoryById: SyncLoader<CategoryRow | null>;
  /** The number of items of each category; counts the request already holds are answered at once. */
  itemCountByCategory: SyncLoader<number>;
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
 * {@link Loaders}, each made at its first use: most operations use one or none of them (W1
 * none), and four DataLoaders with their caches per request were garbage to collect (W1's server
 * CPU fell by 3-4 % without them). A loader's getter runs once: the loader is then kept as a
 * plain property of the object, so the many reads of a nested query (W2: 240) cost nothing more.
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

  get categoryById(): SyncLoader<CategoryRow | null> {
    const { db } = this;
    return this.#keep('categoryById', new SyncLoader<CategoryRow | null>(
      observed('categoryById', this.onBatch, async (ids) =>
        inKeyOrder(ids, await findCategoriesByIds(db, ids), (row) => row.id),
      ),
    ));
  }

  get itemCountByCategory(): SyncLoader<number> {
    const { db } = this;
    return this.#keep('itemCountByCategory', new SyncLoader<number>(
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
        // Each row is kept as pg made it (its extra `key_index` is never read again): copying 200
        // rows without it cost W2 about 3 % of its CPU.
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
 * How a {@link SyncLoader} whose keys are not plain ids finds the id a key loads, and which loaded
 * values may answer later loads of that id.
 */
export interface SyncLoaderKeys<Key, Value> {
  /** The id a key loads: held values are found by it. */
  idOf: (key: Key) => string;
  /** DataLoader's cache key: loads with equal cache keys share one promise. */
  cacheKeyOf: (key: Key) => string;
  /** Whether a loaded value may stand for its id in later loads. @default every value */
  holds?: (value: Value) => boolean;
}

/**
 * A DataLoader that also remembers every value this request already holds, by id (primed from a
 * list, or loaded), so that {@link SyncLoader.get} answers those with the value itself instead
 * of a promise.
 *
 * Why: a nested list resolves the same few parents many times (W2 asks `Item.category` for 200
 * items of 20 categories the list already fetched). A DataLoader answers each with a new promise
 * and a microtask, and graphql-jit completes a plain value much more cheaply than a promise.
 * Priming is a `Map.set` too, where DataLoader's `prime` allocates a resolved promise per value.
 * Like DataLoader's cache it lives for one request; `clearAll` forgets both.
 *
 * Keys are ids, or (with `keys`) objects naming an id and more (see {@link ItemLoader}).
 */
export class SyncLoader<Value extends NonNullable<unknown> | null, Key = string> {
  /** Values this request holds, by id (`null`: an id known not to exist). */
  readonly #known = new Map<string, Value>();
  readonly #loader: DataLoader<Key, Value, string>;
  readonly #idOf: (key: Key) => string;

  /** `batch` follows DataLoader's contract: one result per key, in key order. */
  constructor(batch: DataLoader.BatchLoadFn<Key, Value>, keys?: SyncLoaderKeys<Key, Value>) {
    const known = this.#known;
    const idOf = (this.#idOf = keys?.idOf ?? String);
    const holds = keys?.holds;
    this.#loader = new DataLoader<Key, Value, string>(
      async (batchKeys) => {
        const values = await batch(batchKeys);
        batchKeys.forEach((key, index) => {
          const value = values[index];
          if (value !== undefined && !(value instanceof Error) && (!holds || holds(value))) known.set(idOf(key), value);
        });
        return values;
      },
      { cacheKeyFn: keys?.cacheKeyOf ?? idOf },
    );
  }

  /**
   * The value for this key: the value itself when this request already holds it (no promise, no
   * statement), else a promise batched with the other loads of this tick into one statement.
   */
  get(key: Key): Value | Promise<Value> {
    const value = this.#known.get(this.#idOf(key));
    return value === undefined ? this.#loader.load(key) : value;
  }

  /** Like {@link SyncLoader.get}, always as a promise. */
  load(key: Key): Promise<Value> {
    const value = this.#known.get(this.#idOf(key));
    return value === undefined ? this.#loader.load(key) : Promise.resolve(value);
  }

  /** Records a value the request fetched some other way; an id it already holds keeps its value. */
  prime(id: string, value: Value): this {
    if (!this.#known.has(id)) this.#known.set(id, value);
    return this;
  }

  /** Forgets every value, loaded or primed (after a write that may have changed them). */
  clearAll(): this {
    this.#known.clear();
    this.#loader.clearAll();
    return this;
  }
}

/** A load of {@link ItemLoader}: an item, and the columns the caller needs of it. */
export interface ItemKey {
  id: string;
  columns: readonly ItemColumn[];
}

/**
 * Items by id, reading only the columns each load asks for (a gateway's `_entities` call for 100
 * items' `id number label` reads three columns, not five: 5 % less server CPU on W5): a
 * {@link SyncLoader} keyed by id and columns, typed so that a load without columns gets whole rows.
 *
 * Loads of one tick share ONE statement reading the union of their columns (and `id`). A row
 * stands for the item in later loads only when it is whole: a load never gets a row missing a
 * column it asked for. Loads of the same id and columns share one DataLoader cache entry.
 */
export class ItemLoader {
  readonly #rows: SyncLoader<ItemRowPart | null, ItemKey>;

  /** `batch` follows DataLoader's contract: one result per key, in key order. */
  constructor(batch: DataLoader.BatchLoadFn<ItemKey, ItemRowPart | null>) {
    this.#rows = new SyncLoader(batch, {
      idOf: (key) => key.id,
      cacheKeyOf: (key) => `${key.id}:${columnsKey(key.columns)}`,
      holds: (row) => row === null || isWholeItemRow(row),
    });
  }

  /**
   * The item with at least these columns (without `columns`, the whole row): the row itself
   * when the request holds it whole (no promise, no statement), else a promise batched with the
   * other loads of this tick.
   */
  get(id: string): ItemRow | null | Promise<ItemRow | null>;
  get(id: string, columns: readonly ItemColumn[]): ItemRowPart | null | Promise<ItemRowPart | null>;
  get(id: string, columns: readonly ItemColumn[] = ITEM_COLUMNS): ItemRowPart | null | Promise<ItemRowPart | null> {
    return this.#rows.get({ id, columns });
  }

  /** Like {@link ItemLoader.get}, always as a promise. */
  load(id: string): Promise<ItemRow | null>;
  load(id: string, columns: readonly ItemColumn[]): Promise<ItemRowPart | null>;
  load(id: string, columns: readonly ItemColumn[] = ITEM_COLUMNS): Promise<ItemRowPart | null> {
    return this.#rows.load({ id, columns });
  }

  /** Records a whole row the request fetched some other way; an id it already holds keeps its row. */
  prime(id: string, row: ItemRow): this {
    this.#rows.prime(id, row);
    return this;
  }

  /** Forgets every row, loaded or primed (after a write that may have changed them). */
  clearAll(): this {
    this.#rows.clearAll();
    return this;
  }
}

/** A string naming a list of columns, cached per list (each selection's list is built once). */
function columnsKey(columns: readonly ItemColumn[]): string {
  let key = columnKeys.get(columns);
  if (key === undefined) columnKeys.set(columns, (key = columns.join()));
  return key;
}

const columnKeys = new WeakMap<readonly ItemColumn[], string>();

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
