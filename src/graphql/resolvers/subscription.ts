import type { SubscriptionResolvers } from '../../generated/resolvers-types.js';
import type { ItemRow } from '../../db/schema.js';

/**
 * `type Subscription`. Subscriptions are served by the live hub (src/graphql/subscriptions/),
 * which graphql-yoga calls instead of graphql-js's subscribe: `subscribe` here never runs. The hub
 * executes the subscription's document once per event with the event's payload as the root value
 * (the item's row, or a deleted item's id), which `resolve` hands on.
 */
export const Subscription: SubscriptionResolvers = {
  itemCreated: { subscribe: servedByTheHub, resolve: (row: ItemRow) => row },
  itemUpdated: { subscribe: servedByTheHub, resolve: (row: ItemRow) => row },
  itemDeleted: { subscribe: servedByTheHub, resolve: (id: string) => id },
};

function servedByTheHub(): never {
  throw new Error('subscriptions are served by the live hub (useLiveSubscriptions)');
}
