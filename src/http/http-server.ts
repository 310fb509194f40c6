import { createServer, type IncomingMessage, maxHeaderSize, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCode } from '../errors.js';

/** A Node HTTP server that can stop gracefully: finish what it accepted, refuse the rest. */
export interface DrainableHttpServer {
  /** The Node server. */
  server: Server;
  /**
   * Listens on `port` (0: a free one) and `host`; resolves with the port, rejects on EADDRINUSE
   * with a message naming `variable`, the setting that chose the port.
   */
  listen(port: number, host: string | undefined, variable?: string): Promise<number>;
  /**
   * Stops accepting connections and resolves once the requests in flight are answered. Responses
   * from then on carry `Connection: close`, so keep-alive clients cannot keep the server busy
   * with new requests; idle sockets close at once. What is still open after `timeoutMs`, or when
   * `cut` is called, is closed.
   */
  drain(timeoutMs: number): { done: Promise<void>; cut(): void };
}

/** Wraps `listener` (graphql-yoga's app) in a {@link DrainableHttpServer}. */
export function createDrainableHttpServer(
  listener: (req: IncomingMessage, res: ServerResponse) => unknown,
): DrainableHttpServer {
  let draining = false;
  const server = createServer((req, res) => {
    if (draining) res.setHeader('connection', 'close');
    void listener(req, res);
  });
  server.on('clientError', answerClientError);
  return {
    server,
    listen(port, host, variable = 'PORT') {
      return new Promise((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException) =>
          reject(
            error.code === 'EADDRINUSE'
              ? new Error(`port ${port} is already in use: stop what runs there, or set ${variable} to another port`)
              : error,
          );
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    drain(timeoutMs) {
      draining = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const cut = () => server.closeAllConnections();
      const timer = setTimeout(cut, timeoutMs);
      return { done: done.finally(() => clearTimeout(timer)), cut };
    },
  };
}

/** Node's answers to a request it could not parse (what it sends with no `clientError` listener). */
const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * Answers a request Node could not parse as Node would, except that headers over Node's limit
 * (`maxHeaderSize`, 16 KB: a 100 KB `Authorization` header, say) get a GraphQL error a client can
 * branch on (`REQUEST_HEADERS_TOO_LARGE`) with the 431, not an empty body.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request';
  if (error.code !== 'HPE_HEADER_OVERFLOW') {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    return;
  }
  const body = JSON.stringify({
    errors: [
      {
        message: `The request's headers are larger than this server accepts (${maxHeaderSize} bytes).`,
        extensions: { code: ErrorCode.RequestHeadersTooLarge },
      },
    ],
  });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
