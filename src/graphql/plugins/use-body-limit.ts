import { createGraphQLError, type Plugin } from 'graphql-yoga';

/** Only a single non-negative integer is a valid Content-Length (a comma list smells of smuggling). */
const CONTENT_LENGTH = /^\d+$/;

function tooLarge() {
  return createGraphQLError('Request body too large', {
    extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' },
  });
}

/**
 * Refuses request bodies over `maxBytes` with 413 `REQUEST_ENTITY_TOO_LARGE`, as graphql-yoga's
 * own `maxRequestBodySize` does (same checks, same error), but without its cost on every request:
 * Yoga pipes every body through a byte-counting stream, one of the larger costs of
 * `{ items { number } }` (docs/benchmarks-profile.md). A body with a valid `Content-Length` needs
 * no stream: the length is checked up front, and Node's HTTP parser never delivers more bytes than
 * it announces. Only a body without one (chunked) is counted while it is read, and cut off as soon
 * as it passes the limit.
 */
export function useBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const contentLength = request.headers.get('content-length');
      if (contentLength !== null) {
        if (!CONTENT_LENGTH.test(contentLength)) {
          throw createGraphQLError('Content-Length header is invalid.', {
            extensions: { http: { status: 400 }, code: 'BAD_REQUEST' },
          });
        }
        if (Number(contentLength) > maxBytes) throw tooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      const parse = requestParser;
      setRequestParser((req) => parse(countingBody(req, maxBytes, fetchAPI)));
    },
  };
}

/** `request` with a body that errors with 413 once more than `maxBytes` have been read. */
function countingBody(request: Request, maxBytes: number, fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream }): Request {
  const body = request.body;
  if (!body) return request;
  // A native ReadableStream only pipes into a native TransformStream (graphql-yoga #4583).
  const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let bytesRead = 0;
  const limited = body.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytesRead += chunk.byteLength;
        if (bytesRead > maxBytes) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: limited,
    duplex: 'half',
  } as RequestInit);
}
