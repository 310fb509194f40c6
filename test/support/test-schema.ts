import { sql } from 'kysely';
import type { CreateServerOptions } from '../../src/app.js';

/** The labels the test-only `mark` mutation was called with, in call order. */
export const markedLabels: string[] = [];

/**
 * How often each slow test field's resolver has started and finished (its wait over, its
 * statement run or refused), so that a test can wait for the event instead of a fixed time.
 */
export const resolverRuns = { started: new Map<string, number>(), finished: new Map<string, number>() };

/**
 * A point a test-only resolver stops at until the test opens it, so that the test acts while the
 * resolver is known to wait there, with no fixed time: `const gate = closeGate('x')`, start the
 * request (naming the gate), `await gate.reached()`, act, `gate.open()` (in `finally`, or the
 * request never ends).
 */
export interface Gate {
  /** Resolves true once a resolver waits at the gate, false after `timeoutMs` without one. */
  reached(timeoutMs?: number): Promise<boolean>;
  /** Lets the resolver go on (and any that arrive later pass at once). */
  open(): void;
}

const gates = new Map<string, { arrive(): void; opened: Promise<void> }>();

/** Closes the gate `name` for the next resolver that arrives at it. */
export function closeGate(name: string): Gate {
  let arrive!: () => void;
  let open!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.set(name, { arrive, opened });
  return {
    async reached(timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      try {
        return await Promise.race([arrived.then(() => true), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    open() {
      gates.delete(name);
      open();
    },
  };
}

/** What {@link leaveAtGate} saw, each true when it happened. */
export interface LeftAtGate {
  /** A resolver of the request arrived at the gate. */
  reached: boolean;
  /** `ready` held before the client left. */
  ready: boolean;
  /** The client's request failed: it was aborted. */
  aborted: boolean;
  /** `whileWaiting` held while the resolver still waited at the gate. */
  whileWaiting: boolean;
}

/**
 * A client that leaves while a resolver of its request waits at the gate `name`: closes the gate,
 * sends the request (`send`, given the signal to abort it with), and once a resolver waits there
 * and `ready` holds, aborts it. `whileWaiting` is then asked before the gate opens, so what it
 * sees can only come from the client's leaving, never from a response. The gate opens on every
 * path, or the request would never end.
 */
export async function leaveAtGate(
  name: string,
  send: (signal: AbortSignal) => Promise<unknown>,
  checks: { ready?: () => Promise<boolean>; whileWaiting: () => Promise<boolean> },
): Promise<LeftAtGate> {
  const gate = closeGate(name);
  const controller = new AbortController();
  try {
    const request = send(controller.signal);
    const reached = await gate.reached();
    const ready = reached && ((await checks.ready?.()) ?? true);
    controller.abort();
    const aborted = await request.then(
      () => false,
      () => true,
    );
    // Nothing to wait for when the resolver never arrived: the test fails at once.
    return { reached, ready, aborted, whileWaiting: reached && (await checks.whileWaiting()) };
  } finally {
    gate.open();
  }
}

async function passGate(name: string): Promise<void> {
  const gate = gates.get(name);
  if (!gate) throw new Error(`no gate named "${name}" is closed`);
  gate.arrive();
  await gate.opened;
}

async function tracked<T>(field: string, run: () => Promise<T>): Promise<T> {
  resolverRuns.started.set(field, (resolverRuns.started.get(field) ?? 0) + 1);
  try {
    return await run();
  } finally {
    resolverRuns.finished.set(field, (resolverRuns.finished.get(field) ?? 0) + 1);
  }
}

/**
 * Fields only the tests add (through `createServer`'s `extend` option, the way an embedding
 * program would), to reach paths the public schema cannot: which backend served a request, a
 * statement that runs long, a SQL error nobody maps, a resolver that throws after SQL ran, and
 * mutations that wait or only record that they ran.
 */
export const testSchemaExtension: NonNullable<CreateServerOptions['extend']> = {
  typeDefs: /* GraphQL */ `
    "What the request's connection holds: its backend, and the claims set on its transaction."
    type SessionSeen {
      pid: Int!
      "current_setting('request.jwt.claims', true): empty when none are set."
      claims: String
    }

    extend type Query {
      backendPid: Int!
      sessionSeen: SessionSeen!
      sleep(seconds: Float!): Boolean!
      sleepInTransaction(seconds: Float!): Boolean!
      failingSql: Boolean!
      failingAfterSql: Boolean!
      failingCommit: Boolean
      idleInTransaction(seconds: Float!): Boolean
      writeThenWaitBeforeCommit(name: String!, gate: String!): Boolean
      writeInTransaction(name: String!, thenFail: Boolean = false): Boolean
      waitThenSelect(gate: String!): Boolean
    }

    extend type Mutation {
      "Waits in JavaScript, touching nothing."
      pause(seconds: Float!): Boolean
      "Adds label to markedLabels (no database): shows whether a resolver ran."
      mark(label: String!): Boolean
      "A resolver with a bug: it relabels every item, whoever owns it. Returns the rows changed."
      relabelEveryItem(label: String!): Int!
    }
  `,
  resolvers: {
    Query: {
      sessionSeen: async (_parent, _args, { db }) => {
        const { rows } = await sql<{ pid: number; claims: string | null }>`
          select pg_backend_pid() as pid, current_setting('request.jwt.claims', true) as claims`.execute(db);
        return rows[0];
      },
      backendPid: async (_parent, _args, { db }) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
        return rows[0]?.pid;
      },
      sleep: async (_parent, args: { seconds: number }, { db }) => {
        await sql`select pg_sleep(${args.seconds})`.execute(db);
        return true;
      },
      sleepInTransaction: async (_parent, args: { seconds: number }, { db }) => {
        await db.transaction().execute(async (trx) => {
          await sql`insert into categories (name) values ('written-before-sleep')`.execute(trx);
          await sql`select pg_sleep(${args.seconds})`.execute(trx);
        });
        return true;
      },
      failingSql: async (_parent, _args, { db }) => {
        await sql`select 1 / 0 as secret_sql_text`.execute(db);
        return true;
      },
      // A statement fails inside the transaction, the resolver swallows it and lets Kysely
      // COMMIT: PostgreSQL answers ROLLBACK, which must fail this field and nothing else.
      failingCommit: async (_parent, _args, { db }) => {
        await db.transaction().execute(async (trx) => {
          await sql`select 1 / 0`.execute(trx).catch(() => undefined);
        });
        return true;
      },
      writeInTransaction: async (_parent, args: { name: string; thenFail: boolean }, { db }) => {
        await db.transaction().execute(async (trx) => {
          await sql`insert into categories (name) values (${args.name})`.execute(trx);
          if (args.thenFail) throw new Error('failing after the write, so it must roll back');
        });
        return true;
      },
      // Opens a transaction and then waits in JavaScript, not in SQL: the transaction sits
      // idle, which idle_in_transaction_session_timeout must cut short.
      idleInTransaction: async (_parent, args: { seconds: number }, { db }) => {
        await db.transaction().execute(async (trx) => {
          await sql`select 1`.execute(trx);
          await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
          await sql`select 1`.execute(trx);
        });
        return true;
      },
      // Waits at the test's gate between its INSERT and COMMIT: the statement after the gate is
      // COMMIT itself.
      writeThenWaitBeforeCommit: async (_parent, args: { name: string; gate: string }, { db }) => {
        await db.transaction().execute(async (trx) => {
          await sql`insert into categories (name) values (${args.name})`.execute(trx);
          await passGate(args.gate);
        });
        return true;
      },
      // Waits at the test's gate before its one statement: a client that leaves meanwhile never
      // makes it take a connection.
      waitThenSelect: (_parent, args: { gate: string }, { db }) =>
        tracked('waitThenSelect', async () => {
          await passGate(args.gate);
          await sql`select 1`.execute(db);
          return true;
        }),
      failingAfterSql: async (_parent, _args, { db }) => {
        await sql`select 1`.execute(db);
        throw new Error('internal detail that must not reach clients');
      },
    },
    Mutation: {
      pause: (_parent, args: { seconds: number }) =>
        tracked('pause', async () => {
          await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
          return true;
        }),
      mark: (_parent, args: { label: string }) => {
        markedLabels.push(args.label);
        return true;
      },
      relabelEveryItem: async (_parent, args: { label: string }, { db }) => {
        const result = await db.updateTable('items').set({ label: args.label }).executeTakeFirst();
        return Number(result.numUpdatedRows);
      },
    },
  },
};
