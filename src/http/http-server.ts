import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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
