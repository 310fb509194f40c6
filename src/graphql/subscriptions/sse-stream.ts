import { Readable } from 'node:stream';
import type { ExecutionResult, GraphQLError, GraphQLFormattedError } from 'graphql';
import type { FetchAPI } from 'graphql-yoga';
import type { Subscriber } from './subscriber.js';

/** How often an idle stream gets a keep-alive comment (the issue asks for at least every 15 s). */
export const SSE_KEEP_ALIVE_MS = 12_000;

const KEEP_ALIVE = Buffer.from(':\n\n');
const COMPLETE = Buffer.from('event: complete\ndata:\n\n');

/** What the stream needs of the results it sends: graphql-yoga's results may bring their own JSON. */
type StreamedResult = ExecutionResult & { stringify?: (result: ExecutionResult) => string };

/**
 * Each result's `next` event, encoded once: the hub pushes ONE result object to every subscriber
 * of a group (same document, variables and claims), so 900 subscribers of one selection cost one
 * `JSON.stringify` per event, not 900 (graphql-yoga's own SSE stream encodes per subscriber).
 */
const encoded = new WeakMap<ExecutionResult, Buffer>();

/** The bytes of one GraphQL-over-SSE `next` event for `result` (distinct connections mode). */
export function sseNextEvent(result: StreamedResult): Buffer {
  let bytes = encoded.get(result);
  if (!bytes) {
    const json = (result.stringify ?? JSON.stringify)(withoutInternals(result));
    bytes = Buffer.from(`event: next\ndata: ${json}\n\n`);
    encoded.set(result, bytes);
  }
  return bytes;
}

/**
 * graphql-yoga's `jsonStringifyResultWithoutInternals` (not exported by the package), for the
 * results that need it: an error's `http` and `unexpected` extensions and the result's `http`
 * extension are for the server, never the client.
 */
function withoutInternals(result: ExecutionResult): ExecutionResult | Record<string, unknown> {
  if (!result.errors?.length && !result.extensions?.['http']) return result;
  const errors = result.errors?.map((error): GraphQLFormattedError => {
    const formatted = error.toJSON();
    const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions: Object.keys(extensions).length > 0 ? extensions : undefined };
  });
  const { http: _http, ...extensions } = result.extensions ?? {};
  return { ...result, errors, extensions: Object.keys(extensions).length > 0 ? extensions : undefined };
}

/** Every open live SSE stream, kept alive by one timer (not one interval per subscriber). */
const open = new Set<Readable>();
let keepAliveTimer: NodeJS.Timeout | undefined;

function keepAlive(stream: Readable, on: boolean): void {
  if (on) open.add(stream);
  else open.delete(stream);
  if (open.size > 0 && !keepAliveTimer) {
    keepAliveTimer = setInterval(() => {
      // Only where nothing waits unwritten: a stream with a backlog is not idle.
      for (const idle of open) if (idle.readableLength === 0) idle.push(KEEP_ALIVE);
    }, SSE_KEEP_ALIVE_MS).unref();
  } else if (open.size === 0 && keepAliveTimer) {
    clearInterval(keepAliveTimer);
    keepAliveTimer = undefined;
  }
}

/** Where {@link liveSseResponse} reads a subscription's results. */
export interface LiveSseSource {
  /** The hub's stream of the subscription, read directly: a tick's results at once. */
  subscriber: Subscriber;
  /**
   * graphql-yoga's stream over the same results (its plugins' wrappers), never read here: only
   * told when the client leaves, so that whatever it wraps ends too.
   */
  results: AsyncIterable<ExecutionResult>;
  /** graphql-yoga's `maskError` as the server configures it, for the results that carry errors. */
  maskError(error: unknown, message: string): Error;
  /** Told of each error masked (once per result, however many subscribers get it), to log it. */
  onMasked(cause: unknown): void;
  /** The request's signal: aborted when the client leaves, whether or not the body was sent. */
  signal: AbortSignal;
}

/**
 * A subscription's GraphQL-over-SSE response, in place of graphql-yoga's for the live hub's
 * streams (the same bytes: a `:` comment first, `next` events, `complete`). What it does
 * differently is what W6 measured as most of the cost at 1,000 subscribers:
 * - each result is encoded once per group ({@link sseNextEvent});
 * - the results a subscriber gets in one tick go out as ONE chunk, one socket write (yoga's stream
 *   writes two per result);
 * - they are read from the hub's {@link Subscriber} at once ({@link Subscriber.drain}), not one by
 *   one through the promise chain of graphql-yoga's and envelop's stream wrappers. The only such
 *   wrapper on a subscription's results is the error masking, which is applied here instead, with
 *   the server's own `maskError`;
 * - the body is a Node `Readable` that graphql-yoga's Node adapter (`@whatwg-node/server`) pipes
 *   into the response as it is, not a web `ReadableStream` read chunk by chunk through promises;
 * - one timer keeps every stream alive.
 */
export function liveSseResponse(source: LiveSseSource, fetchAPI: FetchAPI): Response {
  const { subscriber } = source;
  let reading = false;
  let wanted = true;
  let resume: (() => void) | undefined;
  const encode = (result: ExecutionResult) => sseNextEvent(result.errors?.length ? masked(result, source) : result);
  const stream = new Readable({
    read() {
      wanted = true;
      resume?.();
      resume = undefined;
      if (!reading) void pump();
    },
    destroy(error, callback) {
      keepAlive(stream, false);
      resume?.();
      // The client left (the adapter destroys the body when the response closes): the stream
      // ends, through graphql-yoga's wrappers, and the hub frees the subscription's place.
      const wrapped = source.results[Symbol.asyncIterator]();
      void Promise.resolve(wrapped.return?.())
        .catch(() => undefined)
        .then(() => subscriber.return())
        .then(() => callback(error));
    },
  });
  async function pump(): Promise<void> {
    reading = true;
    try {
      while (!stream.destroyed) {
        // Backpressure: a client that does not read leaves results queued in its Subscriber, whose
        // bound drops it, rather than here.
        if (!wanted) await new Promise<void>((resolve) => (resume = resolve));
        if (stream.destroyed) return;
        const next = await subscriber.next();
        if (stream.destroyed) return;
        if (next.done) {
          keepAlive(stream, false);
          stream.push(COMPLETE);
          stream.push(null);
          return;
        }
        // The hub pushes a tick's results together: the first woke this, the rest are queued.
        // One chunk, one write: a copy of a few hundred bytes per subscriber costs less than a
        // socket write per result.
        const rest = subscriber.drain();
        const chunk = rest.length === 0 ? encode(next.value) : Buffer.concat([next.value, ...rest].map(encode));
        wanted = stream.push(chunk);
      }
    } catch {
      // Not destroy(error): nothing listens for the body's 'error' (the adapter only pipes it),
      // and an unheard 'error' would end the process. The client sees its stream cut short.
      stream.destroy();
    } finally {
      reading = false;
    }
  }
  // A client that left before its response was sent (while the listener was starting) never
  // reads this body, so the adapter never destroys it: the request's abort does.
  const abandon = () => stream.destroy();
  if (source.signal.aborted) queueMicrotask(abandon);
  else source.signal.addEventListener('abort', abandon, { once: true });
  // Some browsers show nothing of a response until its body begins.
  stream.push(KEEP_ALIVE);
  keepAlive(stream, true);
  // A Node Readable is a body @whatwg-node/fetch's Response takes (and its server adapter pipes);
  // the DOM's BodyInit type does not list it.
  return new fetchAPI.Response(stream as unknown as BodyInit, {
    status: 200,
    headers: { 'Content-Type': 'text/event-stream', Connection: 'keep-alive', 'Cache-Control': 'no-cache', 'Content-Encoding': 'none' },
  });
}

/** Each result's masked copy: one per result the hub shares, so it is masked, logged and encoded once. */
const maskedResults = new WeakMap<ExecutionResult, ExecutionResult>();

/**
 * The result with its errors masked as graphql-yoga masks a stream's (`maskedErrors`), each error
 * it hides told to `onMasked` (graphql-yoga logs them as it masks; this path goes around it).
 */
function masked(result: ExecutionResult, source: Pick<LiveSseSource, 'maskError' | 'onMasked'>): ExecutionResult {
  let copy = maskedResults.get(result);
  if (!copy) {
    copy = {
      ...result,
      errors: result.errors?.map((error) => {
        const hidden = source.maskError(error, 'Unexpected error.');
        if (hidden !== error) source.onMasked(error);
        return hidden as GraphQLError;
      }),
    };
    maskedResults.set(result, copy);
  }
  return copy;
}
