import { request as httpRequest } from 'node:http';
import { generate } from '@graphql-codegen/cli';
import type { Types } from '@graphql-codegen/plugin-helpers';
import { getIntrospectionQuery } from 'graphql';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/app.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { eventually, startTestServer, TEST_POOL, type TestServer, useTestEnvironment } from '../support/server.js';
import { W1, W2, W3 } from '../support/workloads.js';

const t = useTestEnvironment();
const BATCH_LIMIT = 10;
/** A second server on the same database with HTTP batching on, for the batch-limit case. */
let batching: TestServer;

beforeAll(async () => {
  batching = await startTestServer(t.database.url, {}, { batchLimit: BATCH_LIMIT });
});

afterAll(async () => {
  await batching?.close();
});

/** Nothing checked out, nobody waiting, no backend of ours idle in a transaction. */
async function expectEverythingReleased(server: TestServer) {
  const { pool } = server.server;
  expect(await eventually(() => pool.idleCount === pool.totalCount, 5_000)).toBe(true);
  expect(pool.waitingCount).toBe(0);
}

afterEach(async () => {
  await expectEverythingReleased(t.server);
  await expectEverythingReleased(batching);
  expect((await t.database.appConnections()).idleInTransaction).toBe(0);
  // The server still serves.
  const { body } = await t.server.graphql(W1);
  expect(body.data?.items).toHaveLength(20);
});

/** The client sees a message and a code, never a stack trace or the server's SQL. */
function expectNoLeak(text: string) {
  expect(text).not.toMatch(/\bat .*:\d+:\d+|node_modules|\.ts:\d+|\bselect\b|insert into|\bpg_|postgres|sqlstate/i);
}

/** A raw HTTP exchange, for requests `t.server.graphql` cannot make (bodies that are not JSON, other methods). */
async function send(init: { method?: string; body?: BodyInit; headers?: Record<string, string>; search?: string }) {
  const response = await fetch(`${t.server.url}${init.search ?? ''}`, {
    method: init.method ?? 'POST',
    headers: { accept: 'application/json', ...init.headers },
    body: init.body ?? null,
  });
  const text = await response.text();
  expectNoLeak(text);
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as ErrorBody };
}

interface ErrorBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** POSTs an operation, checks nothing leaked, and returns the response. */
async function graphql(query: string, variables?: Record<string, unknown>, init?: RequestInit) {
  const response = await t.server.graphql(query, variables, init);
  expectNoLeak(JSON.stringify(response.body.errors ?? []));
  return response;
}

const codesOf = (body: ErrorBody) => body.errors?.map((error) => error.extensions?.code);

/** Runs `action` and expects the pool to have handed out no connection meanwhile. */
async function takesNoConnection<T>(action: () => Promise<T>, server: TestServer = t.server): Promise<T> {
  const acquired = server.acquired.length;
  const result = await action();
  expect(server.acquired.length).toBe(acquired);
  return result;
}

async function itemCount(): Promise<number> {
  const [row] = await t.database.query<{ count: number }>('select count(*)::int as count from items');
  return row?.count ?? 0;
}

describe('bodies that are not a GraphQL request', () => {
  it('a body that is not JSON gets 400 BAD_REQUEST', async () => {
    const response = await takesNoConnection(() =>
      send({ body: '{"query": "{ items { id } }"', headers: { 'content-type': 'application/json' } }),
    );
    expect(response.status).toBe(400);
    expect(codesOf(response.json())).toEqual(['BAD_REQUEST']);
  });

  it.each(['"hello"', '42', 'null', 'true'])('JSON that is not an object (%s) gets 400 BAD_REQUEST', async (body) => {
    const response = await takesNoConnection(() => send({ body, headers: { 'content-type': 'application/json' } }));
    expect(response.status).toBe(400);
    expect(codesOf(response.json())).toEqual(['BAD_REQUEST']);
  });

  it('a JSON array (a batch) gets 400 BAD_REQUEST while batching is off', async () => {
    const response = await send({ body: '[{"query":"{ __typename }"}]', headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(400);
    expect(codesOf(response.json())).toEqual(['BAD_REQUEST']);
  });

  it('a content type the server does not read gets 415', async () => {
    const response = await takesNoConnection(() =>
      send({ body: '<query>{ items { id } }</query>', headers: { 'content-type': 'application/xml' } }),
    );
    expect(response.status).toBe(415);
  });

  const mutation = '{"query":"mutation { deleteItem(id: \\"1\\") }"}';
  it.each([
    ['text/plain', mutation],
    ['application/x-www-form-urlencoded', 'query=mutation%20%7B%20deleteItem(id%3A%20%221%22)%20%7D'],
    // A byte body, so that fetch adds no content type of its own (it sends text/plain for a string).
    ['none', Buffer.from(mutation)],
  ])('a POST a browser sends cross-site without a preflight (content type %s) gets 403 (CSRF)', async (contentType, body) => {
    const before = await itemCount();
    const response = await takesNoConnection(() =>
      send({ body, headers: contentType === 'none' ? {} : { 'content-type': contentType } }),
    );
    expect(response.status).toBe(403);
    expect(await itemCount()).toBe(before);
  });

  it('the same form POST runs when it carries a CSRF header, which a cross-site form cannot set', async () => {
    const response = await send({
      body: `query=${encodeURIComponent('{ items(first: 1) { number } }')}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-graphql-yoga-csrf': '1' },
    });
    expect(response.status).toBe(200);
    expect(response.json().data).toEqual({ items: [{ number: 1 }] });
  });

  it('a GET carrying a mutation gets 405 and changes nothing', async () => {
    const before = await itemCount();
    const search = `?query=${encodeURIComponent('mutation { deleteItem(id: "1") }')}`;
    const response = await takesNoConnection(() =>
      send({ method: 'GET', search, headers: { 'x-graphql-yoga-csrf': '1' } }),
    );
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(codesOf(response.json())).toEqual(['BAD_REQUEST']);
    // Without the CSRF header it is refused even earlier.
    expect((await send({ method: 'GET', search })).status).toBe(403);
    expect(await itemCount()).toBe(before);
  });

  it(`an HTTP batch over HTTP_BATCH_LIMIT (${BATCH_LIMIT}) gets 413`, async () => {
    const operations = Array.from({ length: BATCH_LIMIT + 1 }, () => ({ query: '{ items { id } }' }));
    const response = await takesNoConnection(
      () =>
        fetch(batching.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(operations),
        }),
      batching,
    );
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
  });
});

describe(`a body over MAX_BODY_BYTES (${DEFAULT_LIMITS.maxBodyBytes})`, () => {
  it('gets 413 REQUEST_ENTITY_TOO_LARGE', async () => {
    const body = JSON.stringify({ query: '{ __typename }', variables: { padding: 'x'.repeat(DEFAULT_LIMITS.maxBodyBytes) } });
    const response = await takesNoConnection(() => send({ body, headers: { 'content-type': 'application/json' } }));
    expect(response.status).toBe(413);
    expect(codesOf(response.json())).toEqual(['REQUEST_ENTITY_TOO_LARGE']);
  });

  it('is refused by its Content-Length, before the body is sent, and the connection is closed', async () => {
    const response = await postUnboundedBody({ contentLength: 50_000_000, stopAfterBytes: 1_000 });
    expect(response.status).toBe(413);
    expect(response.connection).toBe('close');
    expect(JSON.parse(response.text)).toMatchObject({ errors: [{ extensions: { code: 'REQUEST_ENTITY_TOO_LARGE' } }] });
  });

  it('is cut off while it is read when it has no Content-Length (chunked): an endless body still gets 413', async () => {
    const response = await postUnboundedBody({});
    expect(response.status).toBe(413);
    expect(response.connection).toBe('close');
    expect(JSON.parse(response.text)).toMatchObject({ errors: [{ extensions: { code: 'REQUEST_ENTITY_TOO_LARGE' } }] });
    // The server stopped reading soon after the limit: what the client could write is what
    // fits in the socket buffers, not the endless body.
    expect(response.bytesSent).toBeLessThan(64 * DEFAULT_LIMITS.maxBodyBytes);
  });
});

/**
 * POSTs a JSON body that never ends (or stops after `stopAfterBytes` without ending) with
 * `node:http`, writing only as fast as the server reads, and resolves with the response as soon
 * as it arrives — which it can only do if the server answers without reading the whole body.
 */
function postUnboundedBody(options: { contentLength?: number; stopAfterBytes?: number }) {
  return new Promise<{ status: number; connection: string | undefined; text: string; bytesSent: number }>(
    (resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-type': 'application/json' };
      if (options.contentLength !== undefined) headers['content-length'] = options.contentLength;
      const request = httpRequest(t.server.url, { method: 'POST', headers });
      const chunk = Buffer.alloc(65_536, 'x');
      let bytesSent = 0;
      let answered = false;
      request.on('error', (error: NodeJS.ErrnoException) => {
        // The server closes the connection after its 413 while we may still be writing.
        if (!answered) reject(error);
      });
      request.on('response', (response) => {
        answered = true;
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (data: string) => (text += data));
        response.on('end', () => {
          request.destroy();
          resolve({ status: response.statusCode ?? 0, connection: response.headers.connection, text, bytesSent });
        });
      });
      const write = () => {
        while (!answered && bytesSent < (options.stopAfterBytes ?? Infinity)) {
          bytesSent += chunk.length;
          if (!request.write(chunk)) return void request.once('drain', write);
        }
      };
      request.write('{"query":"{ __typename }","variables":{"padding":"');
      write();
    },
  );
}

describe('operations that do not parse or validate', () => {
  it('a query that does not parse gets GRAPHQL_PARSE_FAILED', async () => {
    const { body } = await takesNoConnection(() => graphql('{ items { id '));
    expect(codesOf(body)).toEqual(['GRAPHQL_PARSE_FAILED']);
  });

  it('a raw NUL character in the query gets GRAPHQL_PARSE_FAILED', async () => {
    const { body } = await takesNoConnection(() => graphql('{ items { id \u0000 } }'));
    expect(codesOf(body)).toEqual(['GRAPHQL_PARSE_FAILED']);
  });

  it('a field that does not exist gets GRAPHQL_VALIDATION_FAILED', async () => {
    const { body } = await takesNoConnection(() => graphql('{ items { id price } }'));
    expect(codesOf(body)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });

  it.each([
    ['a string for an Int', 'query($first: Int) { items(first: $first) { id } }', { first: 'ten' }],
    ['an Int past 32 bits', 'query($first: Int) { items(first: $first) { id } }', { first: 10_000_000_000 }],
    ['an object for an ID', 'query($id: ID!) { item(id: $id) { id } }', { id: { id: 1 } }],
    ['a number for a String', 'mutation($l: String) { createItem(input: { number: 1, label: $l }) { id } }', { l: 5 }],
    ['a missing required variable', 'query($id: ID!) { item(id: $id) { id } }', {}],
    ['null for a required variable', 'query($id: ID!) { item(id: $id) { id } }', { id: null }],
    ['an unknown input field', 'mutation($i: CreateItemInput!) { createItem(input: $i) { id } }', { i: { number: 1, price: 2 } }],
  ])('variables with %s get 400 BAD_USER_INPUT', async (_case, query, variables) => {
    const before = await itemCount();
    const { status, body } = await takesNoConnection(() => graphql(query, variables));
    expect(status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(codesOf(body)).toEqual(['BAD_USER_INPUT']);
    expect(await itemCount()).toBe(before);
  });

  it('an operationName that is not in the document gets 400 OPERATION_RESOLUTION_FAILURE', async () => {
    const { status, body } = await takesNoConnection(() =>
      graphql('', undefined, {
        body: JSON.stringify({ query: 'query A { items { id } } query B { items { id } }', operationName: 'C' }),
      }),
    );
    expect(status).toBe(400);
    expect(codesOf(body)).toEqual(['OPERATION_RESOLUTION_FAILURE']);
  });
});

/** Every argument that takes an id, one operation each (a failed non-null list nulls the whole data). */
const ID_ARGUMENTS = [
  'query($id: ID!) { item(id: $id) { id } }',
  'query($id: ID!) { category(id: $id) { id } }',
  'query($id: ID!) { items(after: $id) { id } }',
  'query($id: ID!) { categories(after: $id) { id } }',
  'query($id: ID!) { _entities(representations: [{ __typename: "Item", id: $id }]) { ... on Item { id } } }',
  'mutation($id: ID!) { deleteItem(id: $id) }',
  'mutation($id: ID!) { updateItem(id: $id, input: { number: 1 }) { id } }',
  'mutation($id: ID!) { createItem(input: { number: 1, categoryId: $id }) { id } }',
];

describe('arguments', () => {
  it('`first: -1` gets BAD_USER_INPUT', async () => {
    const { body } = await graphql('{ items(first: -1) { id } }');
    expect(codesOf(body)).toEqual(['BAD_USER_INPUT']);
  });

  it('`first: 1000000` is clamped to 100, not an error, on every list', async () => {
    const items = await graphql('{ items(first: 1000000) { id } }');
    expect(items.body.errors).toBeUndefined();
    expect((items.body.data as { items: unknown[] }).items).toHaveLength(100);
    const categories = await graphql('{ categories(first: 1000000) { items(first: 1000000) { id } } }');
    expect(categories.body.errors).toBeUndefined();
    const rows = (categories.body.data as { categories: { items: unknown[] }[] }).categories;
    expect(rows).toHaveLength(30); // the test seed: 30 categories of 30 items
    expect(rows[0]?.items).toHaveLength(30);
  });

  it.each([
    ['not a number', 'abc'],
    ['a fraction', '1.5'],
    ['negative', '-1'],
    ['zero', '0'],
    ['empty', ''],
    ['padded with a space', ' 1'],
    ['hexadecimal', '0x10'],
    ['in exponent form', '1e3'],
    ['one past the largest bigint', '9223372036854775808'],
    ['far beyond bigint', '123456789012345678901234567890'],
    ['SQL', '1; DROP TABLE items --'],
    ['a NUL byte', '1\u0000'],
  ])('an id that is %s gets BAD_USER_INPUT on every id argument', async (_case, id) => {
    const before = await itemCount();
    for (const query of ID_ARGUMENTS) {
      const { body } = await graphql(query, { id });
      expect(codesOf(body), query).toEqual(['BAD_USER_INPUT']);
    }
    expect(await itemCount()).toBe(before);
  });

  it('the largest bigint id is a valid id (no item has it: null)', async () => {
    const { body } = await graphql('{ item(id: "9223372036854775807") { id } }');
    expect(body).toEqual({ data: { item: null } });
  });

  it('a label with SQL in it is stored verbatim, and the items table is intact', async () => {
    const before = await itemCount();
    const label = `1; DROP TABLE items -- '); DELETE FROM items; --`;
    const { body } = await graphql('mutation($label: String) { createItem(input: { number: 1, label: $label }) { id label } }', {
      label,
    });
    expect(body.errors).toBeUndefined();
    const created = (body.data as { createItem: { id: string; label: string } }).createItem;
    expect(created.label).toBe(label);
    const rows = await t.database.query<{ label: string }>('select label from items where id = $1', [created.id]);
    expect(rows).toEqual([{ label }]);
    expect(await itemCount()).toBe(before + 1);
  });

  it.each([
    ['in a variable', 'mutation($label: String) { createItem(input: { number: 1, label: $label }) { id } }', { label: 'a\u0000b' }],
    ['as an escape in the query', 'mutation { createItem(input: { number: 1, label: "a\\u0000b" }) { id } }', undefined],
  ])('a label with a NUL byte %s gets BAD_USER_INPUT and stores nothing', async (_case, query, variables) => {
    const before = await itemCount();
    const { body } = await graphql(query, variables);
    expect(codesOf(body)).toEqual(['BAD_USER_INPUT']);
    expect(await itemCount()).toBe(before);
  });

  it.each([
    ['in a variable', 'mutation($l: String) { createItem(input: { number: 1, label: $l }) { id label } }', '"variables":{"l":"a', '"}'],
    ['in the query', 'mutation { createItem(input: { number: 1, label: \\"a', '', '\\" }) { id label } }'],
  ])('invalid UTF-8 bytes in the body %s are read as U+FFFD: the stored label is valid text', async (_case, query, middle, end) => {
    const prefix = middle ? `{"query":"${query}",${middle}` : `{"query":"${query}`;
    const body = Buffer.concat([Buffer.from(prefix), Buffer.from([0xff, 0xfe]), Buffer.from(`b${end}${middle ? '}' : '"}'}`)]);
    const response = await send({ body, headers: { 'content-type': 'application/json' } });
    expect(response.status).toBe(200);
    const created = (response.json().data as { createItem: { id: string; label: string } }).createItem;
    expect(created.label).toBe('a\uFFFD\uFFFDb');
    const rows = await t.database.query<{ label: string; valid: boolean }>(
      "select label, convert_to(label, 'UTF8') = convert_to(label, 'UTF8') as valid from items where id = $1",
      [created.id],
    );
    expect(rows).toEqual([{ label: 'a\uFFFD\uFFFDb', valid: true }]);
  });
});

/** `{ categories { items { category { items { … } } } } }`, `depth` fields deep. */
function nested(depth: number): string {
  const fields = Array.from({ length: depth - 1 }, (_, i) => (i === 0 ? 'categories' : i % 2 === 1 ? 'items' : 'category'));
  const leaf = fields.at(-1) === 'items' ? 'number' : 'name';
  return `{ ${fields.reduceRight((inner, field) => `${field} { ${inner} }`, leaf)} }`;
}

describe('operations over a limit are refused before they run, with a code per limit', () => {
  it(`a query nested 50 deep gets MAX_DEPTH_EXCEEDED (MAX_DEPTH=${DEFAULT_LIMITS.maxDepth})`, async () => {
    const { body } = await takesNoConnection(() => graphql(nested(50)));
    expect(codesOf(body)).toContain('MAX_DEPTH_EXCEEDED');
    expect(body.errors?.[0]?.message).toBe(`Query depth limit of ${DEFAULT_LIMITS.maxDepth} exceeded, found 50.`);
    expect(body.data).toBeUndefined();
  });

  it('a query one level over the limit is refused, one at the limit runs', async () => {
    const over = await takesNoConnection(() => graphql(nested(DEFAULT_LIMITS.maxDepth + 1)));
    expect(codesOf(over.body)).toEqual(['MAX_DEPTH_EXCEEDED']);
    // Small pages, or the fan-out of five nested lists would be over MAX_COST.
    const small = nested(DEFAULT_LIMITS.maxDepth).replace('categories', 'categories(first: 2)').replaceAll('items', 'items(first: 2)');
    const at = await graphql(small);
    expect(at.body.errors).toBeUndefined();
  });

  it(`1,000 aliases of one field get MAX_ALIASES_EXCEEDED (MAX_ALIASES=${DEFAULT_LIMITS.maxAliases})`, async () => {
    const aliases = Array.from({ length: 1000 }, (_, i) => `a${i}: id`).join(' ');
    const { body } = await takesNoConnection(() => graphql(`{ items { ${aliases} } }`));
    expect(codesOf(body)).toEqual(['MAX_ALIASES_EXCEEDED']);
  });

  it(`10,000 tokens get MAX_TOKENS_EXCEEDED (MAX_TOKENS=${DEFAULT_LIMITS.maxTokens})`, async () => {
    const { body } = await takesNoConnection(() => graphql(`{ items { ${'id '.repeat(9_995)} } }`));
    expect(codesOf(body)).toEqual(['MAX_TOKENS_EXCEEDED']);
  });

  it(`@include(if: true) 500 times on one field gets MAX_DIRECTIVES_EXCEEDED (MAX_DIRECTIVES=${DEFAULT_LIMITS.maxDirectives})`, async () => {
    const { body } = await takesNoConnection(() => graphql(`{ items { id ${'@include(if: true) '.repeat(500)} } }`));
    // graphql-js also objects to the repeated directive; the limit comes first.
    expect(codesOf(body)?.[0]).toBe('MAX_DIRECTIVES_EXCEEDED');
  });

  it('500 directives spread over the fields of an operation get MAX_DIRECTIVES_EXCEEDED', async () => {
    const { body } = await takesNoConnection(() => graphql(`{ items { ${'id @skip(if: false) '.repeat(500)} } }`));
    expect(codesOf(body)).toEqual(['MAX_DIRECTIVES_EXCEEDED']);
  });

  it(`a million-row fan-out (100 x 100 x 100) gets MAX_COST_EXCEEDED (MAX_COST=${DEFAULT_LIMITS.maxCost})`, async () => {
    const { body } = await takesNoConnection(() =>
      graphql('{ categories(first: 100) { items(first: 100) { category { items(first: 100) { id } } } } }'),
    );
    expect(codesOf(body)).toEqual(['MAX_COST_EXCEEDED']);
    expect(body.errors?.[0]?.message).toBe(`Query cost limit of ${DEFAULT_LIMITS.maxCost} exceeded, found 2020100.`);
  });

  it('the cost counts page sizes passed as variables', async () => {
    const { body } = await takesNoConnection(() =>
      graphql('query($n: Int) { categories(first: $n) { items(first: $n) { category { items(first: $n) { id } } } } }', {
        n: 100,
      }),
    );
    expect(codesOf(body)).toEqual(['MAX_COST_EXCEEDED']);
  });

  it('the cost counts page sizes left at their default (20)', async () => {
    // 9 levels, within MAX_DEPTH, but 20 categories x 20^4 items.
    const { body } = await takesNoConnection(() => graphql(nested(9)));
    expect(codesOf(body)).toEqual(['MAX_COST_EXCEEDED']);
  });

  it('a document that spreads fragments within fragments (a fragment bomb) gets MAX_COST_EXCEEDED', async () => {
    const fragments = Array.from({ length: 30 }, (_, i) =>
      i === 0 ? 'fragment F0 on Item { id }' : `fragment F${i} on Item { ...F${i - 1} ...F${i - 1} }`,
    ).join(' ');
    const { body } = await takesNoConnection(() => graphql(`{ items(first: 1) { ...F29 } } ${fragments}`));
    expect(codesOf(body)).toEqual(['MAX_COST_EXCEEDED']);
    expect(body.errors?.[0]?.message).toMatch(/too large to estimate/);
  });

  it('the limit is checked per operation of an HTTP batch', async () => {
    const response = await fetch(batching.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify([
        { query: '{ items(first: 1) { number } }' },
        { query: '{ categories(first: 100) { items(first: 100) { category { items(first: 100) { id } } } } }' },
      ]),
    });
    const [first, second] = (await response.json()) as ErrorBody[];
    expect(first).toEqual({ data: { items: [{ number: 1 }] } });
    expect(codesOf(second ?? {})).toEqual(['MAX_COST_EXCEEDED']);
  });

  it.each([
    ['tokens (while parsing)', `{ items { ${'id '.repeat(9_995)} } }`],
    ['depth (while validating)', nested(50)],
    ['cost (before executing)', '{ categories(first: 100) { items(first: 100) { category { items(first: 100) { id } } } } }'],
  ])('a refusal for %s is HTTP 400 for GraphQL-over-HTTP clients, 200 for application/json ones', async (_limit, query) => {
    const asJson = await graphql(query);
    expect(asJson.status).toBe(200);
    const asGraphQLResponse = await graphql(query, undefined, {
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    });
    expect(asGraphQLResponse.status).toBe(400);
    expect(codesOf(asGraphQLResponse.body)).toEqual(codesOf(asJson.body));
  });

  it('a recursive introspection query is refused by graphql-js (why __schema is exempt from MAX_DEPTH)', async () => {
    const { body } = await takesNoConnection(() =>
      graphql('{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }'),
    );
    expect(codesOf(body)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });

  it('a refusal comes with the document’s other validation errors', async () => {
    const { body } = await graphql(nested(50).replace('{ categories', '{ price categories'));
    expect(codesOf(body)).toEqual(expect.arrayContaining(['MAX_DEPTH_EXCEEDED', 'GRAPHQL_VALIDATION_FAILED']));
  });
});

describe('what the limits let through', () => {
  it('GraphiQL’s full introspection query (every option on)', async () => {
    const query = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    });
    const { body } = await takesNoConnection(() => graphql(query));
    expect(body.errors).toBeUndefined();
    const types = (body.data as { __schema: { types: { name: string }[] } }).__schema.types.map((type) => type.name);
    expect(types).toEqual(expect.arrayContaining(['Item', 'Category', '_Any']));
  });

  it('codegen introspecting the running server', async () => {
    const outputs = (await generate(
      { schema: t.server.url, generates: { 'types.ts': { plugins: ['typescript'] } }, silent: true },
      false,
    )) as Types.FileOutput[];
    expect(outputs[0]?.content).toMatch(/export type Item = \{/);
  });

  it('a gateway’s _entities call with 100 representations, as a variable or inlined', async () => {
    const representations = Array.from({ length: 100 }, (_, i) => ({ __typename: 'Item', id: String(i + 1) }));
    const selection = '{ ... on Item { id number label category { id name } } }';
    const asVariable = await graphql(`query($r: [_Any!]!) { _entities(representations: $r) ${selection} }`, {
      r: representations,
    });
    expect(asVariable.body.errors).toBeUndefined();
    expect((asVariable.body.data as { _entities: unknown[] })._entities).toHaveLength(100);
    const literals = representations.map(({ id }) => `{ __typename: "Item", id: "${id}" }`).join(', ');
    const inlined = await graphql(`{ _entities(representations: [${literals}]) ${selection} }`);
    expect(inlined.body).toEqual(asVariable.body);
  });

  it.each([
    ['W1', W1],
    ['W2', W2],
    ['W3 (20 aliased item(id:) fields)', W3],
    ['categories → items → category', '{ categories { items { category { name } } } }'],
    [
      'a page of 100 categories with 100 items each, every field',
      '{ categories(first: 100) { id name itemCount items(first: 100) { id number label createdAt category { id name } } } }',
    ],
  ])('%s', async (_name, query) => {
    const { body } = await graphql(query);
    expect(body.errors).toBeUndefined();
  });
});

describe('createServer options', () => {
  it('takes limits of its own; what it leaves out keeps its default', async () => {
    const server = createServer({
      database: { ...TEST_POOL, connectionString: t.database.url },
      logger: pino({ level: 'silent' }),
      limits: { maxDepth: 3, maxBodyBytes: 2_000 },
    });
    try {
      const post = (query: string) =>
        server.yoga.fetch('http://poolgraph.test/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ query }),
        });
      const deep = await post('{ categories(first: 1) { items(first: 1) { category { name } } } }');
      expect(codesOf((await deep.json()) as ErrorBody)).toEqual(['MAX_DEPTH_EXCEEDED']);
      const shallow = await post('{ items(first: 1) { category { name } } }');
      expect(((await shallow.json()) as ErrorBody).errors).toBeUndefined();
      const large = await post(`{ items(first: 1) { ${'id '.repeat(1_000)} } }`);
      expect(large.status).toBe(413);
      // MAX_ALIASES was left out: its default (50) still holds.
      const aliases = await post(`{ items(first: 1) { ${Array.from({ length: 51 }, (_, i) => `a${i}: id`).join(' ')} } }`);
      expect(codesOf((await aliases.json()) as ErrorBody)).toEqual(['MAX_ALIASES_EXCEEDED']);
      expect(server.pool.idleCount).toBe(server.pool.totalCount);
    } finally {
      await server.close();
    }
  });
});
