import type { ItemResolvers } from '../generated/resolvers-types.js';

/** `Item` fields; `id`, `number` and `label` come straight from the row. */
export const Item: ItemResolvers = {
  createdAt: (item) => item.created_at,
  category: (item, _args, { loaders }) =>
    item.category_id === null ? null : loaders.categoryById.load(item.category_id),
};
