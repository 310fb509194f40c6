import { graphql } from './generated/index.js';

/** W1: the first 20 item numbers. */
export const ItemNumbersQuery = graphql(/* GraphQL */ `
  query ItemNumbers {
    items {
      number
    }
  }
`);

/** A nested read: categories with their counts and first items. */
export const CategoriesWithItemsQuery = graphql(/* GraphQL */ `
  query CategoriesWithItems($first: Int!, $itemsPerCategory: Int!) {
    categories(first: $first) {
      id
      name
      itemCount
      items(first: $itemsPerCategory) {
        id
        number
        label
      }
    }
  }
`);

/** A write: creates an item and reads it back with its category. */
export const CreateItemMutation = graphql(/* GraphQL */ `
  mutation CreateItem($input: CreateItemInput!) {
    createItem(input: $input) {
      id
      number
      label
      category {
        name
      }
    }
  }
`);

/** A subscription: every new item, pushed as it is created (GraphQL over SSE). */
export const ItemCreatedSubscription = graphql(/* GraphQL */ `
  subscription ItemCreated {
    itemCreated {
      id
      number
      label
      category {
        name
      }
    }
  }
`);
