import { type Kysely, sql } from 'kysely';

/** Schema v1 (DESIGN.md): categories, items, and the index that serves `Category.items`. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('categories')
    .addColumn('id', 'bigserial', (column) => column.primaryKey())
    .addColumn('name', 'text', (column) => column.notNull().unique())
    .execute();
  await db.schema
    .createTable('items')
    .addColumn('id', 'bigserial', (column) => column.primaryKey())
    .addColumn('number', 'integer', (column) => column.notNull())
    .addColumn('label', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('category_id', 'bigint', (column) =>
      column.references('categories.id').onDelete('set null'),
    )
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('items_category_id_id').on('items').columns(['category_id', 'id']).execute();
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('items').execute();
  await db.schema.dropTable('categories').execute();
}
