import { inject, type TestContext } from 'vitest';
import { APPLICATION_NAME } from '../../src/db/pools/pool.js';
import type { TestDatabase } from './database.js';
import { eventually } from './server.js';

/** One statement as `pg_stat_statements` normalises it (constants as `$n`), and its calls. */
export interface SeenStatement {
  query: string;
  calls: number;
}

/**
 * What PostgreSQL ran in a test database while an action ran, counted by `pg_stat_statements`,
 * not by the code under test. Every statement counts once per call, utility statements included
 * (`BEGIN`, `COMMIT`, each `SET LOCAL` of a multi-statement string); an empty query (`;`, the
 * pre-ping) parses to nothing and is not counted.
 */
export interface StatementsSeen {
  /** Calls of every statement. */
  total: number;
  /** The statements with their calls, most called first. */
  statements: SeenStatement[];
  /** Calls of the statements whose normalised text matches `pattern`. */
  calls(pattern: RegExp): number;
  /** The calls by kind: transaction control, `SET LOCAL`, and the rest (reads and writes). */
  byKind: StatementKinds;
  /** One line per statement (`3 x select …`), for a failed assertion's message. */
  listing: string;
}

/** Calls of {@link StatementsSeen} by kind of statement. */
export interface StatementKinds {
  begin: number;
  /** Each `SET LOCAL`, also one sent in the same round trip as another statement. */
  setLocal: number;
  /** Everything that is neither transaction control nor `SET LOCAL`: the operation's reads and writes. */
  data: number;
  commit: number;
  rollback: number;
}

const KINDS: [Exclude<keyof StatementKinds, 'data'>, RegExp][] = [
  ['begin', /^\s*(begin|start transaction)\b/i],
  ['setLocal', /^\s*set local\b/i],
  ['commit', /^\s*(commit|end)\b/i],
  ['rollback', /^\s*rollback\b/i],
];

function kindsOf(statements: readonly SeenStatement[]): StatementKinds {
  const kinds: StatementKinds = { begin: 0, setLocal: 0, data: 0, commit: 0, rollback: 0 };
  for (const { query, calls } of statements) {
    const kind = KINDS.find(([, pattern]) => pattern.test(query))?.[0] ?? 'data';
    kinds[kind] += calls;
  }
  return kinds;
}

/**
 * Counts statements on PostgreSQL's side for one test file's database; see {@link usePostgresStatements}.
 */
export interface PostgresStatements {
  /**
   * Runs `action` and returns its result with what PostgreSQL ran in this database meanwhile, by
   * anyone but this counter, once the app's connections are idle again (a statement is counted
   * when it ends, before its connection turns idle). Nothing else may use the database meanwhile:
   * the test's own `database.query` would be counted too.
   *
   * Without `pg_stat_statements` on a `TEST_DATABASE_URL` server, skips the test saying why; on
   * the embedded server (always started with it) that is a failure instead.
   */
  during<T>(context: TestContext, action: () => Promise<T>): Promise<{ result: T; seen: StatementsSeen }>;
}

// The counter's own queries carry this comment (pg_stat_statements keeps comments in the text it
// records), so that its readings stay out of the count.
const MARK = '/* poolgraph statement counter */';

/**
 * Counts statements with `pg_stat_statements` in the database `database()` returns (called at
 * first use, so a database made in a `beforeAll` works). It creates the extension there once
 * (the embedded server's superuser may; the database is dropped with the file), and reads
 * differences of `calls` rather than resetting, so it needs no reset privilege and disturbs no
 * other database's statistics. Entries are per (role, database, statement): only this
 * database's are read.
 */
export function usePostgresStatements(database: () => TestDatabase): PostgresStatements {
  let availability: Promise<string | undefined> | undefined;
  const unavailable = () => (availability ??= whyUnavailable(database()));

  async function snapshot(): Promise<Map<string, SeenStatement>> {
    const rows = await database().query<{ key: string; query: string; calls: string }>(
      `select userid::text || ':' || queryid::text as key, query, calls::text as calls
       from pg_stat_statements
       where dbid = (select oid from pg_database where datname = current_database())
         and query not like $1 ${MARK}`,
      [`%${MARK}%`],
    );
    return new Map(rows.map((row) => [row.key, { query: row.query, calls: Number(row.calls) }]));
  }

  return {
    async during(context, action) {
      const reason = await unavailable();
      if (reason !== undefined) {
        if (inject('statementStatsPreloaded')) {
          throw new Error(`the embedded PostgreSQL is started with pg_stat_statements, yet ${reason}`);
        }
        const note = `PostgreSQL cannot count statements here: ${reason} (TEST_DATABASE_URL's server)`;
        // The default reporter shows a skip without its note; the warning says why in any case.
        console.warn(`skipped "${context.task.name}": ${note}`);
        context.skip(note);
      }
      const before = await snapshot();
      const result = await action();
      const settled = await eventually(async () => (await busyAppConnections(database())) === 0);
      if (!settled) throw new Error('the app still had a statement running or a transaction open 5 s after the action');
      const after = await snapshot();
      const statements: SeenStatement[] = [];
      for (const [key, { query, calls }] of after) {
        const ran = calls - (before.get(key)?.calls ?? 0);
        if (ran > 0) statements.push({ query, calls: ran });
      }
      statements.sort((a, b) => b.calls - a.calls || a.query.localeCompare(b.query));
      return {
        result,
        seen: {
          total: statements.reduce((sum, statement) => sum + statement.calls, 0),
          statements,
          calls: (pattern) =>
            statements.filter((statement) => pattern.test(statement.query)).reduce((sum, statement) => sum + statement.calls, 0),
          byKind: kindsOf(statements),
          listing: statements.map((statement) => `${statement.calls} x ${statement.query.replace(/\s+/g, ' ')}`).join('\n'),
        },
      };
    },
  };
}

/** Why `pg_stat_statements` cannot be read in `database`, or undefined when it can. */
async function whyUnavailable(database: TestDatabase): Promise<string | undefined> {
  try {
    await database.query('create extension if not exists pg_stat_statements');
    // The view exists with the extension, but answers only when the library is preloaded.
    await database.query('select 1 from pg_stat_statements limit 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The app's connections to `database` that run a statement or hold a transaction open. */
async function busyAppConnections(database: TestDatabase): Promise<number> {
  const [row] = await database.query<{ busy: number }>(
    `select count(*)::int as busy from pg_stat_activity
     where datname = current_database() and application_name = $1 and state <> 'idle' ${MARK}`,
    [APPLICATION_NAME],
  );
  return row?.busy ?? 0;
}
