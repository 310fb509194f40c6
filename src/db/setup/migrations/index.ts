import type { Migration } from 'kysely';
import * as itemsAndCategories from './0001-items-and-categories.js';

/**
 * Every migration, by name, in the order they apply. Listed statically (rather than read from the
 * folder at run time) so they work the same under tsx, a bundler or compiled output.
 */
export const migrations: Record<string, Migration> = {
  '0001-items-and-categories': itemsAndCategories,
};
