import DataLoader from 'dataloader';
import { type CategoryRow, findCategoriesByIds } from './categories-repository.js';
import { countItemsByCategoryIds, findItemsByIds, type ItemRow, listItemsByCategoryIds } from './items-repository.js';
import type { Executor } from './request-db.js';

/**
 * The DataLoaders of one request. Create them per request (DataLoader's own advice: a cache shared
 * between requests would serve one caller's reads to another). Each batch function sends ONE
 * statement for the keys collected in a tick and returns one result per key, in key order: `null`,
 * 0 or `[]` for a key that matched nothing.
 */
export interface Loaders {
  /** Items by id; null for an unknown id. */
  itemById: DataLoader<string, ItemRow | null>;
  /** Categories by id; null for an unknown id. `Query.categories` primes it with the rows it read. */
  categoryById: DataLoader<string, CategoryRow | null>;
  /** How many items each category has. */
  itemCountByCategoryId: DataLoader<string, number>;
  /** The first `first` items of each category, ordered by id: one loader per `first` asked for. */
  itemsByCategoryId(first: number): DataLoader<string, ItemRow[]>;
}

/** Creates the loaders of one request, all running their statements on `db`. */
export function createLoaders(db: Executor): Loaders {
  const itemsByFirst = new Map<number, DataLoader<string, ItemRow[]>>();
  return {
    itemById: new DataLoader(async (ids) => byKey(ids, await findItemsByIds(db, ids), (row) => row.id)),
    categoryById: new DataLoader(async (ids) => byKey(ids, await findCategoriesByIds(db, ids), (row) => row.id)),
    itemCountByCategoryId: new DataLoader(async (ids) => {
      const counts = new Map((await countItemsByCategoryIds(db, ids)).map((row) => [row.category_id, row.count]));
      return ids.map((id) => counts.get(id) ?? 0);
    }),
    itemsByCategoryId(first) {
      let loader = itemsByFirst.get(first);
      if (!loader) {
        loader = new DataLoader(async (ids) => {
          const groups = new Map<string, ItemRow[]>(ids.map((id) => [id, []]));
          for (const row of await listItemsByCategoryIds(db, ids, first)) {
            if (row.category_id !== null) groups.get(row.category_id)?.push(row);
          }
          return ids.map((id) => groups.get(id) ?? []);
        });
        itemsByFirst.set(first, loader);
      }
      return loader;
    },
  };
}

/** `rows` in the order of `keys`, null where no row has the key. */
function byKey<Row>(keys: readonly string[], rows: readonly Row[], keyOf: (row: Row) => string): (Row | null)[] {
  const found = new Map(rows.map((row) => [keyOf(row), row]));
  return keys.map((key) => found.get(key) ?? null);
}
