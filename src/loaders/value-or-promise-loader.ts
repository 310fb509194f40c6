import DataLoader from 'dataloader';

/**
 * How a {@link ValueOrPromiseLoader} whose keys are not plain ids finds the id a key loads, and which loaded
 * values may answer later loads of that id.
 */
export interface ValueOrPromiseLoaderKeys<Key, Value> {
  /** The id a key loads: held values are found by it. */
  idOf: (key: Key) => string;
  /** DataLoader's cache key: loads with equal cache keys share one promise. */
  cacheKeyOf: (key: Key) => string;
  /** Whether a loaded value may stand for its id in later loads. @default every value */
  holds?: (value: Value) => boolean;
}

/**
 * A DataLoader that also remembers every value this request already holds, by id (primed from a
 * list, or loaded), so that {@link ValueOrPromiseLoader.get} answers those with the value itself instead
 * of a promise.
 *
 * Why: a nested list resolves the same few parents many times (W2 asks `Item.category` for 200
 * items of 20 categories the list already fetched). A DataLoader answers each with a new promise
 * and a microtask, and graphql-jit completes a plain value much more cheaply than a promise.
 * Priming is a `Map.set` too, where DataLoader's `prime` allocates a resolved promise per value.
 * Like DataLoader's cache it lives for one request; `clearAll` forgets both.
 *
 * Keys are ids, or (with `keys`) objects naming an id and more (see `ItemLoader` in ./item-loader.ts).
 */
export class ValueOrPromiseLoader<Value extends NonNullable<unknown> | null, Key = string> {
  /** Values this request holds, by id (`null`: an id known not to exist). */
  readonly #known = new Map<string, Value>();
  readonly #loader: DataLoader<Key, Value, string>;
  readonly #idOf: (key: Key) => string;

  /** `batch` follows DataLoader's contract: one result per key, in key order. */
  constructor(batch: DataLoader.BatchLoadFn<Key, Value>, keys?: ValueOrPromiseLoaderKeys<Key, Value>) {
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

  /** Like {@link ValueOrPromiseLoader.get}, always as a promise. */
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
