import type { Migration } from 'kysely';
import * as itemsAndCategories from './0001-items-and-categories.js';
import * as ownersAndRowSecurity from './0002-owners-and-row-security.js';
import * as itemEvents from './0003-item-events.js';

/**
 * Every migration, by name, in the order they apply. Listed statically (rather than read from the
 * folder at run time) so they work the same under tsx, a bundler or compiled output.
 */
export const migrations: Record<string, Migration> = {
  '0001-items-and-categories': itemsAndCategories,
  '0002-owners-and-row-security': ownersAndRowSecurity,
  '0003-item-events': itemEvents,
};
