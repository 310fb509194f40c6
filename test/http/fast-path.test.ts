import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPIED_YOGA_VERSION, regularMediaType } from '../../src/http/yoga-http-behaviour.js';
import { startTestServer, type TestServer, useTestEnvironment } from '../support/server.js';
import { W1, W2, W3 } from '../support/workloads.js';

/**
 * The fast path (src/http/fast-path.ts) answers JSON POSTs without graphql-yoga's HTTP layer. Every
 * other test file runs through it too; this one sends the same requests to a server with it
 * (`t.server`) and to one without it (every request through graphql-yoga, same database) and
 * expects the same status, headers and bytes, and checks which requests each path took.
 */
const t = useTestEnvironment();
let yogaOnly: TestServer;

beforeAll(async () => {
  yogaOnly = await startTestServer(t.database.url, {}, { fastPath: false });
});

afterAll(async () => {
  await yogaOnly?.close();
});

describe('the graphql-yoga the fast path copies', () => {
  it('is the version installed: an upgrade must read yoga-http-behaviour.ts again first', () => {
    const installed = (createRequire(import.meta.url)('graphql-yoga/package.json') as { version: string }).version;
    expect(installed.split('.').slice(0, 2).join('.')).toBe(COPIED_YOGA_VERSION);
  });
});

/** A request as a client sends it. */
interface Sent {
  method?: 'POST' | 'GET';
  body?: string;
  headers?: Record<string, string>;
  path?: string;
}

/** What a client can observe of an answer, less what differs on every request (date, request id). */
async function observe(server: TestServer, sent: Sent) {
  const url = new URL(server.url);
  if (sent.path) url.pathname = sent.path;
  const response = await fetch(url, {
    method: sent.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...sent.headers },
    ...(sent.body !== undefined ? { body: sent.body } : {}),
  });
  const headers = Object.fromEntries(
    [...response.headers].filter(([name]) => !['date', 'x-request-id', 'keep-alive', 'connection'].includes(name)),
  );
  return { status: response.status, headers, body: await response.text(), requestId: response.headers.get('x-request-id') };
}

/** Sends `sent` to both servers; returns both answers and which path the fast-path server took. */
async function both(sent: Sent) {
  const { counts } = t.server.server.requestListener;
  const before = { ...counts };
  const fast = await observe(t.server, sent);
  const path = counts.answered > before.answered ? 'fast' : counts.passedOn > before.passedOn ? 'yoga' : 'none';
  const yoga = await observe(yogaOnly, sent);
  return { fast, yoga, path };
}

const json = (value: unknown) => JSON.stringify(value);

describe('a JSON POST of one operation is answered by the fast path, exactly as graphql-yoga answers it', () => {
  const cases: [string, Sent][] = [
    ['W1', { body: json({ query: W1 }) }],
    ['W2 (nested)', { body: json({ query: W2 }) }],
    ['W3 (aliases)', { body: json({ query: W3 }) }],
    ['variables', { body: json({ query: 'query($id: ID!) { item(id: $id) { number label } }', variables: { id: '7' } }) }],
    ['operationName picks one of two operations', { body: json({ query: 'query A { items(first: 1) { id } } query B { items(first: 2) { number } }', operationName: 'B' }) }],
    ['an unknown field (validation error)', { body: json({ query: '{ items { numbe } }' }) }],
    ['a syntax error', { body: json({ query: '{ items { number }' }) }],
    ['a variable of the wrong type (BAD_USER_INPUT)', { body: json({ query: 'query($n: Int) { items(first: $n) { id } }', variables: { n: 'x' } }) }],
    ['nesting past the depth limit', { body: json({ query: `{ items { ${'category { items { '.repeat(5)}id${' } }'.repeat(5)} } }` }) }],
    ['a resolver error (bad id)', { body: json({ query: '{ item(id: "not-a-number") { id } }' }) }],
    ['an unknown operationName', { body: json({ query: W1, operationName: 'Nope' }) }],
    ['no query', { body: json({}) }],
    ['a query that is not a string', { body: json({ query: 1 }) }],
    ['an unexpected parameter', { body: json({ query: W1, foo: 1 }) }],
    ['a mutation refused by its resolver', { body: json({ query: 'mutation { updateItem(id: "999999999", input: { label: "x" }) { id } }' }) }],
    ['Accept: application/graphql-response+json, with an error', { body: json({ query: '{ items { numbe } }' }), headers: { accept: 'application/graphql-response+json' } }],
    ['Accept listing several types', { body: json({ query: W1 }), headers: { accept: 'application/graphql-response+json, application/json;q=0.9, */*' } }],
    ['a cross-origin request (CORS headers)', { body: json({ query: W1 }), headers: { origin: 'http://app.example' } }],
    ['Content-Type with a charset', { body: json({ query: W1 }), headers: { 'content-type': 'application/json; charset=utf-8' } }],
  ];
  it.each(cases)('%s', async (_name, sent) => {
    const { fast, yoga, path } = await both(sent);
    expect(path).toBe('fast');
    expect({ status: fast.status, headers: fast.headers, body: fast.body }).toEqual({ status: yoga.status, headers: yoga.headers, body: yoga.body });
  });

  it('echoes the client request id, as graphql-yoga does', async () => {
    const sent = { body: json({ query: W1 }), headers: { 'x-request-id': 'client-id-123' } };
    const { fast, yoga, path } = await both(sent);
    expect(path).toBe('fast');
    expect([fast.requestId, yoga.requestId]).toEqual(['client-id-123', 'client-id-123']);
  });

  it('a request the fast path answered took one connection and ran one statement', async () => {
    const { stats, response } = await t.server.measure(W1);
    expect(response.status).toBe(200);
    expect(stats).toMatchObject({ connectionsTaken: 1, statements: 1 });
  });
});

describe('every other request goes to graphql-yoga', () => {
  const cases: [string, Sent][] = [
    ['a batch (batching is off)', { body: json([{ query: W1 }]) }],
    ['invalid JSON', { body: '{"query": ' }],
    ['a JSON value that is not an object', { body: 'null' }],
    ['GET', { method: 'GET', path: `/graphql`, headers: { accept: 'application/json' } }],
    ['a text/plain POST (CSRF prevention)', { body: json({ query: W1 }), headers: { 'content-type': 'text/plain' } }],
    ['Accept: text/event-stream', { body: json({ query: W1 }), headers: { accept: 'text/event-stream' } }],
    ['Accept that no processor serves (406)', { body: json({ query: W1 }), headers: { accept: 'image/png' } }],
    ['another path', { body: json({ query: W1 }), path: '/graphql/' }],
  ];
  it.each(cases)('%s', async (_name, sent) => {
    const { fast, yoga, path } = await both(sent);
    expect(path).toBe('yoga');
    expect({ status: fast.status, headers: fast.headers, body: fast.body }).toEqual({ status: yoga.status, headers: yoga.headers, body: yoga.body });
  });
});

describe("the media type follows graphql-yoga's choice", () => {
  it.each([
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['application/graphql-response+json', 'application/graphql-response+json'],
    ['application/graphql-response+json, application/json', 'application/graphql-response+json'],
    ['application/json, application/graphql-response+json', 'application/json'],
    ['application/json; charset=iso-8859-1', undefined],
    ['text/event-stream', undefined],
    ['multipart/mixed', undefined],
    ['image/png', undefined],
  ])('Accept %j → %s', (accept, expected) => {
    expect(regularMediaType(accept)).toBe(expected);
  });
});
