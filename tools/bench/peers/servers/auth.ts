import { GraphQLError } from 'graphql';
import { type JWTPayload, jwtVerify } from 'jose';

/** The claims of a verified token; `sub` is who the caller is (row-level security compares it). */
export interface Claims extends JWTPayload {
  sub: string;
}

/** Verifies `Authorization: Bearer <token>` headers. */
export interface TokenVerifier {
  /**
   * The claims of the header's token: an HS256 JWT signed with the secret, unexpired, with a
   * `sub`. Throws a `GraphQLError` with code `UNAUTHENTICATED` when there is no header or the
   * token is not valid. Every call verifies the signature again (an HMAC over the token): what
   * `jwtVerify` in a resolver costs, with no cache in front of it.
   */
  verify(authorization: string | undefined): Promise<Claims>;
}

/** Creates the verifier for `secret` (`AUTH_JWT_SECRET`), as jose's README shows for HS256. */
export function createTokenVerifier(secret: string): TokenVerifier {
  const key = new TextEncoder().encode(secret);
  return {
    async verify(authorization) {
      const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
      if (!token) throw unauthenticated('an Authorization: Bearer <token> header is required');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
      } catch {
        // jose's reason (expired, bad signature) is not for the client; the code says enough.
        throw unauthenticated('the token is not valid');
      }
      if (typeof payload.sub !== 'string' || payload.sub === '') throw unauthenticated('the token has no subject');
      return { ...payload, sub: payload.sub };
    },
  };
}

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });
}
