import { request } from 'node:http';

/**
 * A lean GraphQL-over-SSE client for many subscriptions at once (W6's subscriber process, the
 * idle-subscribers memory test): one `node:http` request per subscription, each on a socket of
 * its own (`agent: false`, no pool limit), its stream parsed as it arrives. Lighter than `fetch`
 * per subscription, which matters when one process holds thousands and reads 100,000s of events
 * a second.
 */

/** What a stream tells its owner; `receivedAt` is `performance.timeOrigin + performance.now()` of the chunk. */
export interface SseHandlers {
  /** The `data:` of each `next` event, unparsed. */
  onNext?(data: string, receivedAt: number): void;
  /** A comment line (`:`), the server's keep-alive. */
  onPing?(): void;
  /** The server ended the stream (a `complete` event, or the end of the body), or it failed. */
  onEnd?(reason: string): void;
}

/** One open subscription. */
export interface SseStream {
  status: number;
  /** Leaves the subscription (destroys its socket). */
  close(): void;
}

/** The wall clock with sub-millisecond resolution, on the same clock as `Date.now()`. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/**
 * POSTs `query` to `url` with `Accept: text/event-stream`; resolves once the response's headers
 * have come (the server has then registered the subscription), rejects on a status other than 200
 * or after `timeoutMs` without them.
 */
export function openSse(url: URL, query: string, headers: Record<string, string>, handlers: SseHandlers, timeoutMs = 30_000): Promise<SseStream> {
  const body = JSON.stringify({ query });
  return new Promise((resolve, reject) => {
    let ended = false;
    const end = (reason: string) => {
      if (ended) return;
      ended = true;
      handlers.onEnd?.(reason);
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        clearTimeout(timer);
        if (res.statusCode !== 200) {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk.slice(0, 500)));
          res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 500)}`)));
          res.on('error', (error) => reject(error));
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const receivedAt = preciseNow();
          buffer += chunk;
          for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            if (block.startsWith(':')) {
              handlers.onPing?.();
              continue;
            }
            if (block.startsWith('event: next\n')) {
              const dataAt = block.indexOf('data: ');
              if (dataAt >= 0) handlers.onNext?.(block.slice(dataAt + 6), receivedAt);
            } else if (block.startsWith('event: complete')) {
              end('complete');
            }
          }
        });
        res.on('end', () => end('end of body'));
        res.on('error', (error) => end(error.message));
        res.socket.on('close', () => end('socket closed'));
        resolve({ status: res.statusCode, close: () => req.destroy() });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no response headers within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
      end(error.message);
    });
    req.end(body);
  });
}

/**
 * Opens `count` subscriptions, `concurrency` at a time (a burst of thousands of connects would
 * overflow the server's listen backlog); `open(i)` opens the i-th. Returns those opened and the
 * first few failures.
 */
export async function openMany(
  count: number,
  concurrency: number,
  open: (index: number) => Promise<SseStream>,
): Promise<{ streams: SseStream[]; failed: number; failures: string[] }> {
  const streams: SseStream[] = [];
  const failures: string[] = [];
  let failed = 0;
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < count; index = next++) {
      try {
        streams.push(await open(index));
      } catch (error) {
        failed += 1;
        if (failures.length < 5) failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { streams, failed, failures };
}
