import type { CategoryResolvers } from '../generated/resolvers-types.js';
import { pageSize } from './arguments.js';

/** `Category` fields; per-category loads are batched across all categories of a request. */
export const Category: CategoryResolvers = {
  itemCount: (category, _args, { loaders }) => loaders.itemCountByCategory.load(category.id),
  items: (category, args, { loaders }) =>
    loaders.itemsByCategory.load({ categoryId: category.id, first: pageSize(args.first) }),
};
