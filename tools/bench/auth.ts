import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';

/** The `sub` of the bench's token (W4's rows are owned by it). */
export const BENCH_SUBJECT = 'bench';

/**
 * How long the bench's token lives: longer than any run (`--rounds 20` of every workload at
 * `--seconds 600` would not reach it), so no request of a run meets an expired token.
 */
const TOKEN_LIFETIME = '48h';

/** The secret every poolgraph server of a run verifies with, and the one token the load sends. */
export interface BenchAuth {
  /** `AUTH_JWT_SECRET` of the servers: random, 43 characters (256 bits). */
  secret: string;
  /** An HS256 JWT signed with it, `sub` {@link BENCH_SUBJECT}, as `npm run token` makes. */
  token: string;
}

/**
 * A fresh secret and one token signed with it (jose's SignJWT, HS256): made once at start and
 * sent on every request of the workloads that carry a token, as a real client reuses its token.
 */
export async function createBenchAuth(): Promise<BenchAuth> {
  const secret = randomBytes(32).toString('base64url');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(BENCH_SUBJECT)
    .setIssuedAt()
    .setExpirationTime(TOKEN_LIFETIME)
    .sign(new TextEncoder().encode(secret));
  return { secret, token };
}
