/**
 * The schema the three hand-written peers serve: the part of poolgraph's `schema.graphql` the
 * workloads use, with the same names, types, arguments and defaults, so that the bench sends
 * them poolgraph's own request bodies and expects the same bytes back. Left out: federation,
 * subscriptions, `Item.createdAt` (a `DateTime` scalar), `items`' `minNumber`/`maxNumber` filters,
 * `updateItem` and `deleteItem`.
 */
export const typeDefs = /* GraphQL */ `
  type Query {
    items(first: Int = 20, after: ID): [Item!]!
    item(id: ID!): Item
    categories(first: Int = 20, after: ID): [Category!]!
    category(id: ID!): Category
  }

  type Item {
    id: ID!
    number: Int!
    label: String!
    category: Category
    ownerId: ID
  }

  type Category {
    id: ID!
    name: String!
    itemCount: Int!
    items(first: Int = 20): [Item!]!
  }

  type Mutation {
    createItem(input: CreateItemInput!): Item!
  }

  input CreateItemInput {
    number: Int!
    label: String
    categoryId: ID
  }
`;
