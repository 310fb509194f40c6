import type { GraphQLResolveInfo } from 'graphql';
import type { ItemColumn } from '../../db/schema.js';
import type { Item } from '../../generated/resolvers-types.js';
import { columnsToRead, ITEM_COLUMNS } from '../../repositories/items.js';
import { selectedSubfields } from './selection.js';

/**
 * The columns each field of `Item` reads from its row. Every field of the generated `Item` type
 * must be listed (the compiler checks it), so a field added to the schema cannot silently get a
 * row without its column: until it is listed here, `npm run typecheck` fails.
 */
const COLUMNS_OF_FIELD: Readonly<Record<keyof Item, readonly ItemColumn[]>> = {
  __typename: [],
  id: ['id'],
  number: ['number'],
  label: ['label'],
  createdAt: ['created_at'],
  category: ['category_id'],
  ownerId: ['owner_id'],
};

/** Selections already mapped, by the set of names `selectedSubfields` returns for a field node. */
const cache = new WeakMap<ReadonlySet<string>, readonly ItemColumn[]>();

/**
 * The columns of `items` that the field being resolved (a list of items, `item(id:)`, or a
 * gateway's `_entities`) needs for the `Item` subfields it selects, in table order:
 * `{ items { number } }` reads `number` alone where a whole row is five columns (what that saves
 * is measured in docs/benchmarks-profile.md). A name not in the map (a field of
 * another type in `_entities`' fragments) reads every column. Never empty: `{ items { __typename } }`
 * reads `id`.
 */
export function itemColumnsFor(info: GraphQLResolveInfo): readonly ItemColumn[] {
  const names = selectedSubfields(info);
  let columns = cache.get(names);
  if (!columns) cache.set(names, (columns = columnsFor(names)));
  return columns;
}

function columnsFor(names: ReadonlySet<string>): readonly ItemColumn[] {
  return columnsToRead(
    [...names].flatMap((name) => (Object.hasOwn(COLUMNS_OF_FIELD, name) ? COLUMNS_OF_FIELD[name as keyof Item] : ITEM_COLUMNS)),
  );
}
