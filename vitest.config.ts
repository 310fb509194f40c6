import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (`main`) and ESM (`module`) builds. Node, and so graphql-yoga,
    // loads the CommonJS one; Vite would hand our sources the ESM one, giving two GraphQLError
    // classes and `instanceof` checks that fail only under test. Use Node's choice everywhere.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // One PostgreSQL for the run (embedded, or TEST_DATABASE_URL); each file makes its own database.
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
