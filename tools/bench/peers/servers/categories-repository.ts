/** The SQL of `categories` (see items-repository.ts for the conventions). */
import type { Executor } from './request-db.js';

/** A row of `categories`. */
export interface CategoryRow {
  id: string;
  name: string;
}

/** The first `first` categories with an id above `after`, ordered by id. */
export function listCategories(db: Executor, first: number, after: string): Promise<CategoryRow[]> {
  return db.query<CategoryRow>('select id, name from categories where id > $1 order by id limit $2', [after, first]);
}

/** The categories with these ids (those that exist). */
export function findCategoriesByIds(db: Executor, ids: readonly string[]): Promise<CategoryRow[]> {
  return db.query<CategoryRow>('select id, name from categories where id = any($1::bigint[])', [ids]);
}
