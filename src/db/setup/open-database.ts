import type { Logger } from 'pino';
import { ensureAppLogin } from './app-role.js';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './embedded.js';

/** The database a command works on: `DATABASE_URL`, or the embedded one it started. */
export interface OpenedDatabase {
  /** Connection string of the server's own role: what its pools use. */
  url: string;
  /** Connection string of the role that owns the tables: for migrations and the seed. */
  ownerUrl: string;
  /** The embedded server, when one was started (stop it on the way out); undefined otherwise. */
  embedded: EmbeddedDatabase | undefined;
}

/** Where a command's database is: the settings {@link openDatabase} reads (a part of `Config`). */
export interface DatabaseLocation {
  /** `DATABASE_URL`; undefined starts the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** `DATABASE_MIGRATION_URL`: the tables' owner, when not `DATABASE_URL`'s role. */
  migrationDatabaseUrl: string | undefined;
  /** `DATA_DIR`: the embedded PostgreSQL's data directory. */
  dataDir: string;
}

/**
 * Uses `DATABASE_URL` (and `DATABASE_MIGRATION_URL`) when set. Otherwise starts the embedded
 * PostgreSQL in `DATA_DIR`, whose superuser owns the tables, and lets the server's role
 * (`poolgraph_app`: neither superuser nor `BYPASSRLS`, so row-level security binds it) log in.
 */
export async function openDatabase(config: DatabaseLocation, logger: Logger): Promise<OpenedDatabase> {
  if (config.databaseUrl !== undefined) {
    return { url: config.databaseUrl, ownerUrl: config.migrationDatabaseUrl ?? config.databaseUrl, embedded: undefined };
  }
  const embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, logger });
  try {
    // Local only (127.0.0.1, no socket), as the superuser's own fixed password.
    const url = await ensureAppLogin(embedded.url, EMBEDDED_APP_PASSWORD);
    return { url, ownerUrl: embedded.url, embedded };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}

/** The password of the server's role on the embedded PostgreSQL (reachable from 127.0.0.1 only). */
const EMBEDDED_APP_PASSWORD = 'poolgraph-app';

/** Where a database URL points, with the password hidden, for logs and banners. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    return parsed.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
