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
      setSubscribeFn((subscribeArgs) => hub.subscribe(subscribeArgs, context.liveTransport ?? 'sse', context.identity));
    },
  };
}
