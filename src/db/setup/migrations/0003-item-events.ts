import { type Kysely, sql } from 'kysely';

/**
 * The outbox subscriptions read (docs/design.md, I8): every change to `items` writes a row of
 * `item_events` in the same transaction, and a `NOTIFY poolgraph_item_events` with no payload
 * wakes the listener, which then reads the events after the last one it delivered. A NOTIFY that
 * is missed (the listener was reconnecting, PostgreSQL restarted) loses nothing: the rows are
 * there. PostgreSQL folds identical notifications of one transaction into one wake-up.
 *
 * Ids are taken when a transaction writes and become visible when it commits: an event whose id
 * is below one already read can still appear while its transaction runs. The reader tells such a
 * pending gap from a rolled-back one by the transactions still running (`pg_current_snapshot()`,
 * see `src/db/events/event-cursor.ts`).
 *
 * Row-level security is enabled and forced like the other tables': everyone may read events (they
 * carry ids only; the rows themselves are read under `items`' policies) and the trigger, running
 * as the writer, may insert them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table item_events (
      id bigserial primary key,
      kind text not null check (kind in ('created', 'updated', 'deleted')),
      item_id bigint not null,
      category_id bigint,
      at timestamptz not null default clock_timestamp()
    )`.execute(db);
  await sql`create index item_events_at on item_events (at)`.execute(db);
  await sql`
    create function poolgraph_item_event() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        insert into item_events (kind, item_id, category_id) values ('deleted', old.id, old.category_id);
      else
        insert into item_events (kind, item_id, category_id)
        values (case tg_op when 'INSERT' then 'created' else 'updated' end, new.id, new.category_id);
      end if;
      perform pg_notify('poolgraph_item_events', '');
      return null;
    end $$`.execute(db);
  await sql`
    create trigger items_events after insert or update or delete on items
    for each row execute function poolgraph_item_event()`.execute(db);
  await sql`alter table item_events enable row level security`.execute(db);
  await sql`alter table item_events force row level security`.execute(db);
  await sql`create policy everyone_reads on item_events for select using (true)`.execute(db);
  await sql`create policy writers_record on item_events for insert with check (true)`.execute(db);
  await sql`create policy retention_deletes on item_events for delete using (true)`.execute(db);
  await sql`
    do $$ begin
      if exists (select from pg_roles where rolname = 'poolgraph_app') then
        grant select, insert, delete on item_events to poolgraph_app;
        grant usage on sequence item_events_id_seq to poolgraph_app;
      end if;
    end $$`.execute(db);
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger items_events on items`.execute(db);
  await sql`drop function poolgraph_item_event()`.execute(db);
  await sql`drop table item_events`.execute(db);
}
