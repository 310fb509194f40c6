/**
 * A small typed client for poolgraph: the operations in `operations.ts`, typed end to end by
 * GraphQL Code Generator's client preset (`npm run codegen`), sent with a plain `fetch`.
 *
 *   npm run example:client                          # full documents to http://localhost:4000/graphql
 *   npm run example:client -- --hashes-only         # only each document's hash (persisted documents)
 *   npm run example:client -- --url http://host:port/graphql
 *   npm run example:client -- --watch 3             # also subscribe to new items; wait for 3 of them
 *
 * It prints one JSON line with what it got back. With `--watch N` it subscribes to `itemCreated`
 * (GraphQL over SSE) before anything else, so the item it creates is the first it receives, and
 * prints the line once N new items (its own and others') have come.
 */
import { parseArgs } from 'node:util';
import type { TypedDocumentString } from './generated/graphql.js';
import { CategoriesWithItemsQuery, CreateItemMutation, ItemCreatedSubscription, ItemNumbersQuery } from './operations.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://localhost:4000/graphql' },
    'hashes-only': { type: 'boolean', default: false },
    watch: { type: 'string', default: '0' },
  },
});
const watchCount = Number(values.watch);
if (!Number.isInteger(watchCount) || watchCount < 0) throw new Error(`--watch takes a number of items, not ${values.watch}`);

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
  const response = await fetch(values.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: requestBody(document, variables),
  });
  return dataOf(response.status, (await response.json()) as GraphQLResult<Result>);
}

/** One GraphQL result as the server sends it. */
interface GraphQLResult<Result> {
  data?: Result | null;
  errors?: GraphQLErrorBody[];
}

/** The request's JSON body: the full document, or (`--hashes-only`) only its hash. */
function requestBody<Result, Variables>(document: TypedDocumentString<Result, Variables>, variables: Variables): string {
  const hash: unknown = document.__meta__?.['hash'];
  if (values['hashes-only'] && typeof hash !== 'string') {
    throw new Error('this document has no hash: run `npm run codegen`');
  }
  return JSON.stringify(values['hashes-only'] ? { documentId: hash, variables } : { query: document.toString(), variables });
}

/** A result's `data`, or an error with the server's messages and codes. */
function dataOf<Result>(status: number, body: GraphQLResult<Result>): Result {
  if (body.errors?.length || !body.data) {
    const reasons = (body.errors ?? []).map((error) => `${error.message} (${error.extensions?.code ?? 'no code'})`);
    throw new Error(`HTTP ${status}: ${reasons.join('; ') || 'no data'}`);
  }
  return body.data;
}

/**
 * Starts a subscription over GraphQL over SSE (a POST with `Accept: text/event-stream`, the
 * "distinct connections" mode graphql-yoga serves) and returns its results as they come, typed
 * by the document. Resolves once the server has answered (the subscription is then registered);
 * leaving the loop (or `return()`) closes the stream.
 */
async function subscribe<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  variables: Variables,
): Promise<AsyncGenerator<Result, void, undefined>> {
  const controller = new AbortController();
  const response = await fetch(values.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: requestBody(document, variables),
    signal: controller.signal,
  });
  if (!response.ok || !response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await response.text();
    controller.abort();
    throw new Error(`HTTP ${response.status}: not an event stream: ${text.slice(0, 500)}`);
  }
  const reader = response.body.getReader();
  return (async function* results() {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
        // Events end with a blank line; `event:` names them, `data:` lines carry the JSON.
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const event = lines.find((line) => line.startsWith('event:'))?.slice(6).trim();
          const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).replace(/^ /, '')).join('\n');
          if (event === 'complete') return;
          if (event === 'next') yield dataOf(response.status, JSON.parse(data) as GraphQLResult<Result>);
          // Anything else (`:` keep-alive comments) carries nothing.
        }
      }
      throw new Error('the server ended the subscription');
    } finally {
      controller.abort();
    }
  })();
}

// Subscribed first, so that the item created below is among the new items it receives.
const newItems = watchCount > 0 ? await subscribe(ItemCreatedSubscription, {}) : undefined;

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

// The new items the subscription received, each typed by the subscription's document.
const watched: { id: string; number: number; label: string; category: string | null }[] = [];
if (newItems) {
  for await (const { itemCreated } of newItems) {
    watched.push({ id: itemCreated.id, number: itemCreated.number, label: itemCreated.label, category: itemCreated.category?.name ?? null });
    if (watched.length === watchCount) break;
  }
}

process.stdout.write(`${JSON.stringify(watchCount > 0 ? { ...summary, createdId: created.createItem.id, watched } : summary)}\n`);
