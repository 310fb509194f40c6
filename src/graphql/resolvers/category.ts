import type { CategoryResolvers } from '../../generated/resolvers-types.js';
import { pageSize } from '../../limits.js';
import { parseId } from './arguments.js';
import { itemColumnsFor } from './item-columns.js';

/** `Category` fields; per-category loads are batched across all categories of a request. */
export const Category: CategoryResolvers = {
  /** A gateway's `_entities` call, batched through the request's loader like `Item`'s. */
  __resolveReference: (reference, { loaders }) =>
    loaders.categoryById.load(parseId(reference.id, 'id')),
  /** Synchronous when the list that returned the category counted its items already. */
  itemCount: (category, _args, { loaders }) => loaders.itemCountByCategory.get(category.id),
  /** Only the columns the selection needs (the same for every category of a list). */
  items: (category, args, { loaders }, info) =>
    loaders.itemsByCategory.load({ categoryId: category.id, first: pageSize(args.first), columns: itemColumnsFor(info) }),
};
