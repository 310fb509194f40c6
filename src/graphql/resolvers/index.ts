import { DateTimeResolver } from 'graphql-scalars';
import type { Resolvers } from '../../generated/resolvers-types.js';
import { Category } from './category.js';
import { Item } from './item.js';
import { Mutation } from './mutation.js';
import { Query } from './query.js';
import { Subscription } from './subscription.js';

/**
 * Every resolver of `schema.graphql`, typed by the generated `Resolvers`. DateTime is
 * graphql-scalars' scalar, whose description replaces the SDL's: schema.graphql carries the same
 * text, and a test fails if the two ever differ.
 */
export const resolvers: Resolvers = {
  DateTime: DateTimeResolver,
  Query,
  Mutation,
  Subscription,
  Item,
  Category,
};
