import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { RequestContext } from '../context.js';
import type { LiveHub } from '../subscriptions/live-hub.js';
import { type LiveSseSource, liveSseResponse } from '../subscriptions/sse-stream.js';
import { Subscriber } from '../subscriptions/subscriber.js';

/** The transport a subscription came by, as a context field (graphql-ws sets `websocket`). */
export interface LiveTransportContext {
  liveTransport?: string;
}

/**
 * Serves subscription operations from the {@link LiveHub} instead of graphql-js's `subscribe`
 * (which would run each subscriber's selection on its own, with loads of its own): every
 * transport (GraphQL over SSE through graphql-yoga, graphql-ws) goes through the same parse,
 * validation, limits, persisted documents and identity as queries, and only then here. Over SSE
 * the hub's streams are written by `liveSseResponse` (one encoding per group, one socket write per
 * tick), not graphql-yoga's SSE stream.
 */
export function useLiveSubscriptions(
  hub: LiveHub,
  errors: Pick<LiveSseSource, 'maskError' | 'onMasked'>,
): Plugin<RequestContext & LiveTransportContext> {
  /** The hub's streams of the subscriptions asked for over HTTP, by request. */
  const subscribers = new WeakMap<Request, Subscriber>();
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const context = args.contextValue;
      const transport = context.liveTransport ?? 'sse';
      // Over HTTP a stream needs a response that streams: without one the subscription could never
      // be delivered, or ended, and would hold its place for good.
      if (transport !== 'websocket' && !STREAMING.test(context.request.headers.get('accept') ?? '')) {
        setSubscribeFn(() => ({ errors: [NOT_STREAMED] }));
        return;
      }
      setSubscribeFn(async (subscribeArgs) => {
        const stream = await hub.subscribe(subscribeArgs, transport, context.identity);
        if (transport !== 'websocket' && stream instanceof Subscriber) {
          subscribers.set(context.request, stream);
          // A client that left while the hub started its listener may get no response at all
          // (graphql-yoga drops it), and then nothing would ever end this stream or free its place.
          const { signal } = context.request;
          if (signal.aborted) void stream.return();
          else signal.addEventListener('abort', () => void stream.return(), { once: true });
        }
        return stream;
      });
    },
    // After graphql-yoga's own result processors (its plugins run first): a stream of the hub's
    // asked for as text/event-stream is written by ours. An error result (not a stream) is not.
    onResultProcess({ request, result, setResultProcessor }) {
      const subscriber = subscribers.get(request);
      if (!subscriber || !(Symbol.asyncIterator in result) || !SSE.test(request.headers.get('accept') ?? '')) return;
      const source: LiveSseSource = { subscriber, results: result, ...errors, signal: request.signal };
      setResultProcessor((_result, fetchAPI) => liveSseResponse(source, fetchAPI), 'text/event-stream');
    },
  };
}

/** The media types graphql-yoga streams a subscription's results in. */
const STREAMING = /text\/event-stream|multipart\/mixed/;
const SSE = /text\/event-stream/;

const NOT_STREAMED = new GraphQLError(
  'A subscription streams its results: send it with Accept: text/event-stream (GraphQL over SSE), or over the WebSocket.',
  { extensions: { code: 'BAD_REQUEST', http: { status: 406 } } },
);
