/**
 * `npm run seed -- --categories N --items-per-category M`: replaces every row of the database
 * (`DATABASE_URL`, or the embedded one) with the fixed data set described in `src/db/setup/seed.ts`.
 * Defaults to 100 x 100, the benchmark's size.
 */
import { parseArgs } from 'node:util';
import { withOneConnection } from '../db/setup/one-connection.js';
import { DEFAULT_SEED_SIZE, seed } from '../db/setup/seed.js';
import { runCommand } from './run-command.js';

const { values } = parseArgs({
  options: {
    categories: { type: 'string', default: String(DEFAULT_SEED_SIZE.categories) },
    'items-per-category': { type: 'string', default: String(DEFAULT_SEED_SIZE.itemsPerCategory) },
  },
});

/** Checked before any database is opened, so a typo costs nothing. */
function count(name: string, value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed > 1_000_000) {
    process.stderr.write(`poolgraph: --${name} must be a whole number from 0 to 1000000, got "${value}"\n`);
    process.exit(1);
  }
  return parsed;
}

const size = {
  categories: count('categories', values.categories),
  itemsPerCategory: count('items-per-category', values['items-per-category']),
};

runCommand(async ({ ownerUrl }, logger) => {
  // As the tables' owner: the seed empties them first (TRUNCATE), which the server's role may not.
  await withOneConnection(ownerUrl, async (db) => {
    const started = performance.now();
    await seed(db, size);
    logger.info({ ...size, ms: Math.round(performance.now() - started) }, 'seeded');
  });
});
