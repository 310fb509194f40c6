import type { Logger } from 'pino';
import { type Config, loadConfig } from '../config.js';
import { migrateToLatest } from '../db/setup/migrate.js';
import { type OpenedDatabase, openDatabase } from '../db/setup/open-database.js';
import { createLogger } from '../logger.js';

/**
 * Runs a one-shot command (`npm run migrate`, `npm run seed`) on the configured database: opens
 * it (starting the embedded one when `DATABASE_URL` is unset), migrates it, runs `work`, stops
 * whatever it started, and exits 0, or 1 with one line on stderr.
 */
export function runCommand(
  work: (database: OpenedDatabase, logger: Logger, config: Config) => Promise<void>,
): void {
  const run = async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const database = await openDatabase(config, logger);
    try {
      const applied = await migrateToLatest(database.ownerUrl);
      if (applied.length > 0) logger.info({ migrations: applied }, 'applied migrations');
      await work(database, logger, config);
    } finally {
      await database.embedded?.stop();
    }
  };
  run().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`poolgraph: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
