import type { QueryResolvers } from '../../generated/resolvers-types.js';
import { listCategories, listCategoriesWithItemCounts } from '../../repositories/categories.js';
import { isWholeItemRow, listItems } from '../../repositories/items.js';
import { pageSize } from '../../limits.js';
import { parseId, parseOptionalId } from './arguments.js';
import { itemColumnsFor } from './item-columns.js';
import { selectsSubfield } from './selection.js';

/**
 * Root query fields. Lists run one statement and prime the by-id loaders with their rows (item
 * rows only when whole: a list reads just the columns its selection needs).
 */
export const Query: QueryResolvers = {
  async items(_parent, args, { db, loaders }, info) {
    const page = {
      first: pageSize(args.first),
      afterId: parseOptionalId(args.after, 'after'),
      minNumber: args.minNumber ?? undefined,
      maxNumber: args.maxNumber ?? undefined,
    };
    const rows = await listItems(db, page, itemColumnsFor(info));
    for (const row of rows) if (isWholeItemRow(row)) loaders.itemById.prime(row.id, row);
    return rows;
  },

  /** Only the columns the selection needs; the item's loads of one tick share a statement. */
  item(_parent, args, { loaders }, info) {
    return loaders.itemById.get(parseId(args.id, 'id'), itemColumnsFor(info));
  },

  /**
   * With `itemCount` selected, the counts come in the same statement and prime
   * `itemCountByCategory`, so a page with its counts costs one statement instead of two.
   */
  async categories(_parent, args, { db, loaders }, info) {
    const page = { first: pageSize(args.first), afterId: parseOptionalId(args.after, 'after') };
    if (selectsSubfield(info, 'itemCount')) {
      const rows = await listCategoriesWithItemCounts(db, page);
      for (const row of rows) {
        loaders.categoryById.prime(row.id, row);
        loaders.itemCountByCategory.prime(row.id, row.item_count);
      }
      return rows;
    }
    const rows = await listCategories(db, page);
    for (const row of rows) loaders.categoryById.prime(row.id, row);
    return rows;
  },

  category(_parent, args, { loaders }) {
    return loaders.categoryById.get(parseId(args.id, 'id'));
  },
};
