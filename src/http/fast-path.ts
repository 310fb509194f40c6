import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ExecutionResult } from 'graphql';
import { type GraphQLParams, isAsyncIterable, processRegularResult, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { HeaderReader, RequestLifecycle } from './request-lifecycle.js';
import {
  addDefaultCorsHeaders,
  JSON_CONTENT_TYPE,
  type RegularMediaType,
  regularMediaType,
  thrownAsResult,
  UNEXPECTED_ERROR_BODY,
} from './yoga-http-behaviour.js';

/** What graphql-yoga's Node adapter passes as the server context (see `ServerContext` in server-options.ts). */
export interface NodeServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
}

/** Options of {@link createFastPath}. */
export interface FastPathOptions<Context extends object> {
  /** The app: it runs every operation, and every request the fast path does not take. */
  yoga: YogaServerInstance<NodeServerContext, Context>;
  /** The largest body the fast path reads; larger ones go to graphql-yoga, which refuses them. */
  maxBodyBytes: number;
  /** The plugins' request lifecycles, in plugin order (see {@link RequestLifecycle}). */
  hooks: readonly RequestLifecycle[];
  /** Where an unexpected failure of the fast path itself is logged. */
  logger: Logger;
  /** False passes every request on to graphql-yoga (to compare the two). @default true */
  enabled?: boolean;
}

/** A Node request listener: the fast path, falling back to graphql-yoga. */
export interface FastPathListener {
  (req: IncomingMessage, res: ServerResponse): void;
  /** How many requests the fast path answered, and how many it passed on to graphql-yoga. */
  readonly counts: { answered: number; passedOn: number };
}


/** A result as @envelop/graphql-jit returns it: with the serialiser graphql-yoga then uses. */
interface StringifiableResult extends ExecutionResult {
  stringify?: (result: ExecutionResult) => string;
}


const CONTENT_LENGTH = /^[1-9]\d*$/;

/**
 * The common request — `POST` of one operation as a JSON object to the GraphQL endpoint — answered
 * without graphql-yoga's HTTP layer, the largest cost of `{ items { number } }` in the server
 * (docs/benchmarks-profile.md): the conversion of Node's request and response to fetch
 * `Request`/`Response` objects and back, its request parsing and its chain of promise helpers.
 * Every other request (GET, GraphiQL, `/health`, `/ready`, `/metrics`, batches, other content
 * types, chunked or oversized bodies, bodies that are not a JSON object, streaming responses) goes
 * to graphql-yoga unchanged.
 *
 * It is not a second GraphQL server: the operation runs through graphql-yoga's own
 * `getResultForParams` (parameter checks, persisted documents, the parse and validation caches,
 * the limits, the request scope, execution with graphql-jit, error masking, the partial-data
 * status) and the response is built by graphql-yoga's `processRegularResult`, with its status
 * codes, media type negotiation and default CORS headers (what is copied of graphql-yoga is in
 * ./yoga-http-behaviour.ts); a result without errors or extensions (neither can set a status or a
 * header) is written as that function would answer it, 200 and its JSON, without the fetch
 * `Response` it builds to say so. What the fast path does itself is what graphql-yoga's HTTP layer
 * did around that, and it calls each plugin's {@link RequestLifecycle} at the points where
 * graphql-yoga calls the hooks derived from it (`onRequest`, `onResultProcess`, `onResponse`, and
 * an `abort` listener), so the request log, the metrics and the release of the request's
 * connection happen on both paths alike. The test suite runs against this listener, and
 * test/http/fast-path.test.ts compares its answers with graphql-yoga's byte for byte.
 */
export function createFastPath<Context extends object>(options: FastPathOptions<Context>): FastPathListener {
  const { yoga, hooks, logger } = options;
  const endpoint = yoga.graphqlEndpoint;
  const requestUrl = `http://localhost${endpoint}`;
  const counts = { answered: 0, passedOn: 0 };
  const mediaTypes = new Map<string, RegularMediaType | undefined>();
  const FastPathRequest = abortableRequestClass(yoga.fetchAPI.Request);

  /** The response's media type when the fast path can take the request, from its headers alone. */
  function eligible(req: IncomingMessage): RegularMediaType | undefined {
    if (options.enabled === false) return undefined;
    if (req.method !== 'POST' || req.url !== endpoint) return undefined;
    const contentType = req.headers['content-type'];
    const contentLength = req.headers['content-length'];
    if (contentType === undefined || !JSON_CONTENT_TYPE.test(contentType)) return undefined;
    // A body of known length only: graphql-yoga counts chunked bodies as they arrive.
    if (contentLength === undefined || !CONTENT_LENGTH.test(contentLength) || req.headers['transfer-encoding'] !== undefined) {
      return undefined;
    }
    if (Number(contentLength) > options.maxBodyBytes) return undefined;
    const accept = req.headers.accept ?? '';
    let mediaType = mediaTypes.get(accept);
    if (mediaType === undefined && !mediaTypes.has(accept)) {
      mediaType = regularMediaType(accept);
      // Clients send a handful of distinct Accept headers; never keep more than that.
      if (mediaTypes.size < 100) mediaTypes.set(accept, mediaType);
    }
    return mediaType;
  }

  function passOn(req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
    counts.passedOn += 1;
    // graphql-yoga's Node adapter reads a body already read from `req.body` (as it does behind
    // frameworks that parse bodies) instead of the request stream, which is consumed by now.
    if (body) Object.defineProperty(req, 'body', { value: body, configurable: true });
    void yoga.requestListener(req, res);
  }

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    params: GraphQLParams,
    mediaType: RegularMediaType,
    arrivedAt: number,
  ): Promise<void> {
    counts.answered += 1;
    const request = new FastPathRequest(requestUrl, {
      method: 'POST',
      // Node's header object, as graphql-yoga's own adapter passes it (its Headers reads it lazily).
      headers: req.headers as Record<string, string>,
    });
    // As graphql-yoga's adapter: the request is aborted when its connection closes unanswered.
    const onClose = () => {
      if (res.writableFinished) return;
      request.abort();
      for (const hook of hooks) {
        try {
          hook.requestAborted?.(request);
        } catch (error) {
          logger.error({ err: error }, 'an abort hook of the fast path failed');
        }
      }
    };
    res.once('close', onClose);
    const headers = new NodeHeaders(req.headers);
    for (const hook of hooks) hook.requestStarted?.(request, arrivedAt, endpoint, headers);
    let status = 500;
    let responseHeaders: Record<string, string> = {};
    let body = UNEXPECTED_ERROR_BODY;
    try {
      let result: ExecutionResult = await resultFor(params, request, { req, res });
      // One operation in, one result out: the hooks return what they were given, or a replacement.
      for (const hook of hooks) if (hook.resultReady) result = (await hook.resultReady(request, result)) as ExecutionResult;
      if (result.errors === undefined && result.extensions === undefined) {
        // What processRegularResult answers for a result without errors or extensions (neither
        // can set a status or a header), without the fetch Response it builds to say it.
        status = 200;
        responseHeaders['content-type'] = `${mediaType}; charset=utf-8`;
        body = ((result as StringifiableResult).stringify ?? JSON.stringify)(result);
      } else {
        const response = processRegularResult(result, yoga.fetchAPI, mediaType);
        body = await response.text();
        status = response.status;
        for (const [name, value] of response.headers) responseHeaders[name.toLowerCase()] = value;
      }
    } catch (error) {
      logger.error({ err: error }, 'the fast path failed to answer a request');
      status = 500;
      responseHeaders = { 'content-type': `${mediaType}; charset=utf-8` };
      body = UNEXPECTED_ERROR_BODY;
    } finally {
      for (const hook of hooks) {
        try {
          await hook.responseReady?.(request, status, responseHeaders);
        } catch (error) {
          logger.error({ err: error }, 'a response hook of the fast path failed');
        }
      }
    }
    addDefaultCorsHeaders(request, req.headers.origin, responseHeaders);
    responseHeaders['content-length'] = String(Buffer.byteLength(body));
    res.removeListener('close', onClose);
    if (res.destroyed) return;
    res.writeHead(status, responseHeaders);
    res.end(body);
  }

  /** graphql-yoga's result for one operation; what it throws becomes errors, as in its `handle`. */
  async function resultFor(params: GraphQLParams, request: Request, context: NodeServerContext): Promise<ExecutionResult> {
    try {
      const result = await yoga.getResultForParams({ params, request }, context);
      // Only subscriptions, @defer and @stream stream, and the schema has none of them.
      if (isAsyncIterable(result)) throw new Error('a streaming result reached the fast path');
      if (!result) throw new Error('graphql-yoga produced no result');
      return result;
    } catch (error) {
      return thrownAsResult(error);
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const arrivedAt = performance.now();
    const mediaType = eligible(req);
    if (mediaType === undefined) {
      passOn(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const params = jsonObject(body);
      // Batches (arrays), invalid JSON and other values: graphql-yoga has the answers.
      if (params === undefined) {
        passOn(req, res, body);
        return;
      }
      answer(req, res, params, mediaType, arrivedAt).catch((error: unknown) => {
        logger.error({ err: error }, 'the fast path failed to answer a request');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  };
  return Object.assign(listener, { counts });
}

/** A fetch `Request` the fast path aborts itself, whose `signal` is made only if it is read. */
interface AbortableRequest extends Request {
  /** Aborts `signal` (now, or when it is first read). */
  abort(): void;
}

/**
 * `Base` (graphql-yoga's `Request` class) with a `signal` made at its first read rather than
 * passed in: an `AbortController` and its signal are costly to create, and the fast path's
 * own hooks learn of an abort from `RequestLifecycle.requestAborted`, so a request whose signal
 * nothing reads never makes one. A signal read after the abort is already aborted.
 */
function abortableRequestClass(Base: typeof Request): new (url: string, init: RequestInit) => AbortableRequest {
  class FastPathRequest extends Base {
    #controller: AbortController | undefined;
    #aborted = false;

    abort(): void {
      this.#aborted = true;
      this.#controller?.abort();
    }

    override get signal(): AbortSignal {
      if (!this.#controller) {
        this.#controller = new AbortController();
        if (this.#aborted) this.#controller.abort();
      }
      return this.#controller.signal;
    }
  }
  return FastPathRequest;
}

/** The body as a JSON object (graphql-yoga checks its fields), or undefined for anything else. */
function jsonObject(body: Buffer): GraphQLParams | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as GraphQLParams) : undefined;
}

/**
 * Node's parsed header object read as a {@link HeaderReader}: a name missing from a fetch
 * `Headers` made from it costs a scan of every header, a property lookup here does not. Node
 * joins a repeated header with ", ", as fetch's `Headers` does.
 */
class NodeHeaders implements HeaderReader {
  readonly #headers: IncomingMessage['headers'];

  constructor(headers: IncomingMessage['headers']) {
    this.#headers = headers;
  }

  get(name: string): string | null {
    const value = this.#headers[name];
    return Array.isArray(value) ? value.join(', ') : (value ?? null);
  }
}
