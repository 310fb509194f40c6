import { GraphQLError } from 'graphql';
import pg from 'pg';
import { type CategoryRow, listCategories } from './categories-repository.js';
import { setRequestClaims } from './claims-repository.js';
import type { PeerContext } from './context.js';
import { insertItem, type ItemRow, listItems } from './items-repository.js';

/** `first` and `after` of the paginated lists (`first` defaults to 20 in the schema). */
interface PageArgs {
  first?: number | null;
  after?: string | null;
}

/** `createItem`'s `input`. */
interface CreateItemInput {
  number: number;
  label?: string | null;
  categoryId?: string | null;
}

/** The largest page a list returns, as poolgraph clamps it. */
const MAX_PAGE = 100;

/**
 * The resolvers of the hand-written peers, the same for Mercurius, Apollo Server and
 * graphql-yoga, so that the three differ only in the server around them. Lists are one
 * statement; everything reached from a list goes through the request's DataLoaders, so a level
 * of a query is one statement whatever its width (W2: 3; W3's twenty `item` fields: 1).
 * `id`, `number`, `label` and `name` use the default resolver (the row's column of that name).
 */
export const resolvers = {
  Query: {
    items: (_root: unknown, args: PageArgs, ctx: PeerContext): Promise<ItemRow[]> =>
      listItems(ctx.db, pageSize(args.first), afterId(args.after)),
    item: (_root: unknown, args: { id: string }, ctx: PeerContext): Promise<ItemRow | null> | null => {
      const id = parseId(args.id);
      return id === null ? null : ctx.loaders.itemById.load(id);
    },
    categories: async (_root: unknown, args: PageArgs, ctx: PeerContext): Promise<CategoryRow[]> => {
      const rows = await listCategories(ctx.db, pageSize(args.first), afterId(args.after));
      // DataLoader's `prime`: the items of these categories ask for them again (`Item.category`),
      // and are answered from the rows at hand instead of a statement of their own.
      for (const row of rows) ctx.loaders.categoryById.prime(row.id, row);
      return rows;
    },
    category: (_root: unknown, args: { id: string }, ctx: PeerContext): Promise<CategoryRow | null> | null => {
      const id = parseId(args.id);
      return id === null ? null : ctx.loaders.categoryById.load(id);
    },
  },
  Item: {
    category: (item: ItemRow, _args: unknown, ctx: PeerContext): Promise<CategoryRow | null> | null =>
      item.category_id === null ? null : ctx.loaders.categoryById.load(item.category_id),
    ownerId: (item: ItemRow): string | null => item.owner_id,
  },
  Category: {
    itemCount: (category: CategoryRow, _args: unknown, ctx: PeerContext): Promise<number> =>
      ctx.loaders.itemCountByCategoryId.load(category.id),
    items: (category: CategoryRow, args: { first?: number | null }, ctx: PeerContext): Promise<ItemRow[]> =>
      ctx.loaders.itemsByCategoryId(pageSize(args.first)).load(category.id),
  },
  Mutation: {
    /**
     * Verifies the caller's token, then in ONE transaction on one connection: the claims
     * (`set_config`), then the INSERT, which row-level security lets through only when
     * `owner_id` is the claims' `sub`. Four statements: begin, set_config, insert, commit.
     */
    createItem: async (_root: unknown, { input }: { input: CreateItemInput }, ctx: PeerContext): Promise<ItemRow> => {
      const claims = await ctx.caller();
      const categoryId = input.categoryId == null ? null : parseId(input.categoryId);
      if (input.categoryId != null && categoryId === null) throw badInput('categoryId is not an id');
      try {
        return await ctx.db.transaction(async (tx) => {
          await setRequestClaims(tx, claims);
          return insertItem(tx, { number: input.number, label: input.label ?? '', categoryId, ownerId: claims.sub });
        });
      } catch (error) {
        throw userErrorOf(error);
      }
    },
  },
};

/** `first` clamped to {@link MAX_PAGE}; a negative one is the caller's mistake. */
function pageSize(first: number | null | undefined): number {
  if (first == null) return 20;
  if (first < 0) throw badInput('first must not be negative');
  return Math.min(first, MAX_PAGE);
}

/** `after` as an id to compare with (`0` when absent: every id is above it). */
function afterId(after: string | null | undefined): string {
  if (after == null) return '0';
  const id = parseId(after);
  if (id === null) throw badInput('after is not an id');
  return id;
}

/** An id as PostgreSQL's `bigint` takes it, or null when it cannot be one (no row has it). */
function parseId(id: string): string | null {
  return /^[1-9]\d{0,17}$/.test(id) ? id : null;
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** PostgreSQL's refusals the caller can act on, as coded errors; anything else as it is (masked). */
function userErrorOf(error: unknown): unknown {
  const code = error instanceof pg.DatabaseError ? error.code : undefined;
  if (code === '23503') return badInput('no category has this categoryId');
  if (code === '42501') return new GraphQLError('row-level security refused the write', { extensions: { code: 'FORBIDDEN' } });
  return error;
}
