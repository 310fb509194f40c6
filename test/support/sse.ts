/** One GraphQL-over-SSE subscription opened with `fetch`, as a browser's EventSource would. */
export interface SseSubscription {
  /** Results received so far (each `data:` of a `next` event, parsed). */
  results: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] }[];
  /** True once the server ended the stream (a `complete` event or the end of the body). */
  completed: boolean;
  /** Comment lines (`:`) received: the server's keep-alives. */
  pings: number;
  /** The HTTP status of the response. */
  status: number;
  /** Leaves the subscription (aborts the request). */
  close(): void;
}

/**
 * POSTs `query` to `url` with `Accept: text/event-stream` and parses the stream as it comes.
 * Resolves once the response's headers have arrived (the subscription is then registered).
 */
export async function subscribeSse(url: string, query: string, headers: Record<string, string> = {}): Promise<SseSubscription> {
  const controller = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query }),
    signal: controller.signal,
  });
  const subscription: SseSubscription = {
    results: [],
    completed: false,
    pings: 0,
    status: response.status,
    close: () => controller.abort(),
  };
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) subscription.pings += 1;
          const event = /^event: (\w+)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'next' && data) subscription.results.push(JSON.parse(data) as SseSubscription['results'][number]);
          if (event === 'complete') subscription.completed = true;
        }
      }
    } catch {
      // Aborted by close().
    }
    subscription.completed = true;
  })();
  return subscription;
}
