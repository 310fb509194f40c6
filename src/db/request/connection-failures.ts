import pg from 'pg';

/** The message pg-pool rejects `connect()` with when `connectionTimeoutMillis` elapses. */
export const POOL_TIMEOUT_MESSAGE = 'timeout exceeded when trying to connect';

/** True when `error` is pg-pool's "no connection became free in time" (its connect timeout). */
export function isPoolTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === POOL_TIMEOUT_MESSAGE;
}

/**
 * True when the error means the connection itself is gone or unusable (the server shut down or
 * terminated the backend, the socket closed, the client-side `query_timeout` fired), as opposed
 * to an error in one statement or a bug on our side, which leave the connection healthy.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    // Class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
    return error.code?.startsWith('08') === true || /^57P0[123]$/.test(error.code ?? '');
  }
  if (!(error instanceof Error)) return false;
  const code = (error as Error & { code?: unknown }).code;
  return (
    (typeof code === 'string' && /^E(CONNRESET|PIPE|TIMEDOUT|CONNREFUSED|HOSTUNREACH|NETUNREACH)$/.test(code)) ||
    /Connection terminated|not queryable|Query read timeout/i.test(error.message)
  );
}

/** True when PostgreSQL cancelled the statement for running past `statement_timeout`. */
export function isStatementTimeout(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code === '57014';
}

/** `value` as an `Error` (pg-pool destroys a client released with one). */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** A statement was attempted after the request's scope had been released. */
export class RequestFinishedError extends Error {
  constructor() {
    super('This request has finished; its database connection was already released.');
    this.name = 'RequestFinishedError';
  }
}
