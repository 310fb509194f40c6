import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { RequestContext } from '../context.js';
import type { LiveHub } from '../subscriptions/live-hub.js';

/** The transport a subscription came by, as a context field (graphql-ws sets `websocket`). */
export interface LiveTransportContext {
  liveTransport?: string;
}

/**
 * Serves subscription operations from the {@link LiveHub} instead of graphql-js's `subscribe`
 * (which would run each subscriber's selection on its own, with loads of its own): every
 * transport (GraphQL over SSE through graphql-yoga, graphql-ws) goes through the same parse,
 * validation, limits, persisted documents and identity as queries, and only then here.
 */
export function useLiveSubscriptions(hub: LiveHub): Plugin<RequestContext & LiveTransportContext> {
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
      setSubscribeFn((subscribeArgs) => hub.subscribe(subscribeArgs, transport, context.identity));
    },
  };
}

/** The media types graphql-yoga streams a subscription's results in. */
const STREAMING = /text\/event-stream|multipart\/mixed/;

const NOT_STREAMED = new GraphQLError(
  'A subscription streams its results: send it with Accept: text/event-stream (GraphQL over SSE), or over the WebSocket.',
  { extensions: { code: 'BAD_REQUEST', http: { status: 406 } } },
);
