import { getOperationAST, GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { Identity } from '../../auth/identity.js';
import type { RequestContext } from '../context.js';
import type { ConnectionSource } from '../../db/request/connection-source.js';
import { RequestScope, type RequestScopeOptions, type RequestScopeStats } from '../../db/request/request-scope.js';
import { createLoaders, type LoaderBatchObserver } from '../../loaders/create-loaders.js';
import { runsAtMostOneStatement } from '../../db/request/statement-plan.js';
import { type LifecyclePlugin, withRequestLifecycle } from '../../http/request-lifecycle.js';
import { RequestSlot } from '../../http/request-slot.js';

/** Options of {@link useRequestScope}. */
export interface UseRequestScopeOptions {
  /**
   * Where each HTTP request borrows its one connection: the process's pool (`poolSource(pool)`),
   * or a source that may give query operations a connection to a read replica.
   */
  connections: ConnectionSource;
  /** The pool's acquire timeout, quoted in `DATABASE_BUSY` errors. */
  poolTimeoutMs: number;
  /** Called when a request's scope has been released, with what it did with the database. */
  onScopeReleased?: (stats: RequestScopeStats, request: Request) => void;
  /** Where failures that no client can see are logged (a throwing observer, a failed release). */
  logger: Logger;
  /** Whether the server accepts HTTP batches (JSON arrays of operations). @default false */
  batching?: boolean;
  /** Behind a transaction pooler (`DATABASE_POOLER=transaction`): see `RequestScopeOptions.pooler`. */
  pooler?: RequestScopeOptions['pooler'];
  /** See `RequestScopeOptions.preparedStatements`. @default false */
  preparedStatements?: boolean;
  /** Told about every batch the request's loaders dispatch (metrics). */
  onLoaderBatch?: LoaderBatchObserver;
  /**
   * The request's verified caller (`useAuthentication`, which runs first), whose claims go with
   * every transaction of its scope. @default every request is anonymous
   */
  identityOf?: (request: Request) => Identity | undefined;
}

/**
 * Gives every HTTP request one {@link RequestScope} (its connection) and one set of loaders, and
 * puts them in the GraphQL context as `db` and `loaders`.
 *
 * The scope is keyed by the `Request`, not created per operation: graphql-yoga builds a context
 * per operation, and with HTTP batching the operations of one request must still share one
 * connection and one set of loaders. It is created when the first operation's context is built
 * (after parsing and validation, so a rejected document never takes a connection) and released:
 * - when the response is ready (`onResponse`), before it is sent, so a client that has its answer
 *   can count on the connection being back in the pool;
 * - when the request is aborted (the client disconnected), since no response hook runs then; a
 *   scope made after that (a context built while the client was leaving) is released at once.
 * Release waits for statements still in flight, so both paths are safe while resolvers still run.
 */
export function useRequestScope(options: UseRequestScopeOptions): LifecyclePlugin<RequestContext> {
  const scopes = new RequestSlot<{ scope: RequestScope; context: RequestContext }>('request scope');
  /** Set on requests that carry a batch (a JSON array) of operations. */
  const batches = new RequestSlot<true>('request carries a batch');
  /** Set on requests whose client went away before the response was sent. */
  const abandoned = new RequestSlot<true>('request abandoned');

  /** Releases a scope; a failure is logged, never thrown into a response or left unhandled. */
  async function release(scope: RequestScope): Promise<void> {
    try {
      await scope.release();
    } catch (error) {
      options.logger.error({ err: error }, 'releasing a request scope failed');
    }
  }

  // The same for every request; made once.
  const scopeOptions = {
    poolTimeoutMs: options.poolTimeoutMs,
    ...(options.pooler ? { pooler: options.pooler } : {}),
    preparedStatements: options.preparedStatements ?? false,
    onObserverError: (error: unknown) => options.logger.error({ err: error }, 'onScopeReleased threw'),
  };

  function scopeOf(request: Request) {
    let entry = scopes.get(request);
    if (!entry) {
      const identity = options.identityOf?.(request);
      const { onScopeReleased } = options;
      const scope = new RequestScope(options.connections, {
        ...scopeOptions,
        ...(identity ? { claims: identity.claimsJson } : undefined),
        ...(onScopeReleased ? { onRelease: (stats: RequestScopeStats) => onScopeReleased(stats, request) } : {}),
      });
      entry = { scope, context: { db: scope.db, loaders: createLoaders(scope.db, options.onLoaderBatch), identity } };
      scopes.set(request, entry);
      // A context built after the client went away: its statements are refused from the start.
      if (abandoned.get(request)) void release(scope);
    }
    return entry;
  }

  /**
   * Behind a transaction pooler, commits the operation's transaction before the response is
   * built. Returns the error the client must get instead of the data when the COMMIT failed.
   */
  async function finish(request: Request): Promise<GraphQLError | undefined> {
    const scope = scopes.get(request)?.scope;
    if (!scope) return undefined;
    try {
      await scope.finish();
      return undefined;
    } catch (error) {
      return error instanceof GraphQLError ? error : new GraphQLError('Unexpected error.', { originalError: toError(error) });
    }
  }

  async function releaseScopeOf(request: Request): Promise<void> {
    const entry = scopes.get(request);
    if (entry) await release(entry.scope);
  }

  /** The client went away: no response will be sent, so the connection goes back now. */
  function abandon(request: Request): void {
    abandoned.set(request, true);
    void releaseScopeOf(request);
  }

  return withRequestLifecycle<RequestContext>(
    {
      requestAborted: abandon,
      async resultReady(request, result) {
        const failure = await finish(request);
        if (!failure) return result;
        return Array.isArray(result) ? result.map(() => ({ errors: [failure] })) : { errors: [failure] };
      },
      responseReady: releaseScopeOf,
    },
    {
      onContextBuilding({ context, extendContext }) {
        extendContext(scopeOf(context.request).context);
      },
      onRequestParse({ request, requestParser, setRequestParser }) {
        // Only a server that accepts batches can receive one; the others skip this wrapper.
        if (!options.batching || !requestParser) return;
        const parse = requestParser;
        setRequestParser(async (req) => {
          const params = await parse(req);
          if (Array.isArray(params)) batches.set(request, true);
          return params;
        });
      },
      onExecute({ args }) {
        const { request } = args.contextValue;
        const scope = scopes.get(request)?.scope;
        const operation = getOperationAST(args.document, args.operationName);
        // Only a scope with transaction-local settings plans (RequestScope.planStatements): skip the walk.
        if (scope?.plansStatements) {
          scope.planStatements(!batches.get(request) && runsAtMostOneStatement(args.schema, args.document, args.operationName));
        }
        // A mutation may write outside a transaction: never retry its statements on a new connection.
        if (operation?.operation !== 'query') scope?.markWrites();
        // A lone query only reads and may run on a replica; the operations of a batch share one
        // connection, so a batch runs on the primary whatever its operations are.
        else if (!batches.get(request)) scope?.markReadOnly();
      },
    },
  );
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
