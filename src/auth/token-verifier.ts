import { createRemoteJWKSet, customFetch, errors, jwtVerify, type FetchImplementation, type JWTVerifyGetKey } from 'jose';
import { AuthUnavailableError, UnauthenticatedError, type AuthFailureReason } from '../errors.js';
import type { Identity } from './identity.js';

/**
 * The longest `Authorization` header read, in characters (a JWT is ASCII, so bytes). Checked
 * before any decoding, so an oversized header costs one comparison.
 */
export const MAX_TOKEN_BYTES = 8192;

/** How tokens are checked: the `AUTH_*` settings. */
export interface TokenSettings {
  /** `AUTH_JWT_SECRET`: verifies HS256 tokens, and only those. */
  secret: string | undefined;
  /** `AUTH_JWKS_URL`: the key set that verifies RS256 and ES256 tokens, and only those. */
  jwksUrl: string | undefined;
  /** `AUTH_ISSUER`: the `iss` a token must carry, checked when set. */
  issuer: string | undefined;
  /** `AUTH_AUDIENCE`: the `aud` a token must carry, checked when set. */
  audience: string | undefined;
  /** `AUTH_CLOCK_TOLERANCE_S`: seconds of clock skew allowed on `exp` and `nbf`. @default 5 */
  clockToleranceS: number;
  /** A JWKS fetch that has not answered after this many milliseconds fails. @default 3000 */
  jwksTimeoutMs?: number;
  /**
   * After a JWKS fetch (successful or not), a token naming an unknown `kid` causes no other fetch
   * for this many milliseconds, so random `kid`s cannot make us hammer the key endpoint.
   * @default 30000
   */
  jwksCooldownMs?: number;
}

/** Checks the `Authorization` header of a request. One per server: it holds the caches. */
export interface TokenVerifier {
  /**
   * No header → `undefined` (anonymous). Otherwise the token's {@link Identity}, or throws
   * `UnauthenticatedError` (the token is refused: 401) or `AuthUnavailableError` (no key could be
   * fetched to check it: 503). A token seen recently and still within its times costs a map look-up.
   */
  verify(authorization: string | null | undefined): Promise<Identity | undefined>;
}

/** Verified tokens remembered, so a client that sends the same token each time pays once. */
const CACHE_ENTRIES = 1000;
/** A cached verification is dropped after this long even if the token lives on (key revocation). */
const CACHE_TTL_MS = 60_000;
/** Keys older than this are fetched again in the background; requests keep using them meanwhile. */
const JWKS_REFRESH_MS = 600_000;

const HMAC_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'ES256'];
/** RFC 6750's `Bearer <token>`, where a JWT is three base64url parts (the last empty for `alg: none`). */
const SCHEME = 'bearer ';
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const DESCRIPTIONS: Record<Exclude<AuthFailureReason, 'missing' | 'unavailable'>, string> = {
  malformed: 'The Authorization header must be "Bearer <token>", where the token is a JWT of three base64url parts of JSON.',
  too_large: `The Authorization header is longer than ${MAX_TOKEN_BYTES} bytes.`,
  algorithm: 'The token is signed with an algorithm this server does not accept.',
  signature: 'The token signature does not verify.',
  unknown_key: 'The token names a signing key (kid) that the key set does not have.',
  expired: 'The token has expired.',
  not_yet_valid: 'The token is not valid yet (nbf).',
  issuer: 'The token was issued by an issuer this server does not trust (iss).',
  audience: 'The token is meant for another audience (aud).',
  claims: 'The token claims must be a JSON object whose sub and role, when present, are strings.',
};

function refuse(reason: keyof typeof DESCRIPTIONS): UnauthenticatedError {
  return new UnauthenticatedError(reason, DESCRIPTIONS[reason]);
}

interface CachedIdentity {
  readonly identity: Identity;
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
  readonly dropAt: number;
}

/**
 * Creates the verifier for `settings`. It holds a cache of verified tokens and, with a JWKS URL,
 * the fetched keys; nothing is fetched until the first token that needs a key.
 */
export function createTokenVerifier(settings: TokenSettings): TokenVerifier {
  const secret = settings.secret === undefined ? undefined : new TextEncoder().encode(settings.secret);
  const remoteKeys =
    settings.jwksUrl === undefined
      ? undefined
      : createRemoteKeys(new URL(settings.jwksUrl), settings.jwksTimeoutMs ?? 3000, settings.jwksCooldownMs ?? 30_000);
  const tolerance = settings.clockToleranceS;
  const cache = new Map<string, CachedIdentity>();

  const stillValid = (entry: CachedIdentity): boolean => {
    const now = Math.floor(Date.now() / 1000);
    // The same comparisons jose makes, so a cached token expires exactly when a fresh check would refuse it.
    return (
      Date.now() < entry.dropAt &&
      (entry.exp === undefined || entry.exp > now - tolerance) &&
      (entry.nbf === undefined || entry.nbf <= now + tolerance)
    );
  };

  const verifyToken = async (token: string): Promise<CachedIdentity> => {
    const [headerPart = '', payloadPart = ''] = token.split('.');
    const header = decodeJson(headerPart);
    const claims = decodeJson(payloadPart);
    if (!isRecord(header)) throw refuse('malformed');
    // Checked before the signature: a shape we would refuse anyway is not worth a verification.
    if (!isRecord(claims) || !optionalString(claims.sub) || !optionalString(claims.role)) throw refuse('claims');
    const alg = header.alg;
    // The key kind decides the algorithms, never the token: an HS256 token is not checked against a
    // JWKS (whose public keys anyone can read and use as an HMAC secret), nor RS256 against a secret.
    let key: Uint8Array | JWTVerifyGetKey;
    let algorithms: string[];
    if (typeof alg === 'string' && secret !== undefined && HMAC_ALGORITHMS.includes(alg)) {
      key = secret;
      algorithms = HMAC_ALGORITHMS;
    } else if (typeof alg === 'string' && remoteKeys !== undefined && JWKS_ALGORITHMS.includes(alg)) {
      key = remoteKeys;
      algorithms = JWKS_ALGORITHMS;
    } else {
      throw refuse('algorithm');
    }
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms,
        clockTolerance: tolerance,
        ...(settings.issuer === undefined ? {} : { issuer: settings.issuer }),
        ...(settings.audience === undefined ? {} : { audience: settings.audience }),
      });
      const identity: Identity = {
        subject: typeof payload.sub === 'string' ? payload.sub : undefined,
        role: typeof payload.role === 'string' ? payload.role : undefined,
        claimsJson: JSON.stringify(payload),
      };
      return { identity, exp: payload.exp, nbf: payload.nbf, dropAt: Date.now() + CACHE_TTL_MS };
    } catch (error) {
      throw translate(error);
    }
  };

  return {
    async verify(authorization) {
      if (authorization === undefined || authorization === null) return undefined;
      if (authorization.length > MAX_TOKEN_BYTES) throw refuse('too_large');
      if (authorization.slice(0, SCHEME.length).toLowerCase() !== SCHEME) throw refuse('malformed');
      const token = authorization.slice(SCHEME.length);
      if (!JWT_SHAPE.test(token)) throw refuse('malformed');

      const cached = cache.get(token);
      if (cached !== undefined) {
        if (stillValid(cached)) return cached.identity;
        // Verified again below, which refuses it with the right reason (expired, not yet valid).
        cache.delete(token);
      }
      const entry = await verifyToken(token);
      if (cache.size >= CACHE_ENTRIES) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      cache.set(token, entry);
      return entry.identity;
    },
  };
}

/** Decodes one base64url part of a JWT as JSON; anything else is a malformed token. */
function decodeJson(part: string): unknown {
  // Node's base64url decoder skips what it cannot read; a length of 4n+1 is never valid base64.
  if (part.length % 4 === 1) throw refuse('malformed');
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(part, 'base64url')));
  } catch {
    throw refuse('malformed');
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

/** jose's errors, said as our reasons; our own errors (from the key set) pass as they are. */
function translate(error: unknown): Error {
  if (error instanceof UnauthenticatedError || error instanceof AuthUnavailableError) return error;
  if (error instanceof errors.JWTExpired) return refuse('expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    // `reason` is 'invalid' when the claim is there but not a number or string as it must be.
    if (error.claim === 'nbf' && error.reason === 'check_failed') return refuse('not_yet_valid');
    if (error.claim === 'iss') return refuse('issuer');
    if (error.claim === 'aud') return refuse('audience');
    return refuse('claims');
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return refuse('signature');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return refuse('algorithm');
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return refuse('malformed');
  return error instanceof Error ? error : new Error(String(error));
}

/** Thrown instead of fetching while the endpoint is cooling down after a failed fetch. */
class JwksFetchSkipped extends Error {
  constructor() {
    super('the JWKS endpoint failed less than a cooldown ago; not asked again yet');
  }
}

/**
 * The key getter for `url`, over jose's remote key set, which fetches on first use, and again when
 * a token names an unknown `kid`, at most once per cooldown after a successful fetch. Around it:
 *
 * - jose would refetch before every use once keys are older than `cacheMaxAge`, and fail the
 *   request if that fetch fails, so an endpoint down for a while would refuse every token. Keys
 *   here never expire inside jose; they are refreshed in the background every
 *   {@link JWKS_REFRESH_MS}, and a failed refresh keeps the keys it had.
 * - jose's cooldown counts from the last success, so with the endpoint down every unknown `kid`
 *   would fetch (and wait out the timeout). A failed fetch here closes the gate for a cooldown.
 *
 * An unknown `kid` with the endpoint answering is the token's fault (`unknown_key`, 401); no key
 * because the endpoint is down, hangs, or sent something that is not a key set, is ours (503).
 */
function createRemoteKeys(url: URL, timeoutMs: number, cooldownMs: number): JWTVerifyGetKey {
  let blockedUntil = 0;
  let fetchedAt: number | undefined;
  const gatedFetch: FetchImplementation = (href, options) => {
    if (Date.now() < blockedUntil) return Promise.reject(new JwksFetchSkipped());
    fetchedAt = Date.now();
    return fetch(href, options);
  };
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: timeoutMs,
    cooldownDuration: cooldownMs,
    cacheMaxAge: Infinity,
    [customFetch]: gatedFetch,
  });
  const noteFailure = (error: unknown): void => {
    if (!(error instanceof JwksFetchSkipped)) blockedUntil = Date.now() + cooldownMs;
  };

  return async (protectedHeader, token) => {
    if (fetchedAt !== undefined && Date.now() - fetchedAt >= JWKS_REFRESH_MS && !remote.reloading) {
      fetchedAt = Date.now();
      // Not awaited: this request verifies with the keys held. A failure only closes the gate;
      // jose keeps the previous keys, and the next refresh interval tries again.
      remote.reload().catch(noteFailure);
    }
    try {
      return await remote(protectedHeader, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
        throw refuse('unknown_key');
      }
      // JWKSTimeout (hung), a fetch TypeError (refused, reset), a plain JOSEError (not 200, or not
      // JSON), JWKSInvalid (JSON but not a key set, or a private key), JwksFetchSkipped.
      noteFailure(error);
      throw new AuthUnavailableError(error);
    }
  };
}
