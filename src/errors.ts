import { GraphQLError } from 'graphql';
import { maskError } from 'graphql-yoga';

/**
 * The stable `extensions.code` values a client can branch on. graphql-yoga adds its own for parse
 * and validation errors (`GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`, ...); anything not
 * listed here reaches clients masked as `Unexpected error.` and is logged server-side.
 */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  NotFound: 'NOT_FOUND',
  DatabaseBusy: 'DATABASE_BUSY',
  DatabaseUnavailable: 'DATABASE_UNAVAILABLE',
  StatementTimeout: 'STATEMENT_TIMEOUT',
  /**
   * Behind a transaction pooler: a statement of the operation failed after some of its writes had
   * succeeded, and its transaction rolled them back; nothing it wrote was saved.
   */
  WritesRolledBack: 'WRITES_ROLLED_BACK',
  /** A request named a persisted document the manifest does not have (Apollo's code). */
  PersistedDocumentNotFound: 'PERSISTED_QUERY_NOT_FOUND',
  /** `PERSISTED_DOCUMENTS=only` and the request carried a full document. */
  PersistedDocumentsOnly: 'PERSISTED_QUERY_ONLY',
  /** `PERSISTED_DOCUMENTS=only` and the request carried neither a hash nor a document. */
  PersistedDocumentIdRequired: 'PERSISTED_QUERY_ID_REQUIRED',
  /** The operation nests fields deeper than `MAX_DEPTH`. */
  MaxDepthExceeded: 'MAX_DEPTH_EXCEEDED',
  /** The operation has more aliases than `MAX_ALIASES`. */
  MaxAliasesExceeded: 'MAX_ALIASES_EXCEEDED',
  /** The document has more tokens than `MAX_TOKENS`. */
  MaxTokensExceeded: 'MAX_TOKENS_EXCEEDED',
  /** The operation uses more directives than `MAX_DIRECTIVES`. */
  MaxDirectivesExceeded: 'MAX_DIRECTIVES_EXCEEDED',
  /** The operation's estimated cost is over `MAX_COST`. */
  MaxCostExceeded: 'MAX_COST_EXCEEDED',
  /**
   * The request carried a token that failed verification (HTTP 401 with `WWW-Authenticate`), or a
   * mutation came without one where `AUTH_MODE=jwt`.
   */
  Unauthenticated: 'UNAUTHENTICATED',
  /** The caller may not change this row: PostgreSQL's row-level security refused it. */
  Forbidden: 'FORBIDDEN',
  /** No key could be had to verify the request's token (the JWKS endpoint failed): HTTP 503. */
  AuthUnavailable: 'AUTH_UNAVAILABLE',
  /** The request's headers are over Node's limit (16 KB): HTTP 431, before any GraphQL runs. */
  RequestHeadersTooLarge: 'REQUEST_HEADERS_TOO_LARGE',
  /** A subscriber did not read its results as fast as they came; its subscription was ended. */
  SubscriberTooSlow: 'SUBSCRIBER_TOO_SLOW',
  /** The server holds `MAX_SUBSCRIPTIONS` subscriptions already. */
  TooManySubscriptions: 'TOO_MANY_SUBSCRIPTIONS',
} as const;

/** One of {@link ErrorCode}'s values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The codes of {@link LimitExceededError}, one per limit. */
export type LimitErrorCode =
  | typeof ErrorCode.MaxDepthExceeded
  | typeof ErrorCode.MaxAliasesExceeded
  | typeof ErrorCode.MaxTokensExceeded
  | typeof ErrorCode.MaxDirectivesExceeded
  | typeof ErrorCode.MaxCostExceeded;

/** Options of {@link PoolgraphError}'s constructor. */
export interface PoolgraphErrorOptions {
  /** HTTP status graphql-yoga should answer with when this error leaves no data. */
  httpStatus?: number;
  /**
   * Apply `httpStatus` only for clients that accept `application/graphql-response+json`;
   * `application/json` clients get 200, as GraphQL over HTTP asks for a request that failed
   * validation (graphql-yoga's `http.spec`). @default false
   */
  httpStatusPerSpec?: boolean;
  /** The underlying failure, logged server-side and never sent to clients. */
  cause?: unknown;
  /** More `extensions` fields for clients, beside `code`. */
  extensions?: Record<string, unknown>;
  /** Response headers graphql-yoga adds when this error sets the status (`WWW-Authenticate`). */
  httpHeaders?: Record<string, string>;
}

/** Base class of every error poolgraph shows to clients: a message and a stable code. */
export abstract class PoolgraphError extends GraphQLError {
  /** The stable `extensions.code` of this error. */
  abstract readonly code: ErrorCode;

  protected constructor(message: string, code: ErrorCode, options: PoolgraphErrorOptions = {}) {
    const { httpStatus, httpStatusPerSpec, cause, extensions, httpHeaders } = options;
    super(message, {
      extensions: {
        ...extensions,
        code,
        ...(httpStatus === undefined
          ? {}
          : { http: { status: httpStatus, ...(httpStatusPerSpec ? { spec: true } : {}), ...(httpHeaders ? { headers: httpHeaders } : {}) } }),
      },
    });
    // Kept as the standard `cause` (not `originalError`, which would make graphql-yoga mask this
    // error as unexpected); `toJSON()` never includes it, so clients do not see it.
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

/** An argument or input value the server cannot accept (`BAD_USER_INPUT`). */
export class BadUserInputError extends PoolgraphError {
  readonly code = ErrorCode.BadUserInput;
  constructor(message: string) {
    super(message, ErrorCode.BadUserInput);
  }
}

/**
 * An operation over one of the server's limits (depth, aliases, tokens, directives, cost), refused
 * before it runs, so before it takes a connection. HTTP 400 for clients that accept
 * `application/graphql-response+json`, 200 for `application/json`, as for validation errors.
 */
export class LimitExceededError extends PoolgraphError {
  readonly code: LimitErrorCode;
  constructor(message: string, code: LimitErrorCode) {
    super(message, code, { httpStatus: 400, httpStatusPerSpec: true });
    this.code = code;
  }
}

/** The thing a mutation should change does not exist (`NOT_FOUND`). */
export class NotFoundError extends PoolgraphError {
  readonly code = ErrorCode.NotFound;
  constructor(message: string) {
    super(message, ErrorCode.NotFound);
  }
}

/**
 * No pooled connection became free within `POOL_TIMEOUT_MS` (`DATABASE_BUSY`). Carries HTTP 503,
 * which graphql-yoga uses for the response when nothing of the operation could run.
 */
export class DatabaseBusyError extends PoolgraphError {
  readonly code = ErrorCode.DatabaseBusy;
  constructor(timeoutMs: number) {
    super(
      `The database is busy: no connection became free within ${timeoutMs} ms. Try again shortly.`,
      ErrorCode.DatabaseBusy,
      { httpStatus: 503 },
    );
  }
}

/** The database could not be reached or the connection broke (`DATABASE_UNAVAILABLE`). */
export class DatabaseUnavailableError extends PoolgraphError {
  readonly code = ErrorCode.DatabaseUnavailable;
  /**
   * @param writeOutcomeUnknown - the connection broke while a write (a COMMIT, or a write statement
   *   outside a transaction) was in flight, so whether it was saved is unknown: the message says
   *   so and `extensions.writeOutcome` is `UNKNOWN`, so a client knows to check before it retries
   *   a write that is not idempotent.
   */
  constructor(cause?: unknown, writeOutcomeUnknown = false) {
    super(
      writeOutcomeUnknown
        ? 'The connection to the database broke while saving: the write may or may not have been saved. Check before retrying.'
        : 'The database is unavailable. Try again shortly.',
      ErrorCode.DatabaseUnavailable,
      { httpStatus: 503, cause, ...(writeOutcomeUnknown ? { extensions: { writeOutcome: 'UNKNOWN' } } : {}) },
    );
  }
}

/** An operation's transaction rolled back writes it had reported as done (`WRITES_ROLLED_BACK`). */
export class WritesRolledBackError extends PoolgraphError {
  readonly code = ErrorCode.WritesRolledBack;
  constructor() {
    super(
      'A statement of this operation failed and its transaction was rolled back: none of its writes were saved.',
      ErrorCode.WritesRolledBack,
      { httpStatus: 500 },
    );
  }
}

/** A SQL statement ran longer than `STATEMENT_TIMEOUT_MS` and was cancelled (`STATEMENT_TIMEOUT`). */
export class StatementTimeoutError extends PoolgraphError {
  readonly code = ErrorCode.StatementTimeout;
  constructor(cause?: unknown) {
    super('The operation took too long and was cancelled.', ErrorCode.StatementTimeout, { cause });
  }
}

/**
 * Why a token was refused: the label of `poolgraph_auth_failures_total{reason}`. `missing` is a
 * mutation without a token where `AUTH_MODE=jwt`; `unavailable`, no key could be fetched.
 */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'too_large'
  | 'algorithm'
  | 'signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'unavailable';

/**
 * The request's token was refused, or a mutation came without one where tokens are required
 * (`UNAUTHENTICATED`): HTTP 401 with an RFC 6750 `WWW-Authenticate: Bearer` challenge. A request
 * whose token is present but invalid is never served as anonymous.
 */
export class UnauthenticatedError extends PoolgraphError {
  readonly code = ErrorCode.Unauthenticated;
  /** Why, for the failure counter and the log (never the token itself). */
  readonly reason: AuthFailureReason;
  /**
   * @param description - said to the client in the message and in the challenge's
   *   `error_description`; it must never quote the token.
   */
  constructor(reason: AuthFailureReason, description: string) {
    // RFC 6750 §3.1: no error code when the request carried no credentials at all.
    const challenge =
      reason === 'missing' ? 'Bearer' : `Bearer error="${reason === 'too_large' ? 'invalid_request' : 'invalid_token'}", error_description="${description.replace(/["\\]/g, '')}"`;
    super(description, ErrorCode.Unauthenticated, { httpStatus: 401, httpHeaders: { 'WWW-Authenticate': challenge } });
    this.reason = reason;
  }
}

/** The caller may not change this row (`FORBIDDEN`): it is another caller's. */
export class ForbiddenError extends PoolgraphError {
  readonly code = ErrorCode.Forbidden;
  constructor(message: string) {
    super(message, ErrorCode.Forbidden);
  }
}

/**
 * No key could be had to verify the request's token: the JWKS endpoint is down, hangs or returned
 * something unusable, and no cached key fits (`AUTH_UNAVAILABLE`, HTTP 503).
 */
export class AuthUnavailableError extends PoolgraphError {
  readonly code = ErrorCode.AuthUnavailable;
  readonly reason = 'unavailable' as const;
  constructor(cause?: unknown) {
    super('The keys that verify tokens cannot be fetched right now. Try again shortly.', ErrorCode.AuthUnavailable, {
      httpStatus: 503,
      cause,
    });
  }
}

/** A subscriber let more than `limit` results wait unread: its subscription ends with this. */
export class SubscriberTooSlowError extends PoolgraphError {
  readonly code = ErrorCode.SubscriberTooSlow;
  constructor(limit: number) {
    super(`This subscription was ended: more than ${limit} results waited unread. Subscribe again to go on.`, ErrorCode.SubscriberTooSlow);
  }
}

/** A subscription over `MAX_SUBSCRIPTIONS` (`TOO_MANY_SUBSCRIPTIONS`, HTTP 503). */
export class TooManySubscriptionsError extends PoolgraphError {
  readonly code = ErrorCode.TooManySubscriptions;
  constructor(limit: number) {
    super(`This server serves ${limit} subscriptions already. Try again later.`, ErrorCode.TooManySubscriptions, { httpStatus: 503 });
  }
}

/**
 * A copy of `error` with other `extensions` (GraphQLError's are read-only): same message,
 * locations, path and original error, so masking and status rules see the same error.
 */
export function withExtensions(error: GraphQLError, extensions: Record<string, unknown>): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    originalError: error.originalError ?? null,
    extensions,
  });
}

/**
 * graphql-yoga's `maskError`, keeping the error it hides as the masked error's `cause`
 * (not enumerable, and not part of `toJSON()`, so clients never see it) for
 * the request log (`useRequestLog`) to log with the request id.
 */
export function maskErrorKeepingCause(error: unknown, message: string, isDev?: boolean): Error {
  const masked = maskError(error, message, isDev);
  if (masked !== error) {
    Object.defineProperty(masked, 'cause', { value: error, enumerable: false, configurable: true });
  }
  return masked;
}
