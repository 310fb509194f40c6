import type { Logger } from 'pino';
import { type EmbeddedDatabase, startEmbeddedDatabase } from './embedded.js';

/** The database a command works on: `DATABASE_URL`, or the embedded one it started. */
export interface OpenedDatabase {
  /** Connection string to use. */
  url: string;
  /** The embedded server, when one was started (stop it on the way out); undefined otherwise. */
  embedded: EmbeddedDatabase | undefined;
}

/** Where a command's database is: the settings {@link openDatabase} reads (a part of `Config`). */
export interface DatabaseLocation {
  /** `DATABASE_URL`; undefined starts the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** `DATA_DIR`: the embedded PostgreSQL's data directory. */
  dataDir: string;
}

/** Uses `DATABASE_URL` when set; otherwise starts the embedded PostgreSQL in `DATA_DIR`. */
export async function openDatabase(config: DatabaseLocation, logger: Logger): Promise<OpenedDatabase> {
  if (config.databaseUrl !== undefined) return { url: config.databaseUrl, embedded: undefined };
  const embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, logger });
  return { url: embedded.url, embedded };
}

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
