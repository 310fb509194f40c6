import pg from 'pg';

/**
 * The role the server works as (migration 0002 creates it and grants it what the API does): no
 * superuser, no `BYPASSRLS`, so PostgreSQL's row-level security binds every request.
 */
export const APP_ROLE = 'poolgraph_app';

/**
 * Makes sure {@link APP_ROLE} exists and may log in with `password`, as the role at `adminUrl`
 * (which must be a superuser or have `CREATEROLE`: the embedded and test servers' superuser), and
 * returns `adminUrl` with that role and password instead. Creating it before the migrations run
 * lets migration 0002 find it made. Safe when several processes of one cluster race to do it.
 */
export async function ensureAppLogin(adminUrl: string, password: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const literal = client.escapeLiteral(password);
    await client.query(`
      do $$ begin
        create role ${APP_ROLE} login password ${literal};
      exception when duplicate_object or unique_violation then
        alter role ${APP_ROLE} login password ${literal};
      end $$`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.username = APP_ROLE;
  url.password = password;
  return url.toString();
}

/** What PostgreSQL says of the role a connection string logs in as. */
export interface RoleFacts {
  role: string;
  /** A superuser or `BYPASSRLS`: row-level security does not apply to it. */
  bypassesRowSecurity: boolean;
}

/** Asks PostgreSQL who `url` logs in as, and whether row-level security binds that role. */
export async function roleOf(url: string): Promise<RoleFacts> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ role: string; bypasses: boolean }>(
      'select rolname as role, rolsuper or rolbypassrls as bypasses from pg_roles where rolname = current_user',
    );
    const row = rows[0];
    return { role: row?.role ?? 'unknown', bypassesRowSecurity: row?.bypasses ?? false };
  } finally {
    await client.end();
  }
}
