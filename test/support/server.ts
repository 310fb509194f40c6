import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { type CreateServerOptions, createServer, type PoolgraphServer } from '../../src/app.js';
import type { PoolSettings } from '../../src/db/pools/pool.js';
import { createDrainableHttpServer } from '../../src/http/http-server.js';
import { attachGraphqlWs } from '../../src/graphql/subscriptions/websocket.js';
import type { RequestScopeStats } from '../../src/db/request/request-scope.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { resolverRuns, testSchemaExtension } from './test-schema.js';

/** Pool settings tests start from; each test file overrides what it is about. */
export const TEST_POOL: Omit<PoolSettings, 'connectionString'> = {
  size: 2,
  maxOverflow: 3,
  timeoutMs: 10_000,
  idleTimeoutMs: 1_000,
  recycleSeconds: 0,
  statementTimeoutMs: 10_000,
};

/** A GraphQL response as a client sees it, with the HTTP status. */
export interface GraphQLResponse {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> & { code?: string } }[];
  };
}

/** A real poolgraph server on a real socket (127.0.0.1, free port), for one test file. */
export interface TestServer {
  url: string;
  server: PoolgraphServer;
  /** Stats of every request whose scope was released, in release order. */
  released: RequestScopeStats[];
  /** Connections handed out by the pool (its `acquire` events), with their backend pid. */
  acquired: number[];
  /** POSTs one operation and returns the parsed response. */
  graphql(query: string, variables?: Record<string, unknown>, init?: RequestInit): Promise<GraphQLResponse>;
  /** POSTs one operation and returns the stats of its scope once released. */
  measure(query: string, variables?: Record<string, unknown>): Promise<{ response: GraphQLResponse; stats: RequestScopeStats | undefined; acquired: number[] }>;
  close(): Promise<void>;
}

/** `createServer` options a test may set (the logger defaults to a silent one). */
export type TestServerOptions = Pick<
  CreateServerOptions,
  'persistedDocuments' | 'batchLimit' | 'metrics' | 'readiness' | 'logger' | 'fastPath' | 'auth' | 'live'
>;

/** Starts `createServer` (with the test-only fields) on a real HTTP socket. */
export async function startTestServer(
  databaseUrl: string,
  pool: Partial<Omit<PoolSettings, 'connectionString'>> = {},
  options: TestServerOptions = {},
): Promise<TestServer> {
  const released: RequestScopeStats[] = [];
  const acquired: number[] = [];
  const server = createServer({
    ...options,
    database: { ...TEST_POOL, ...pool, connectionString: databaseUrl },
    logger: options.logger ?? pino({ level: 'silent' }),
    extend: testSchemaExtension,
    onScopeReleased: (stats) => released.push(stats),
  });
  server.pool.on('acquire', (client) => {
    acquired.push((client as typeof client & { processID: number }).processID);
  });
  // The server npm start runs (createDrainableHttpServer), so its answers to bad requests count too.
  const { server: http } = createDrainableHttpServer(server.requestListener);
  const webSockets = server.live ? attachGraphqlWs(http, server.yoga, options.persistedDocuments) : undefined;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`;

  const graphql: TestServer['graphql'] = async (query, variables, init) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
      ...init,
    });
    return { status: response.status, headers: response.headers, body: await response.json() };
  };

  return {
    url,
    server,
    released,
    acquired,
    graphql,
    async measure(query, variables) {
      const releasedBefore = released.length;
      const acquiredBefore = acquired.length;
      const response = await graphql(query, variables);
      return {
        response,
        stats: released[releasedBefore],
        acquired: acquired.slice(acquiredBefore),
      };
    },
    async close() {
      await webSockets?.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await server.close();
    },
  };
}

/** Polls `check` every 25 ms until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Resolves once `field`'s resolver (see `resolverRuns`) has finished more than `before` times and
 * everything that was waiting on it in this process has run: the server runs in the test's
 * process, so a macrotask after the resolver settles comes after the microtasks it set off (the
 * executor's next field, the request's log line and metrics).
 */
export async function resolverFinished(field: string, before: number, timeoutMs = 10_000): Promise<boolean> {
  const done = await eventually(() => (resolverRuns.finished.get(field) ?? 0) > before, timeoutMs);
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/** Resolves once `field`'s resolver has started more than `before` times. */
export function resolverStarted(field: string, before: number, timeoutMs = 10_000): Promise<boolean> {
  return eventually(() => (resolverRuns.started.get(field) ?? 0) > before, timeoutMs);
}

/** A test file's database and server, set up before its tests and torn down after them. */
export interface TestEnvironment {
  database: TestDatabase;
  server: TestServer;
}

/**
 * Registers `beforeAll`/`afterAll` hooks that give the calling test file its own seeded database
 * and a server on it (with `pool` overriding {@link TEST_POOL}, and `options`); read both from the returned
 * object inside tests.
 */
export function useTestEnvironment(
  pool: Partial<Omit<PoolSettings, 'connectionString'>> = {},
  options: TestServerOptions & {
    /** `app`: the server logs in as `poolgraph_app`, which row-level security binds, as `npm start`'s does. @default 'owner' */
    connectAs?: 'owner' | 'app';
  } = {},
): TestEnvironment {
  const environment = {} as TestEnvironment;
  const { connectAs, ...serverOptions } = options;
  beforeAll(async () => {
    environment.database = await createTestDatabase();
    const { url, appUrl } = environment.database;
    environment.server = await startTestServer(connectAs === 'app' ? appUrl : url, pool, serverOptions);
  });
  afterAll(async () => {
    await environment.server?.close();
    await environment.database?.drop();
  });
  return environment;
}
