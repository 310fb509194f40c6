import pg from 'pg';
import type { Logger } from 'pino';
import { describeDatabaseUrl } from './open-database.js';

/** The database cannot be used, and waiting will not change that (or waiting ran out). */
export class DatabaseStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DatabaseStartError';
  }
}

/** Options of {@link waitForDatabase}. */
export interface WaitForDatabaseOptions {
  /** How long to keep trying a database that does not answer. */
  timeoutMs: number;
  logger: Logger;
  /** Checked between attempts: true stops waiting (a shutdown was requested). */
  cancelled?: () => boolean;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

/**
 * Connects once to `url` to learn whether the database is there. A database that is down may
 * come back (a restart, a failover), so refused connections and timeouts are retried with
 * exponential backoff for `timeoutMs`, one log line per wait. A mistake will not fix itself, so a
 * wrong password, an unknown role or database fails at once. Either way the error is one line
 * saying what to check, without a stack.
 */
export async function waitForDatabase(url: string, options: WaitForDatabaseOptions): Promise<void> {
  const where = describeDatabaseUrl(url);
  const deadline = Date.now() + options.timeoutMs;
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt += 1) {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: Math.max(1_000, Math.min(5_000, deadline - Date.now())),
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      if (attempt > 1) options.logger.info({ database: where, attempt }, 'the database answers');
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      const permanent = permanentFailure(error, url);
      if (permanent) throw new DatabaseStartError(permanent, { cause: error });
      if (options.cancelled?.()) throw new DatabaseStartError('stopped while waiting for the database');
      if (Date.now() + delay > deadline) {
        throw new DatabaseStartError(
          `the database at ${where} did not answer within ${Math.round(options.timeoutMs / 1000)} s ` +
            `(${reason(error)}): check that PostgreSQL runs there and DATABASE_URL's host and port`,
          { cause: error },
        );
      }
      options.logger.warn(
        { database: where, attempt, retryInMs: delay, reason: reason(error) },
        `waiting for the database at ${where}`,
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}

/** One line for an error that waiting will not fix, or undefined for one it may. */
function permanentFailure(error: unknown, url: string): string | undefined {
  if (!(error instanceof pg.DatabaseError)) return undefined;
  const { username, pathname, host } = new URL(url);
  const database = decodeURIComponent(pathname.slice(1)) || username;
  switch (error.code) {
    case '28P01':
      return `the password for user "${decodeURIComponent(username)}" was rejected by ${host}: check DATABASE_URL`;
    case '28000':
      return `${host} refused user "${decodeURIComponent(username)}" (${error.message}): check DATABASE_URL and pg_hba.conf`;
    case '3D000':
      return `database "${database}" does not exist on ${host}: create it (createdb ${database}) or fix DATABASE_URL`;
    default:
      return undefined;
  }
}

function reason(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.length > 0) return code;
  return error instanceof Error ? error.message : String(error);
}
