import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type DocumentNode, type ExecutionResult, getOperationAST, GraphQLError } from 'graphql';
import type { YogaInitialContext } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { RequestScopeStats } from '../../db/request/request-scope.js';
import { PoolgraphError } from '../../errors.js';
import { type HeaderReader, type LifecyclePlugin, withRequestLifecycle } from '../../http/request-lifecycle.js';
import { RequestSlot } from '../../http/request-slot.js';

/** The header a request id is read from and echoed in. */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * A client's (or a proxy's) request id is kept when it is 1 to 128 characters of this set: enough
 * for UUIDs, ULIDs and trace ids, and nothing that could break a log line or a header.
 */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request id from the `x-request-id` header when acceptable, else a new UUID. */
export function requestIdFrom(header: string | null): string {
  return header !== null && ACCEPTED_REQUEST_ID.test(header) ? header : randomUUID();
}

/** Options of {@link useRequestLog}. */
export interface UseRequestLogOptions {
  logger: Logger;
  /** Requests to it are logged at `info`; others (`/health`, `/ready`, `/metrics`) at `debug`. */
  graphqlEndpoint: string;
}

/** {@link useRequestLog}'s plugin, which also takes each request's database stats. */
export type RequestLogPlugin = LifecyclePlugin<YogaInitialContext> & {
  /** Adds what `request` did with the database to its line (call it from `onScopeReleased`). */
  recordScope(request: Request, stats: RequestScopeStats): void;
  /** Adds the caller's `sub` to the line (never the token: the line is read by operators). */
  recordCaller(request: Request, subject: string | undefined): void;
};

/** What one request's line collects until it is written. */
interface Entry {
  id: string;
  started: number;
  method: string;
  path: string;
  operationNames: string[];
  errorCodes: string[];
  /** A GraphQL context was built, so a scope exists and its stats will come. */
  scopeExpected: boolean;
  stats?: RequestScopeStats;
  /** The verified token's `sub`, when the request carried one. */
  subject?: string | undefined;
  status?: number;
  aborted: boolean;
  finished: boolean;
  written: boolean;
}

/**
 * One log line per request, and the request id.
 *
 * The id comes from `x-request-id` when the client (or a proxy in front) sent an acceptable one,
 * else it is generated; the response carries it back in `x-request-id`. The line says what an
 * operator asks first: `requestId`, `method`, `path`, `status`, `operationName`, `durationMs`,
 * `statements`, `connection` (`taken`/`none`), `acquireWaitMs` and `heldMs` when one was taken,
 * and the `errors` codes sent. It is written once the response is ready and the request's
 * connection is back in the pool (or once an aborted request's connection is), so the counts
 * are final.
 *
 * Errors clients receive masked (`Unexpected error.`), and coded database errors with a cause,
 * are logged here with their cause and the request id: this is the one place that sees every
 * error of a response together with its request. Use `maskErrorKeepingCause` (src/errors.ts) as the
 * server's `maskError`, so that a masked error still carries what it hides.
 */
export function useRequestLog(options: UseRequestLogOptions): RequestLogPlugin {
  const { logger } = options;
  const entries = new RequestSlot<Entry>('request log entry');

  function write(entry: Entry): void {
    if (entry.written || !entry.finished || (entry.scopeExpected && !entry.stats)) return;
    entry.written = true;
    const level = entry.path === options.graphqlEndpoint ? 'info' : 'debug';
    // At LOG_LEVEL=warn and above no request line is written: do not build one either.
    if (!logger.isLevelEnabled(level)) return;
    const { stats } = entry;
    const taken = (stats?.connectionsTaken ?? 0) > 0;
    const line = {
      requestId: entry.id,
      method: entry.method,
      path: entry.path,
      status: entry.status,
      operationName: entry.operationNames.length > 0 ? entry.operationNames.join(',') : null,
      ...(entry.subject !== undefined ? { sub: entry.subject } : {}),
      durationMs: round(performance.now() - entry.started),
      statements: stats?.statements ?? 0,
      connection: taken ? 'taken' : 'none',
      ...(stats && (taken || stats.acquireTimedOut) ? { acquireWaitMs: round(stats.acquireWaitMs) } : {}),
      ...(stats && taken ? { heldMs: round(stats.heldMs) } : {}),
      ...(entry.errorCodes.length > 0 ? { errors: entry.errorCodes } : {}),
      ...(entry.aborted ? { aborted: true } : {}),
    };
    logger[level](line, entry.aborted ? 'request aborted' : 'request');
  }

  function logCauses(entry: Entry, result: ExecutionResult): void {
    for (const error of result.errors ?? []) {
      const code = error.extensions?.['code'];
      entry.errorCodes.push(typeof code === 'string' ? code : 'NONE');
      const path = error.path?.join('.');
      if (error.extensions?.['unexpected'] === true) {
        const cause = causeOf(error) ?? error.originalError ?? error;
        logger.error({ requestId: entry.id, err: cause, path }, 'unexpected error (the client got "Unexpected error.")');
        continue;
      }
      const original = error.originalError ?? error;
      if (original instanceof PoolgraphError && original.cause !== undefined) {
        logger.warn({ requestId: entry.id, err: original.cause, code, path }, original.message);
      }
    }
  }

  /** The request's entry, created at its first hook (yoga's `/health` answers before ours run). */
  function entryOf(request: Request, path?: string, arrivedAt?: number, headers: HeaderReader = request.headers): Entry {
    let entry = entries.get(request);
    if (entry) return entry;
    const created: Entry = {
      id: requestIdFrom(headers.get(REQUEST_ID_HEADER)),
      started: arrivedAt ?? performance.now(),
      method: request.method,
      path: path ?? new URL(request.url, 'http://localhost').pathname,
      operationNames: [],
      errorCodes: [],
      scopeExpected: false,
      aborted: false,
      finished: false,
      written: false,
    };
    entries.set(request, created);
    return created;
  }

  /** The client went away before its response was sent: the line is written now, marked so. */
  function recordAbort(request: Request): void {
    const entry = entries.get(request);
    if (!entry || entry.finished) return;
    entry.aborted = true;
    entry.finished = true;
    write(entry);
  }

  /** Adds the operation of a document that parsed to its request's line (`onParse`'s after-hook). */
  function recordOperationName({ context, result }: { context: YogaInitialContext; result: unknown }): void {
    const entry = entries.get(context.request);
    if (entry && isDocument(result)) {
      entry.operationNames.push(getOperationAST(result, context.params?.operationName)?.name?.value ?? 'Anonymous');
    }
  }

  function recordResult(request: Request, result: ExecutionResult | ExecutionResult[]): void {
    const entry = entries.get(request);
    if (!entry) return;
    for (const single of Array.isArray(result) ? result : [result]) logCauses(entry, single);
  }

  /** Records the response's status and returns the request id it must carry. */
  function recordResponse(request: Request, status: number): string {
    const entry = entryOf(request);
    entry.status = status;
    entry.finished = true;
    write(entry);
    return entry.id;
  }

  const plugin = withRequestLifecycle<YogaInitialContext>(
    {
      requestStarted(request, arrivedAt, path, headers) {
        entryOf(request, path, arrivedAt, headers);
      },
      requestAborted: recordAbort,
      resultReady(request, result) {
        recordResult(request, result);
        return result;
      },
      responseReady(request, status, headers) {
        headers[REQUEST_ID_HEADER] = recordResponse(request, status);
      },
    },
    {
      // Every document that parsed, also one graphql-yoga then refuses before validation (an
      // operationName the document lacks, a mutation by GET); one callback for every request.
      onParse() {
        return recordOperationName;
      },
      onContextBuilding({ context }) {
        const entry = entries.get(context.request);
        if (entry) entry.scopeExpected = true;
      },
    },
  );
  return Object.assign(plugin, {
    recordScope(request: Request, stats: RequestScopeStats) {
      const entry = entries.get(request);
      if (!entry) return;
      entry.stats = stats;
      write(entry);
    },
    recordCaller(request: Request, subject: string | undefined) {
      const entry = entries.get(request);
      if (entry) entry.subject = subject;
    },
  });
}

/** What a masked error hides: the resolver's own error rather than graphql-js's wrapper. */
function causeOf(error: GraphQLError): unknown {
  const cause: unknown = Object.getOwnPropertyDescriptor(error, 'cause')?.value;
  return cause instanceof GraphQLError ? (cause.originalError ?? cause) : cause;
}

function isDocument(result: unknown): result is DocumentNode {
  return typeof result === 'object' && result !== null && (result as { kind?: unknown }).kind === 'Document';
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
