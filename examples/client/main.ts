/**
 * A small typed client for poolgraph: the operations in `operations.ts`, typed end to end by
 * GraphQL Code Generator's client preset (`npm run codegen`), sent with a plain `fetch`.
 *
 *   npm run example:client                          # full documents to http://localhost:4000/graphql
 *   npm run example:client -- --hashes-only         # only each document's hash (persisted documents)
 *   npm run example:client -- --url http://host:port/graphql
 *
 * It prints one JSON line with what it got back.
 */
import { parseArgs } from 'node:util';
import type { TypedDocumentString } from './generated/graphql.js';
import { CategoriesWithItemsQuery, CreateItemMutation, ItemNumbersQuery } from './operations.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:4000/graphql' },
    'hashes-only': { type: 'boolean', default: false },
  },
});

/** A GraphQL error as the server reports it. */
interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string };
}

/**
 * Runs one operation and returns its typed `data`; the result type comes from the document.
 * With `hashesOnly`, the request carries only the document's hash (`documentId`), which the
 * server looks up in the persisted-documents manifest that codegen wrote.
 */
async function execute<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  variables: Variables,
): Promise<Result> {
  const hash: unknown = document.__meta__?.['hash'];
  if (values['hashes-only'] && typeof hash !== 'string') {
    throw new Error('this document has no hash: run `npm run codegen`');
  }
  const response = await fetch(values.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify(
      values['hashes-only'] ? { documentId: hash, variables } : { query: document.toString(), variables },
    ),
  });
  const body = (await response.json()) as { data?: Result | null; errors?: GraphQLErrorBody[] };
  if (body.errors?.length || !body.data) {
    const reasons = (body.errors ?? []).map((error) => `${error.message} (${error.extensions?.code ?? 'no code'})`);
    throw new Error(`HTTP ${response.status}: ${reasons.join('; ') || 'no data'}`);
  }
  return body.data;
}

const items = await execute(ItemNumbersQuery, {});
const nested = await execute(CategoriesWithItemsQuery, { first: 2, itemsPerCategory: 3 });
const created = await execute(CreateItemMutation, {
  input: { number: 7, label: 'from the example client', categoryId: nested.categories[0]?.id ?? null },
});

// Every property read below is typed by the generated result types.
const summary = {
  itemNumbers: items.items.map((item) => item.number),
  categories: nested.categories.map((category) => ({
    name: category.name,
    itemCount: category.itemCount,
    itemNumbers: category.items.map((item) => item.number),
  })),
  created: {
    number: created.createItem.number,
    label: created.createItem.label,
    category: created.createItem.category?.name ?? null,
  },
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
