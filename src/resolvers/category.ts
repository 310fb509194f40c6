import type { CategoryResolvers } from '../generated/resolvers-types.js';
import { pageSize, parseId } from './arguments.js';

/** `Category` fields; per-category loads are batched across all categories of a request. */
export const Category: CategoryResolvers = {
  /** A gateway's `_entities` call, batched through the request's loader like `Item`'s. */
  __resolveReference: (reference, { loaders }) =>
    loaders.categoryById.load(parseId(reference.id, 'id')),
  /** Synchronous when the list that returned the category counted its items already. */
  itemCount: (category, _args, { loaders }) => loaders.itemCountByCategory.get(category.id),
  items: (category, args, { loaders }) =>
    loaders.itemsByCategory.load({ categoryId: category.id, first: pageSize(args.first) }),
};
