import type { ItemResolvers } from '../../generated/resolvers-types.js';
import { createdAtOf, readColumn } from '../../repositories/items.js';
import { parseId } from './arguments.js';
import { itemColumnsFor } from './item-columns.js';

/**
 * `Item` fields; `id`, `number` and `label` come straight from the row. A list's rows hold only
 * the columns its selection needs (`item-columns.ts`), so a resolver reads only its own columns.
 */
export const Item: ItemResolvers = {
  /**
   * A gateway's `_entities` call: every representation goes through the request's loader, so
   * 100 of them cost one statement; an unknown id resolves to null without failing the others.
   */
  __resolveReference: (reference, { loaders }, info) =>
    loaders.itemById.load(parseId(reference.id, 'id'), itemColumnsFor(info)),
  /** Parsed here, not when the row is read: most reads never select it. */
  createdAt: (item) => createdAtOf(readColumn(item, 'created_at')),
  ownerId: (item) => readColumn(item, 'owner_id'),
  /** Synchronous when the request already holds the category (a list fetched it): W2's case. */
  category: (item, _args, { loaders }) => {
    const categoryId = readColumn(item, 'category_id');
    return categoryId === null ? null : loaders.categoryById.get(categoryId);
  },
};
