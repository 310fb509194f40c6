import { type Kysely, sql } from 'kysely';

/**
 * Who may do what, decided by PostgreSQL (docs/design.md, I7): `items.owner_id`, row-level
 * security enabled AND forced on every table a write can reach (forced, so that the tables' owner
 * is bound by it too: only a superuser or a `BYPASSRLS` role gets past), and the policies:
 * - everyone reads;
 * - an insert must carry `owner_id` equal to the caller's `sub`;
 * - an update or delete reaches only the caller's own rows;
 * - a caller whose `role` claim is `admin` may do anything;
 * - where the server runs with `AUTH_MODE=open` (its connections carry `poolgraph.open_writes`),
 *   anyone may write, as that mode promises.
 *
 * The caller's verified claims reach PostgreSQL as PostgREST and PostGraphile pass them:
 * `set_config('request.jwt.claims', <claims JSON>, true)` on the request's one connection,
 * local to its transaction; `poolgraph_claims()` reads them back (an empty object when none).
 *
 * The server's own role, `poolgraph_app` (created here when missing, without LOGIN: give it a
 * password, or grant it to the role the server logs in as), is granted what the API does and is
 * neither a superuser nor `BYPASSRLS`. Creating it needs `CREATEROLE`; a role that already exists
 * (made by a DBA beforehand) is used as it is, and without either the grants are skipped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table items add column owner_id text`.execute(db);
  await sql`create index items_owner_id on items (owner_id)`.execute(db);
  await sql`
    create function poolgraph_claims() returns jsonb language sql stable parallel safe as $$
      select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
    $$`.execute(db);
  await sql`
    create function poolgraph_may_write(owner text) returns boolean language sql stable parallel safe as $$
      select coalesce(current_setting('poolgraph.open_writes', true), '') = 'on'
          or poolgraph_claims() ->> 'role' = 'admin'
          or (owner is not null and owner = poolgraph_claims() ->> 'sub')
    $$`.execute(db);
  for (const table of ['items', 'categories']) {
    await sql`alter table ${sql.table(table)} enable row level security`.execute(db);
    await sql`alter table ${sql.table(table)} force row level security`.execute(db);
    await sql`create policy everyone_reads on ${sql.table(table)} for select using (true)`.execute(db);
  }
  // The API never writes categories; an admin's session does (the seed sets admin claims).
  await sql`create policy admin_writes on categories for all using (poolgraph_may_write(null)) with check (poolgraph_may_write(null))`.execute(db);
  await sql`create policy owner_inserts on items for insert with check (poolgraph_may_write(owner_id))`.execute(db);
  await sql`create policy owner_updates on items for update using (poolgraph_may_write(owner_id)) with check (poolgraph_may_write(owner_id))`.execute(db);
  await sql`create policy owner_deletes on items for delete using (poolgraph_may_write(owner_id))`.execute(db);

  // The grants are to the role only: without CREATEROLE (and with no DBA having made the role),
  // the migration goes on without it, and the server works as a role the DBA grants these to.
  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = 'poolgraph_app') then
        begin
          create role poolgraph_app nologin;
        exception
          when duplicate_object or unique_violation then null; -- another database's migration made it meanwhile
          when insufficient_privilege then
            raise notice 'role poolgraph_app does not exist and this role may not create it: grant the server''s role what migration 0002 grants poolgraph_app';
            return;
        end;
      end if;
      grant select, insert, update, delete on items to poolgraph_app;
      grant select on categories to poolgraph_app;
      grant usage on sequence items_id_seq to poolgraph_app;
      grant execute on function poolgraph_claims(), poolgraph_may_write(text) to poolgraph_app;
    end $$`.execute(db);
}

/** Drops what {@link up} created (the role stays: other databases of the cluster may use it). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    do $$ begin
      if exists (select from pg_roles where rolname = 'poolgraph_app') then
        revoke all on items, categories from poolgraph_app;
        revoke all on sequence items_id_seq from poolgraph_app;
        revoke all on function poolgraph_claims(), poolgraph_may_write(text) from poolgraph_app;
      end if;
    end $$`.execute(db);
  for (const table of ['items', 'categories']) {
    await sql`drop policy if exists everyone_reads on ${sql.table(table)}`.execute(db);
    await sql`alter table ${sql.table(table)} no force row level security`.execute(db);
    await sql`alter table ${sql.table(table)} disable row level security`.execute(db);
  }
  await sql`drop policy if exists admin_writes on categories`.execute(db);
  for (const policy of ['owner_inserts', 'owner_updates', 'owner_deletes']) {
    await sql`drop policy if exists ${sql.raw(policy)} on items`.execute(db);
  }
  await sql`drop function poolgraph_may_write(text)`.execute(db);
  await sql`drop function poolgraph_claims()`.execute(db);
  await sql`drop index items_owner_id`.execute(db);
  await sql`alter table items drop column owner_id`.execute(db);
}
