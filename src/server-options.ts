import type { IncomingMessage, ServerResponse } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TokenSettings } from './auth/token-verifier.js';
import type { DatabaseOption } from './db/pools/connections.js';
import type { ReplicaRouter } from './db/pools/replica-router.js';
import type { RequestScopeStats } from './db/request/request-scope.js';
import type { RequestContext } from './graphql/context.js';
import type { AuthMode } from './graphql/plugins/use-authentication.js';
import type { PersistedDocumentsOptions } from './graphql/plugins/use-persisted-documents.js';
import type { SchemaExtension } from './graphql/schema.js';
import type { LiveHub } from './graphql/subscriptions/live-hub.js';
import type { FastPathListener } from './http/fast-path.js';
import type { Limits } from './limits.js';
import type { Readiness, ReadinessOptions } from './operating/readiness.js';

/** What graphql-yoga's Node adapter passes as the server context when mounted on `node:http`. */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
}

/** Options of `createServer` (src/app.ts). Nothing here is read from the environment. */
export interface CreateServerOptions {
  /**
   * The database: pool settings (the server creates the pool and ends it on `close()`), or a
   * `pg.Pool` the host owns and ends itself (set its `connectionTimeoutMillis`: pg-pool otherwise
   * waits forever for a connection).
   */
  database: DatabaseOption;
  /**
   * A read replica (`DATABASE_REPLICA_URL`): pool settings (the server creates the pool, with half
   * of `timeoutMs` as its connect timeout, and ends it on `close()`) or a `pg.Pool` the host owns.
   * Query operations then run on it, mutations and batches on `database`; reads fall back to
   * `database` while it does not answer (see {@link ReplicaRouter}). @default no replica
   */
  replica?: DatabaseOption;
  /** Where GraphQL (and GraphiQL) is served. @default '/graphql' */
  graphqlEndpoint?: string;
  /** Where logs go. @default a pino logger at level `info` on stdout */
  logger?: Logger;
  /**
   * Extra type definitions and resolvers merged into the schema, for programs that embed
   * poolgraph and add fields of their own; their resolvers get the same `db` and `loaders`.
   */
  extend?: SchemaExtension;
  /** Called after each request released its connection, with what it did with the database. */
  onScopeReleased?: (stats: RequestScopeStats, request: Request) => void;
  /**
   * Operations clients may send by hash (a codegen manifest), and whether they may also send
   * full documents. @default every document is accepted, none by hash
   */
  persistedDocuments?: PersistedDocumentsOptions;
  /**
   * Most operations one HTTP request may carry as a JSON array (graphql-yoga's batching); 0 turns
   * batching off. The operations of a batch share the request's one connection and its loaders,
   * so their loads batch together. @default 0
   */
  batchLimit?: number;
  /**
   * How large a request may be (depth, aliases, tokens, directives, cost, body bytes); each
   * field left out keeps its default. @default `DEFAULT_LIMITS` (src/limits.ts)
   */
  limits?: Partial<Limits>;
  /**
   * Prometheus metrics: kept in a registry of this server's own (`PoolgraphServer.metrics`) and
   * served at `endpoint` on the app, or not served by it (`endpoint: false`, to serve the
   * registry elsewhere, e.g. on another port). `enabled: false` records nothing at all.
   * @default { enabled: true, endpoint: '/metrics' }
   */
  metrics?: { enabled?: boolean; endpoint?: string | false };
  /**
   * When `GET /ready` answers 503 (see {@link Readiness}); `/health` always answers 200.
   * @default `DEFAULT_READINESS` (src/operating/readiness.ts), at '/ready'
   */
  readiness?: Partial<ReadinessOptions> & { endpoint?: string };
  /**
   * Whether `requestListener` answers JSON POSTs of one operation itself, without graphql-yoga's
   * HTTP layer (see `createFastPath`); false sends every request through graphql-yoga (tests
   * compare the two). @default true
   */
  fastPath?: boolean;
  /**
   * Who may do what (README, "Who may do what"). `tokens`: how `Authorization: Bearer` tokens are
   * verified (a secret for HS256, a JWKS URL for RS256/ES256). `mode`: `jwt`, writes need a
   * verified token; `open`, anyone may write (a pool the server creates then carries
   * `poolgraph.open_writes`, which the policies honour; a lent pool must carry it itself).
   * @default `jwt` when `tokens` has a secret or a JWKS URL, else `open`
   */
  auth?: { mode?: AuthMode; tokens?: TokenSettings };
  /**
   * Subscriptions (schema.graphql's `type Subscription`): `listenUrl`, the primary's direct URL for
   * the one LISTEN connection (required behind a transaction pooler, where LISTEN cannot work;
   * otherwise the database's own URL); `maxSubscriptions` (`MAX_SUBSCRIPTIONS`); `queueLimit`,
   * results a subscriber may leave unread before it is ended; `retentionS` (`SUBSCRIPTION_RETENTION_S`)
   * and `retentionIntervalMs`: how long the outbox keeps events, and how often it is swept (only
   * where the server creates its pool); `tickMs` (`SUBSCRIPTION_TICK_MS`), the least time between
   * two reads of the outbox. @default the database's URL, 10000, 256, 300 s, half the retention up
   * to 60 s, 40 ms
   */
  live?: {
    listenUrl?: string | undefined;
    maxSubscriptions?: number;
    queueLimit?: number;
    retentionS?: number;
    retentionIntervalMs?: number;
    tickMs?: number;
  };
}

/** What `createServer` (src/app.ts) returns. */
export interface PoolgraphServer {
  /** The subscriptions' hub, when the server can listen (see `CreateServerOptions.live`). */
  live: LiveHub | undefined;
  /**
   * What to mount on a Node HTTP server (`http.createServer(server.requestListener)`): the fast
   * path for JSON POSTs of one operation, graphql-yoga for every other request.
   */
  requestListener: FastPathListener;
  /**
   * The graphql-yoga app: a Node request listener (every request through graphql-yoga's HTTP
   * layer) and a WHATWG `fetch` handler, for hosts that mount it elsewhere.
   */
  yoga: YogaServerInstance<ServerContext, RequestContext>;
  /** The pool every request borrows its one connection from (the primary's, with a replica). */
  pool: pg.Pool;
  /** The read replica's pool, when `replica` was given. */
  replicaPool: pg.Pool | undefined;
  /** Sends each request to the primary or the replica, when `replica` was given. */
  replicaRouter: ReplicaRouter | undefined;
  /** This server's metrics registry (Prometheus), or undefined when metrics are off. */
  metrics: Registry | undefined;
  /** Whether the server should get traffic, as `GET /ready` reports it. */
  readiness: Readiness;
  /**
   * Tells the server a graceful shutdown has begun: from now on `/ready` answers 503, so load
   * balancers stop sending requests while those in flight finish.
   */
  startDraining(): void;
  /**
   * Disposes the Yoga app and, when the server created the pools, ends them. Close the HTTP server
   * (and let its requests finish) first: Yoga does not wait for requests in flight.
   */
  close(): Promise<void>;
}
