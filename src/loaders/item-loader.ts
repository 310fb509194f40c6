import type DataLoader from 'dataloader';
import type { ItemColumn, ItemRow, ItemRowPart } from '../db/schema.js';
import { ITEM_COLUMNS, isWholeItemRow } from '../repositories/items.js';
import { ValueOrPromiseLoader } from './value-or-promise-loader.js';

/** A load of {@link ItemLoader}: an item, and the columns the caller needs of it. */
export interface ItemKey {
  id: string;
  columns: readonly ItemColumn[];
}

/**
 * Items by id, reading only the columns each load asks for (a gateway's `_entities` call for 100
 * items' `id number label` reads three columns, not five): a
 * {@link ValueOrPromiseLoader} keyed by id and columns, typed so that a load without columns gets whole rows.
 *
 * Loads of one tick share ONE statement reading the union of their columns (and `id`). A row
 * stands for the item in later loads only when it is whole: a load never gets a row missing a
 * column it asked for. Loads of the same id and columns share one DataLoader cache entry.
 */
export class ItemLoader {
  readonly #rows: ValueOrPromiseLoader<ItemRowPart | null, ItemKey>;

  /** `batch` follows DataLoader's contract: one result per key, in key order. */
  constructor(batch: DataLoader.BatchLoadFn<ItemKey, ItemRowPart | null>) {
    this.#rows = new ValueOrPromiseLoader(batch, {
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
export function columnsKey(columns: readonly ItemColumn[]): string {
  let key = columnKeys.get(columns);
  if (key === undefined) columnKeys.set(columns, (key = columns.join()));
  return key;
}

const columnKeys = new WeakMap<readonly ItemColumn[], string>();
