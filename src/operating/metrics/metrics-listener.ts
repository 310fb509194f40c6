import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * A Node request listener that serves `registry` at `GET /metrics` (HEAD too) and 404 otherwise:
 * the whole HTTP surface of `METRICS_PORT`, which keeps metrics off the public port.
 */
export function createMetricsListener(
  registry: Registry,
  path = '/metrics',
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== path || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`Not found: try GET ${path}\n`);
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`collecting metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  };
}
