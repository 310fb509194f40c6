import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL, to break connections the way networks do,
 * which `pg_terminate_backend` cannot: the server side of a connection vanishes and the client
 * only finds out when it next sends something.
 */
export interface TcpProxy {
  /** The port clients connect to. */
  port: number;
  /** Replaces `127.0.0.1:<target port>` in a connection string with the proxy. */
  url(databaseUrl: string): string;
  /**
   * Cuts every open connection from the database silently: the proxy closes the upstream side,
   * tells the client nothing, and resets the client's socket when it next sends data.
   */
  breakConnectionsSilently(): void;
  /** Stops accepting connections and drops the open ones, like a stopped server. */
  goDown(): Promise<void>;
  /** Accepts connections again on the same port. */
  comeBack(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free port (or `port`). */
export async function startTcpProxy(targetPort: number, port = 0): Promise<TcpProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket; broken: boolean }>();
  let server: Server | undefined;

  const listen = (onPort: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(targetPort, '127.0.0.1');
        const pair = { client, upstream, broken: false };
        pairs.add(pair);
        client.on('data', (chunk) => {
          if (pair.broken) client.resetAndDestroy();
          else upstream.write(chunk);
        });
        upstream.on('data', (chunk) => {
          if (!pair.broken) client.write(chunk);
        });
        const end = () => {
          pairs.delete(pair);
          if (!pair.broken) client.destroy();
          upstream.destroy();
        };
        client.on('close', () => {
          pairs.delete(pair);
          upstream.destroy();
        });
        client.on('error', () => undefined);
        upstream.on('close', end);
        upstream.on('error', () => undefined);
      });
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        const address = server?.address();
        resolve(typeof address === 'object' && address ? address.port : onPort);
      });
    });

  const actualPort = await listen(port);
  const closeServer = () =>
    new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

  const proxy: TcpProxy = {
    port: actualPort,
    url(databaseUrl) {
      const parsed = new URL(databaseUrl);
      parsed.port = String(actualPort);
      return parsed.toString();
    },
    breakConnectionsSilently() {
      for (const pair of pairs) {
        pair.broken = true;
        pair.upstream.destroy();
      }
    },
    async goDown() {
      const closing = closeServer();
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await closing;
    },
    async comeBack() {
      await listen(actualPort);
    },
    close: () => proxy.goDown(),
  };
  return proxy;
}

/** A TCP port of 127.0.0.1 with nothing listening on it (free a moment ago). */
export async function unusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}
