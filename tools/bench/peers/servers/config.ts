/**
 * Every setting a peer server reads, parsed once from the environment the bench gives its
 * server processes (`tools/bench/main.ts`): nothing else in the peers reads `process.env`.
 */

/** What a peer server is told by the bench. */
export interface PeerConfig {
  /** `DATABASE_URL`: the bench's `poolgraph_app` login (row-level security binds it). */
  databaseUrl: string;
  /** `POOL_SIZE`: connections opened before the ready line and kept open. @default 10 */
  poolSize: number;
  /** `POOL_MAX_OVERFLOW`: connections the pool may open beyond `poolSize`. @default 0 */
  poolMaxOverflow: number;
  /** `AUTH_JWT_SECRET`: the HS256 secret the bench signs its token with. */
  jwtSecret: string;
}

/** Reads {@link PeerConfig}; throws one error naming every variable that is missing or wrong. */
export function loadPeerConfig(env: NodeJS.ProcessEnv = process.env): PeerConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name];
    if (!value) problems.push(`${name} must be set (the bench passes it)`);
    return value ?? '';
  };
  const count = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) problems.push(`${name} must be a whole number, got "${raw}"`);
    return value;
  };
  const config: PeerConfig = {
    databaseUrl: required('DATABASE_URL'),
    poolSize: count('POOL_SIZE', 10),
    poolMaxOverflow: count('POOL_MAX_OVERFLOW', 0),
    jwtSecret: required('AUTH_JWT_SECRET'),
  };
  if (problems.length > 0) throw new Error(`peer server: invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}
