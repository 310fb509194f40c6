import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Identity } from '../../auth/identity.js';
import type { TokenVerifier } from '../../auth/token-verifier.js';
import { type AuthFailureReason, AuthUnavailableError, UnauthenticatedError } from '../../errors.js';
import { RequestSlot } from '../../http/request-slot.js';
import type { RequestContext } from '../context.js';

/** `AUTH_MODE`: whether writes need a verified token (`jwt`) or anyone may write (`open`). */
export type AuthMode = 'jwt' | 'open';

/** Options of {@link useAuthentication}. */
export interface UseAuthenticationOptions {
  /** `jwt`: a mutation without a token is refused here; `open`: anyone may write. */
  mode: AuthMode;
  /** Verifies `Authorization: Bearer` tokens; undefined when no key is configured. */
  verifier: TokenVerifier | undefined;
  /** Told about every refused request, with why (`poolgraph_auth_failures_total{reason}`). */
  onFailure?: (reason: AuthFailureReason) => void;
  /** Told who the caller is, once per request that carried a valid token (the request log). */
  onIdentified?: (request: Request, identity: Identity) => void;
}

/** Resolves to the request's identity; kept per request, so a batch's operations verify once. */
type Verification = Promise<Identity | undefined>;

/** {@link useAuthentication}'s plugin, which also tells who each request's caller is. */
export type AuthenticationPlugin = Plugin<RequestContext> & {
  /**
   * The verified caller of `request` once its context is being built (for the request scope,
   * whose plugin runs after this one); undefined for an anonymous request.
   */
  identityOf(request: Request): Identity | undefined;
};

const MUTATION_NEEDS_TOKEN =
  'This operation writes, and this server lets only callers with a token write: send the header Authorization: Bearer <token>.';

/**
 * Verifies the request's `Authorization: Bearer` token and keeps the caller's identity for the
 * request scope (`identityOf`), which sends its claims to PostgreSQL (I7) and puts it in the
 * GraphQL context (`identity`).
 *
 * - No header: the request is anonymous (`identity` undefined), and costs nothing here.
 * - A header that does not verify (bad signature, expired, wrong audience, malformed, or a server
 *   with no key to verify it with): HTTP 401 `UNAUTHENTICATED` with a `WWW-Authenticate: Bearer`
 *   challenge. Such a request is never served as anonymous, and it takes no connection (the
 *   identity is settled while the context is built, before the scope exists).
 * - Keys that cannot be fetched: HTTP 503 `AUTH_UNAVAILABLE`.
 * - `mode: 'jwt'`: a mutation without a token is refused (`UNAUTHENTICATED`) before it runs.
 *   PostgreSQL would refuse its writes anyway (row-level security); this says why, earlier.
 */
export function useAuthentication(options: UseAuthenticationOptions): AuthenticationPlugin {
  const { mode, verifier, onFailure, onIdentified } = options;
  const verifications = new RequestSlot<Verification>('request token verification');
  const identities = new RequestSlot<Identity>('request identity');

  function verify(request: Request): Verification | undefined {
    const header = request.headers.get('authorization');
    if (header === null) return undefined;
    let verification = verifications.get(request);
    if (!verification) {
      verification = (verifier ? verifier.verify(header) : Promise.reject(noKeys())).then(
        (identity) => {
          if (identity) {
            identities.set(request, identity);
            onIdentified?.(request, identity);
          }
          return identity;
        },
        (error: unknown) => {
          if (error instanceof UnauthenticatedError || error instanceof AuthUnavailableError) onFailure?.(error.reason);
          throw error;
        },
      );
      verifications.set(request, verification);
    }
    return verification;
  }

  const plugin: AuthenticationPlugin = {
    identityOf: (request) => identities.get(request),
    onContextBuilding({ context }) {
      // Anonymous: no promise, so context building stays synchronous.
      return verify(context.request)?.then(() => undefined);
    },
  };
  // Only where writes need a token: in open mode no request pays for the hook.
  if (mode === 'jwt') {
    plugin.onExecute = ({ args, setResultAndStopExecution }) => {
      if (args.contextValue.identity !== undefined) return;
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      onFailure?.('missing');
      setResultAndStopExecution({ errors: [new UnauthenticatedError('missing', MUTATION_NEEDS_TOKEN)] });
    };
  }
  return plugin;
}

function noKeys(): UnauthenticatedError {
  return new UnauthenticatedError(
    'unknown_key',
    'This server verifies no tokens (no AUTH_JWT_SECRET or AUTH_JWKS_URL is set): send the request without an Authorization header.',
  );
}
