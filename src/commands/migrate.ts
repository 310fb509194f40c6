/**
 * `npm run migrate`: brings the database (`DATABASE_MIGRATION_URL` or `DATABASE_URL`, or the embedded one) to the latest
 * schema. `npm start` does the same on every start; this is for deploy pipelines.
 */
import { runCommand } from './run-command.js';

runCommand(async (_database, logger) => {
  logger.info('the database schema is up to date');
});
