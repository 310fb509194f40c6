import { SignJWT } from 'jose';
import type { TokenSettings } from '../../src/auth/token-verifier.js';

/** The HS256 secret test servers verify tokens with. */
export const TEST_SECRET = 'a-test-secret-of-at-least-32-characters!';

/** `createServer`'s `auth.tokens` for {@link TEST_SECRET}. */
export const TEST_TOKENS: TokenSettings = {
  secret: TEST_SECRET,
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
  clockToleranceS: 5,
};

/** A token signed with {@link TEST_SECRET} for `sub` (with `role`), valid for an hour. */
export function tokenFor(sub: string | undefined, role?: string): Promise<string> {
  return new SignJWT({ ...(sub ? { sub } : {}), ...(role ? { role } : {}) })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_SECRET));
}

/** The request headers that carry `token`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
