import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { readPersistedDocumentsManifest } from '../../src/graphql/persisted-documents-manifest.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration from the environment', () => {
  it('uses documented defaults when nothing is set', () => {
    expect(loadConfig({})).toMatchObject({
      databaseUrl: undefined,
      port: 4000,
      pool: { size: 5, maxOverflow: 10, timeoutMs: 5000, idleTimeoutMs: 10000, recycleSeconds: 3600, statementTimeoutMs: 15000 },
    });
  });

  it('maps every pool variable onto the pool settings', () => {
    const config = loadConfig({
      POOL_SIZE: '2', POOL_MAX_OVERFLOW: '3', POOL_TIMEOUT_MS: '100', POOL_IDLE_TIMEOUT_MS: '200',
      POOL_RECYCLE_S: '0', STATEMENT_TIMEOUT_MS: '50', PORT: '0', DATABASE_URL: 'postgres://u:p@h/d',
      IDLE_IN_TRANSACTION_TIMEOUT_MS: '70', DATABASE_POOLER: 'transaction', DATABASE_LISTEN_URL: 'postgres://u:p@h/d',
    });
    expect(config.pool).toEqual({
      size: 2, maxOverflow: 3, timeoutMs: 100, idleTimeoutMs: 200, recycleSeconds: 0, statementTimeoutMs: 50,
      idleInTransactionTimeoutMs: 70, pooler: 'transaction',
    });
    expect(config.port).toBe(0);
    expect(config.databaseUrl).toBe('postgres://u:p@h/d');
  });

  it('maps every limit variable onto the limits, and defaults to the documented limits', () => {
    expect(loadConfig({}).limits).toEqual({
      maxDepth: 10, maxAliases: 50, maxTokens: 5000, maxDirectives: 50, maxCost: 100000, maxBodyBytes: 1000000,
    });
    expect(loadConfig({}).limits).toEqual(DEFAULT_LIMITS);
    const config = loadConfig({
      MAX_DEPTH: '7', MAX_ALIASES: '0', MAX_TOKENS: '800', MAX_DIRECTIVES: '3', MAX_COST: '1000', MAX_BODY_BYTES: '4096',
    });
    expect(config.limits).toEqual({
      maxDepth: 7, maxAliases: 0, maxTokens: 800, maxDirectives: 3, maxCost: 1000, maxBodyBytes: 4096,
    });
    expect(problemsOf({ MAX_DEPTH: '0', MAX_BODY_BYTES: '1mb', MAX_TOKENS: '-5' })).toEqual([
      'MAX_DEPTH="0": must be at least 1',
      'MAX_TOKENS="-5": must be at least 1',
      'MAX_BODY_BYTES="1mb": must be a whole number',
    ]);
  });

  it('names each wrong variable with its value, all at once', () => {
    expect(problemsOf({ POOL_SIZE: 'abc', PORT: '99999' })).toEqual([
      'PORT="99999": must be at most 65535',
      'POOL_SIZE="abc": must be a whole number',
    ]);
    expect(problemsOf({ POOL_SIZE: '-1' })).toEqual(['POOL_SIZE="-1": must be at least 0']);
    expect(problemsOf({ POOL_SIZE: '0', POOL_MAX_OVERFLOW: '0' })[0]).toContain('POOL_MAX_OVERFLOW');
    expect(problemsOf({ LOG_LEVEL: 'loud' })[0]).toMatch(/^LOG_LEVEL="loud": must be one of/);
    expect(problemsOf({ PERSISTED_DOCUMENTS: 'sometimes' })).toEqual([
      'PERSISTED_DOCUMENTS="sometimes": must be allow or only',
    ]);
    expect(problemsOf({ FAST_PATH: 'no' })).toEqual(['FAST_PATH="no": must be true or false']);
    expect(loadConfig({}).fastPath).toBe(true);
    expect(loadConfig({ FAST_PATH: 'false' }).fastPath).toBe(false);
  });

  it('maps the observability settings (logs, metrics, readiness), with documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      logFormat: 'auto',
      metrics: { enabled: true, port: undefined },
      readiness: { maxWaiting: 10, timeoutMs: 1000 },
    });
    expect(
      loadConfig({ LOG_FORMAT: 'json', METRICS_ENABLED: 'false', METRICS_PORT: '9464', READY_MAX_WAITING: '0', READY_TIMEOUT_MS: '250' }),
    ).toMatchObject({
      logFormat: 'json',
      metrics: { enabled: false, port: 9464 },
      readiness: { maxWaiting: 0, timeoutMs: 250 },
    });
    expect(problemsOf({ LOG_FORMAT: 'xml', METRICS_ENABLED: 'yes', METRICS_PORT: '70000', READY_MAX_WAITING: '-1', READY_TIMEOUT_MS: '0' })).toEqual([
      'LOG_FORMAT="xml": must be one of auto, json, pretty',
      'METRICS_ENABLED="yes": must be true or false',
      'METRICS_PORT="70000": must be at most 65535',
      'READY_MAX_WAITING="-1": must be at least 0',
      'READY_TIMEOUT_MS="0": must be at least 1',
    ]);
    expect(problemsOf({ PORT: '4000', METRICS_PORT: '4000' })).toEqual([
      'METRICS_PORT="4000": must differ from PORT (leave it unset to serve /metrics on PORT)',
    ]);
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' }).metrics.port).toBe(0);
  });

  it('never prints the value of DATABASE_URL, which may hold a password', () => {
    const [problem] = problemsOf({ DATABASE_URL: 'mysql://user:s3cret@host/db' });
    expect(problem).toContain('DATABASE_URL');
    expect(problem).not.toContain('s3cret');
  });
});

describe('who may write, from the environment (AUTH_*)', () => {
  const SECRET = 'x'.repeat(32);

  it('is open without a key, and requires tokens for writes once a secret or a JWKS URL is set', () => {
    expect(loadConfig({}).auth).toMatchObject({ mode: 'open', chosen: false });
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET }).auth).toMatchObject({ mode: 'jwt', tokens: { secret: SECRET, clockToleranceS: 5 } });
    expect(loadConfig({ AUTH_JWKS_URL: 'https://issuer.example/.well-known/jwks.json' }).auth.mode).toBe('jwt');
    expect(loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_MODE: 'open' }).auth).toMatchObject({ mode: 'open', chosen: true });
    expect(loadConfig({ AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_CLOCK_TOLERANCE_S: '0' }).auth.tokens).toMatchObject({
      issuer: 'i',
      audience: 'a',
      clockToleranceS: 0,
    });
  });

  it('stops a production start whose open mode nobody chose, saying what to set', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      'AUTH_MODE="": NODE_ENV=production needs AUTH_JWT_SECRET or AUTH_JWKS_URL (writes need a token), or AUTH_MODE=open to let anyone write',
    ]);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'open' }).auth.mode).toBe('open');
    expect(loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET }).auth.mode).toBe('jwt');
  });

  it('refuses tokens required with nothing to verify them, a short secret and a JWKS URL that is not http(s), never printing the secret', () => {
    expect(problemsOf({ AUTH_MODE: 'jwt' })).toEqual(['AUTH_MODE="jwt": jwt needs AUTH_JWT_SECRET or AUTH_JWKS_URL to verify tokens with']);
    const [short] = problemsOf({ AUTH_JWT_SECRET: 'too-short-s3cret' });
    expect(short).toMatch(/^AUTH_JWT_SECRET=\(hidden\): must be at least 32 characters/);
    expect(problemsOf({ AUTH_JWKS_URL: 'file:///etc/passwd' })).toEqual(['AUTH_JWKS_URL="file:///etc/passwd": must be an http:// or https:// URL']);
  });
});

describe('the persisted-documents manifest', () => {
  it('is required with PERSISTED_DOCUMENTS=only, and the message says what to do', () => {
    expect(() => readPersistedDocumentsManifest('/nonexistent/persisted-documents.json', true)).toThrow(
      /PERSISTED_DOCUMENTS=only needs a manifest.*npm run codegen/,
    );
    expect(readPersistedDocumentsManifest('/nonexistent/persisted-documents.json', false)).toEqual({});
  });

  it('reads the manifest codegen wrote', () => {
    const manifest = readPersistedDocumentsManifest(loadConfig({}).persistedDocuments.manifestPath, true);
    expect(Object.values(manifest)).toContain('query ItemNumbers { items { number } }');
  });
});
