import type { Updateable } from 'kysely';
import type { ItemTable } from '../../db/schema.js';
import { BadUserInputError, ForbiddenError, NotFoundError } from '../../errors.js';
import type { MutationResolvers } from '../../generated/resolvers-types.js';
import {
  deleteItem,
  insertItem,
  isRowSecurityRefusal,
  isUnknownCategoryError,
  itemExists,
  updateItem,
} from '../../repositories/items.js';
import { parseId, parseText } from './arguments.js';

/**
 * Writes. Each field is ONE SQL statement, which PostgreSQL runs atomically (a statement outside
 * a transaction block is a transaction of its own), so a failure leaves no partial row without
 * the round trips of BEGIN and COMMIT. Afterwards the request's loaders are cleared (and primed
 * with the new row) so the rest of the operation reads its own write.
 *
 * Who may change what is PostgreSQL's decision (row-level security, migration 0002): an update or
 * delete that reaches no row is then told apart, with one more read on that path only, as
 * `FORBIDDEN` (the row exists, but not for this caller) or not found.
 */
export const Mutation: MutationResolvers = {
  async createItem(_parent, { input }, { db, loaders, identity }) {
    const categoryId = input.categoryId == null ? null : parseId(input.categoryId, 'input.categoryId');
    const label = input.label == null ? undefined : parseText(input.label, 'input.label');
    const row = await insertItem(db, { number: input.number, label, categoryId, ownerId: identity?.subject ?? null }).catch(
      rethrowKnownRefusal(categoryId),
    );
    loaders.clearAfterWrite();
    loaders.itemById.prime(row.id, row);
    return row;
  },

  async updateItem(_parent, { id, input }, { db, loaders }) {
    const itemId = parseId(id, 'id');
    const changes: Updateable<ItemTable> = {};
    if (input.number === null) throw new BadUserInputError('`input.number` cannot be null.');
    if (input.number !== undefined) changes.number = input.number;
    if (input.label === null) throw new BadUserInputError('`input.label` cannot be null; use "" to clear it.');
    if (input.label !== undefined) changes.label = parseText(input.label, 'input.label');
    if (input.categoryId !== undefined) {
      changes.category_id =
        input.categoryId === null ? null : parseId(input.categoryId, 'input.categoryId');
    }
    const row = await updateItem(db, itemId, changes).catch(rethrowKnownRefusal(changes.category_id));
    if (!row) {
      if (await itemExists(db, itemId)) throw notYours(itemId, 'change');
      throw new NotFoundError(`No item has id ${itemId}.`);
    }
    loaders.clearAfterWrite();
    loaders.itemById.prime(row.id, row);
    return row;
  },

  async deleteItem(_parent, { id }, { db, loaders }) {
    const itemId = parseId(id, 'id');
    const deleted = await deleteItem(db, itemId);
    if (!deleted && (await itemExists(db, itemId))) throw notYours(itemId, 'delete');
    loaders.clearAfterWrite();
    return deleted;
  },
};

/**
 * Turns PostgreSQL's foreign-key error for `category_id` into a `BAD_USER_INPUT` error, and a row
 * that row-level security refused (a caller without `sub` creating an item) into `FORBIDDEN`.
 */
function rethrowKnownRefusal(categoryId: string | null | undefined) {
  return (error: unknown): never => {
    if (isUnknownCategoryError(error)) {
      throw new BadUserInputError(`\`input.categoryId\`: no category has id ${categoryId}.`);
    }
    if (isRowSecurityRefusal(error)) throw new ForbiddenError('This caller may not write this item.');
    throw error;
  };
}

function notYours(itemId: string, action: 'change' | 'delete'): ForbiddenError {
  return new ForbiddenError(`Item ${itemId} belongs to another caller: you may not ${action} it.`);
}
