import type { LevelWithSilent } from 'pino';
import { z } from 'zod';
import type { TokenSettings } from './auth/token-verifier.js';
import type { PoolSettings } from './db/pools/pool.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';

/** Every setting of poolgraph, parsed and validated once from the environment. */
export interface Config {
  /** `DATABASE_URL`; undefined means "start the embedded PostgreSQL". */
  databaseUrl: string | undefined;
  /**
   * `DATABASE_MIGRATION_URL`: the role that owns the tables, for migrations (`npm run migrate`
   * and at start) when the server's own role (`DATABASE_URL`) may not create them. Undefined:
   * `DATABASE_URL`.
   */
  migrationDatabaseUrl: string | undefined;
  /**
   * `DATABASE_REPLICA_URL`: a read replica; query operations run on a pool of their own to it
   * (falling back to the primary while it does not answer). Undefined: everything on the primary.
   */
  replicaUrl: string | undefined;
  /** `DATA_DIR`: where the embedded PostgreSQL keeps its data. */
  dataDir: string;
  /** `PORT` to listen on; 0 picks a free one. */
  port: number;
  /** `HOST` to listen on; undefined listens on every interface, as Node does. */
  host: string | undefined;
  /** The pool, in SQLAlchemy's terms (see {@link PoolSettings}). */
  pool: Omit<PoolSettings, 'connectionString'>;
  /** `DATABASE_CONNECT_TIMEOUT_MS`: how long the start waits for a database that does not answer. */
  databaseConnectTimeoutMs: number;
  /** `SHUTDOWN_TIMEOUT_MS`: how long a shutdown waits for requests in flight. */
  shutdownTimeoutMs: number;
  /** `LOG_LEVEL`. */
  logLevel: LevelWithSilent;
  /** `HTTP_BATCH_LIMIT`: most operations in one batched HTTP request; 0 turns batching off. */
  httpBatchLimit: number;
  /**
   * `FAST_PATH`: whether JSON POSTs of one operation skip graphql-yoga's HTTP layer
   * (`src/http/fast-path.ts`); `false` sends every request through graphql-yoga, to compare or to rule
   * the fast path out when something looks wrong.
   */
  fastPath: boolean;
  /** `PERSISTED_DOCUMENTS` and `PERSISTED_DOCUMENTS_MANIFEST`: which operations may run by hash. */
  persistedDocuments: { mode: 'allow' | 'only'; manifestPath: string };
  /** `MAX_DEPTH`, `MAX_ALIASES`, `MAX_TOKENS`, `MAX_DIRECTIVES`, `MAX_COST`, `MAX_BODY_BYTES`. */
  limits: Limits;
  /** `LOG_FORMAT`: JSON lines, pretty lines, or pretty only when stdout is a terminal (`auto`). */
  logFormat: 'auto' | 'json' | 'pretty';
  /**
   * `METRICS_ENABLED` and `METRICS_PORT`: whether Prometheus metrics are kept and served, and on
   * which port (undefined: at `/metrics` on `PORT`).
   */
  metrics: { enabled: boolean; port: number | undefined };
  /** `READY_MAX_WAITING` and `READY_TIMEOUT_MS`: when `GET /ready` answers 503 (see `src/operating/readiness.ts`). */
  readiness: { maxWaiting: number; timeoutMs: number };
  /**
   * Who may do what: `AUTH_MODE` (`chosen`: set explicitly, not defaulted) and how tokens are
   * verified (`AUTH_JWT_SECRET`, `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`,
   * `AUTH_CLOCK_TOLERANCE_S`).
   */
  auth: { mode: 'jwt' | 'open'; chosen: boolean; tokens: TokenSettings };
  /**
   * Subscriptions: `DATABASE_LISTEN_URL`, the primary's direct URL for the one LISTEN connection
   * (required with `DATABASE_POOLER=transaction`; otherwise `DATABASE_URL`), `MAX_SUBSCRIPTIONS`,
   * `SUBSCRIPTION_RETENTION_S` (how long the outbox keeps events) and `SUBSCRIPTION_TICK_MS` (the
   * least time between two reads of the outbox: what arrives meanwhile is delivered in one tick).
   */
  live: { listenUrl: string | undefined; maxSubscriptions: number; retentionS: number; tickMs: number };
}

/** The configuration is wrong; `problems` has one line per variable, naming it and its value. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, `must be at least ${min}`)
        .max(max, `must be at most ${max}`),
    );

/** Where `npm run codegen` writes the example client's manifest. */
const DEFAULT_MANIFEST = 'examples/client/generated/persisted-documents.json';

/** The values `LOG_LEVEL` takes: pino's levels, and `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
const ONE_DAY_MS = 86_400_000;
const ONE_GIB = 1_073_741_824;

/** The variables, their rules and their defaults (also listed in the README). */
const environment = z
  .object({
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_REPLICA_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_MIGRATION_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_LISTEN_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    MAX_SUBSCRIPTIONS: integer(0, 1_000_000).prefault('10000'),
    SUBSCRIPTION_RETENTION_S: integer(1, 86_400 * 30).prefault('300'),
    SUBSCRIPTION_TICK_MS: integer(0, 10_000).prefault('40'),
    DATABASE_POOLER: z.enum(['none', 'transaction'], 'must be none or transaction').prefault('none'),
    DATA_DIR: z.string().prefault('.data'),
    PORT: integer(0, 65535).prefault('4000'),
    HOST: z.string().optional(),
    POOL_SIZE: integer(0, 1000).prefault('5'),
    POOL_MAX_OVERFLOW: integer(0, 1000).prefault('10'),
    POOL_TIMEOUT_MS: integer(1, ONE_DAY_MS).prefault('5000'),
    POOL_IDLE_TIMEOUT_MS: integer(0, ONE_DAY_MS).prefault('10000'),
    POOL_RECYCLE_S: integer(0, 86_400 * 365).prefault('3600'),
    STATEMENT_TIMEOUT_MS: integer(0, ONE_DAY_MS).prefault('15000'),
    IDLE_IN_TRANSACTION_TIMEOUT_MS: integer(0, ONE_DAY_MS).prefault('30000'),
    DATABASE_CONNECT_TIMEOUT_MS: integer(0, ONE_DAY_MS).prefault('30000'),
    SHUTDOWN_TIMEOUT_MS: integer(0, ONE_DAY_MS).prefault('10000'),
    LOG_LEVEL: z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`).prefault('info'),
    LOG_FORMAT: z.enum(LOG_FORMATS, `must be one of ${LOG_FORMATS.join(', ')}`).prefault('auto'),
    METRICS_ENABLED: z
      .enum(['true', 'false'], 'must be true or false')
      .transform((value) => value === 'true')
      .prefault('true'),
    METRICS_PORT: integer(0, 65535).optional(),
    READY_MAX_WAITING: integer(0, 100_000).prefault('10'),
    READY_TIMEOUT_MS: integer(1, 60_000).prefault('1000'),
    HTTP_BATCH_LIMIT: integer(0, 1000).prefault('0'),
    FAST_PATH: z
      .enum(['true', 'false'], 'must be true or false')
      .transform((value) => value === 'true')
      .prefault('true'),
    PERSISTED_DOCUMENTS: z.enum(['allow', 'only'], 'must be allow or only').prefault('allow'),
    PERSISTED_DOCUMENTS_MANIFEST: z.string().prefault(DEFAULT_MANIFEST),
    MAX_DEPTH: integer(1, 1000).prefault(String(DEFAULT_LIMITS.maxDepth)),
    MAX_ALIASES: integer(0, 100_000).prefault(String(DEFAULT_LIMITS.maxAliases)),
    MAX_TOKENS: integer(1, 10_000_000).prefault(String(DEFAULT_LIMITS.maxTokens)),
    MAX_DIRECTIVES: integer(0, 100_000).prefault(String(DEFAULT_LIMITS.maxDirectives)),
    MAX_COST: integer(1, Number.MAX_SAFE_INTEGER).prefault(String(DEFAULT_LIMITS.maxCost)),
    MAX_BODY_BYTES: integer(1, ONE_GIB).prefault(String(DEFAULT_LIMITS.maxBodyBytes)),
    AUTH_MODE: z.enum(['jwt', 'open'], 'must be jwt or open').optional(),
    // HS256 needs a key of at least 256 bits (RFC 7518 §3.2).
    AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 needs a 256-bit key)').optional(),
    AUTH_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
    AUTH_ISSUER: z.string().optional(),
    AUTH_AUDIENCE: z.string().optional(),
    AUTH_CLOCK_TOLERANCE_S: integer(0, 3600).prefault('5'),
    NODE_ENV: z.string().optional(),
  })
  .superRefine((env, context) => {
    if (env.POOL_SIZE + env.POOL_MAX_OVERFLOW < 1) {
      context.addIssue({
        code: 'custom',
        path: ['POOL_MAX_OVERFLOW'],
        message: 'POOL_SIZE + POOL_MAX_OVERFLOW must be at least 1',
      });
    }
    // Two servers cannot listen on one port; 0 (a free port each) is the exception.
    if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT) {
      context.addIssue({
        code: 'custom',
        path: ['METRICS_PORT'],
        message: 'must differ from PORT (leave it unset to serve /metrics on PORT)',
      });
    }
    // LISTEN holds a session: a transaction pooler cannot give it one.
    if (env.DATABASE_POOLER === 'transaction' && env.DATABASE_LISTEN_URL === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['DATABASE_LISTEN_URL'],
        message: 'DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL: a direct URL of the primary for the subscriptions\' LISTEN connection (LISTEN cannot work through PgBouncer)',
      });
    }
    const keys = env.AUTH_JWT_SECRET !== undefined || env.AUTH_JWKS_URL !== undefined;
    if (env.AUTH_MODE === 'jwt' && !keys) {
      context.addIssue({ code: 'custom', path: ['AUTH_MODE'], message: 'jwt needs AUTH_JWT_SECRET or AUTH_JWKS_URL to verify tokens with' });
    }
    // In production, a server anyone may write to must be asked for, never fallen into.
    if (env.NODE_ENV === 'production' && env.AUTH_MODE === undefined && !keys) {
      context.addIssue({
        code: 'custom',
        path: ['AUTH_MODE'],
        message: 'NODE_ENV=production needs AUTH_JWT_SECRET or AUTH_JWKS_URL (writes need a token), or AUTH_MODE=open to let anyone write',
      });
    }
  });

/** Variables whose values are never printed (they may hold a password). */
const SECRET_VARIABLES = new Set(['DATABASE_URL', 'DATABASE_REPLICA_URL', 'DATABASE_MIGRATION_URL', 'DATABASE_LISTEN_URL', 'AUTH_JWT_SECRET']);

/**
 * Reads every setting from `env` (empty values count as unset), or throws a {@link ConfigError}
 * listing every wrong variable at once, each with its value and what is allowed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input = Object.fromEntries(
    Object.keys(environment.shape).map((name) => [name, env[name] === '' ? undefined : env[name]]),
  );
  const parsed = environment.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0]);
        const value = SECRET_VARIABLES.has(name) ? '(hidden)' : JSON.stringify(input[name] ?? '');
        return `${name}=${value}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    migrationDatabaseUrl: e.DATABASE_MIGRATION_URL,
    replicaUrl: e.DATABASE_REPLICA_URL,
    dataDir: e.DATA_DIR,
    port: e.PORT,
    host: e.HOST,
    pool: {
      size: e.POOL_SIZE,
      maxOverflow: e.POOL_MAX_OVERFLOW,
      timeoutMs: e.POOL_TIMEOUT_MS,
      idleTimeoutMs: e.POOL_IDLE_TIMEOUT_MS,
      recycleSeconds: e.POOL_RECYCLE_S,
      statementTimeoutMs: e.STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: e.IDLE_IN_TRANSACTION_TIMEOUT_MS,
      pooler: e.DATABASE_POOLER,
    },
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    httpBatchLimit: e.HTTP_BATCH_LIMIT,
    fastPath: e.FAST_PATH,
    persistedDocuments: { mode: e.PERSISTED_DOCUMENTS, manifestPath: e.PERSISTED_DOCUMENTS_MANIFEST },
    limits: {
      maxDepth: e.MAX_DEPTH,
      maxAliases: e.MAX_ALIASES,
      maxTokens: e.MAX_TOKENS,
      maxDirectives: e.MAX_DIRECTIVES,
      maxCost: e.MAX_COST,
      maxBodyBytes: e.MAX_BODY_BYTES,
    },
    logFormat: e.LOG_FORMAT,
    metrics: { enabled: e.METRICS_ENABLED, port: e.METRICS_PORT },
    readiness: { maxWaiting: e.READY_MAX_WAITING, timeoutMs: e.READY_TIMEOUT_MS },
    live: {
      listenUrl: e.DATABASE_LISTEN_URL,
      maxSubscriptions: e.MAX_SUBSCRIPTIONS,
      retentionS: e.SUBSCRIPTION_RETENTION_S,
      tickMs: e.SUBSCRIPTION_TICK_MS,
    },
    auth: {
      mode: e.AUTH_MODE ?? (e.AUTH_JWT_SECRET !== undefined || e.AUTH_JWKS_URL !== undefined ? 'jwt' : 'open'),
      chosen: e.AUTH_MODE !== undefined,
      tokens: {
        secret: e.AUTH_JWT_SECRET,
        jwksUrl: e.AUTH_JWKS_URL,
        issuer: e.AUTH_ISSUER,
        audience: e.AUTH_AUDIENCE,
        clockToleranceS: e.AUTH_CLOCK_TOLERANCE_S,
      },
    },
  };
}
