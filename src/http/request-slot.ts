/**
 * A value a plugin keeps for each request until it is answered: a property of the `Request`
 * object under a symbol only this slot knows, so no other code reads it by accident and two slots
 * never collide.
 *
 * A `WeakMap` keyed by the request would do the same job, but each entry keyed by a short-lived
 * object is an ephemeron the garbage collector traces at every scavenge, and a set and a get cost
 * many times a property's (docs/benchmarks-profile.md); the plugins kept seven such entries per
 * request before. A property dies with its object, as the entry would.
 * Symbol-keyed properties are left out of `JSON.stringify`, `Object.keys` and `for…in` (a
 * spread or `Object.assign` of the request does copy them, and `util.inspect` shows them).
 *
 * Not for graphql-yoga's GraphQL context: resolvers and envelop read that object all through an
 * operation, and a property added to it slowed those reads more than a `WeakMap` entry costs
 * (`npm run bench:cpu`).
 */
export class RequestSlot<Value> {
  readonly #key: symbol;

  /** `description` names the symbol (what a debugger shows). */
  constructor(description: string) {
    this.#key = Symbol(description);
  }

  /** The value kept for `owner`, or undefined when none was set. */
  get(owner: object): Value | undefined {
    return (owner as Partial<Record<symbol, Value>>)[this.#key];
  }

  /** Keeps `value` for `owner` (replacing the one kept before). */
  set(owner: object, value: Value): void {
    (owner as Record<symbol, Value>)[this.#key] = value;
  }
}
