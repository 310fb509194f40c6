/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query ItemNumbers {\n    items {\n      number\n    }\n  }\n": typeof types.ItemNumbersDocument,
    "\n  query CategoriesWithItems($first: Int!, $itemsPerCategory: Int!) {\n    categories(first: $first) {\n      id\n      name\n      itemCount\n      items(first: $itemsPerCategory) {\n        id\n        number\n        label\n      }\n    }\n  }\n": typeof types.CategoriesWithItemsDocument,
    "\n  mutation CreateItem($input: CreateItemInput!) {\n    createItem(input: $input) {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n": typeof types.CreateItemDocument,
    "\n  subscription ItemCreated {\n    itemCreated {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n": typeof types.ItemCreatedDocument,
};
const documents: Documents = {
    "\n  query ItemNumbers {\n    items {\n      number\n    }\n  }\n": types.ItemNumbersDocument,
    "\n  query CategoriesWithItems($first: Int!, $itemsPerCategory: Int!) {\n    categories(first: $first) {\n      id\n      name\n      itemCount\n      items(first: $itemsPerCategory) {\n        id\n        number\n        label\n      }\n    }\n  }\n": types.CategoriesWithItemsDocument,
    "\n  mutation CreateItem($input: CreateItemInput!) {\n    createItem(input: $input) {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n": types.CreateItemDocument,
    "\n  subscription ItemCreated {\n    itemCreated {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n": types.ItemCreatedDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ItemNumbers {\n    items {\n      number\n    }\n  }\n"): typeof import('./graphql.js').ItemNumbersDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CategoriesWithItems($first: Int!, $itemsPerCategory: Int!) {\n    categories(first: $first) {\n      id\n      name\n      itemCount\n      items(first: $itemsPerCategory) {\n        id\n        number\n        label\n      }\n    }\n  }\n"): typeof import('./graphql.js').CategoriesWithItemsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateItem($input: CreateItemInput!) {\n    createItem(input: $input) {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n"): typeof import('./graphql.js').CreateItemDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription ItemCreated {\n    itemCreated {\n      id\n      number\n      label\n      category {\n        name\n      }\n    }\n  }\n"): typeof import('./graphql.js').ItemCreatedDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
