/**
 * Peer: Apollo Server 5 with per-request DataLoaders (the resolvers of this folder) on a
 * `pg.Pool`, served by Node's `http` module through `executeHTTPGraphQLRequest`, the entry point
 * Apollo's own integrations (Express, the standalone server) call: the request's method, headers,
 * query string and parsed JSON body in, status, headers and body out. Apollo's defaults stay on
 * (its document cache, CSRF prevention); the landing page is off, and the result is written with
 * `JSON.stringify` alone (`stringifyResult`; Apollo's default adds a newline after the JSON, which
 * would make its answers differ from the others' by that one byte).
 *
 * `node --import tsx servers/apollo-server.ts`, with the bench's environment (see config.ts).
 */
import './production-mode.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { createTokenVerifier } from './auth.js';
import { announceReady, type BenchCounters, createBenchHttpServer, exitOnSigterm, listenOnFreePort } from './bench-process.js';
import { loadPeerConfig } from './config.js';
import { createPeerContext, type PeerContext } from './context.js';
import { createPeerPool, warmUpPool } from './pool.js';
import { resolvers } from './resolvers.js';
import { typeDefs } from './schema.js';

const config = loadPeerConfig();
const counters: BenchCounters = { requests: 0, statements: 0 };
const pool = createPeerPool(config, counters);
const factory = { pool, counters, verifier: createTokenVerifier(config.jwtSecret) };

/** Apollo's logger interface at `warn`: what Apollo logs below that (start-up notes) is dropped. */
const logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message: unknown) => process.stderr.write(`apollo: ${String(message)}\n`),
  error: (message: unknown) => process.stderr.write(`apollo: ${String(message)}\n`),
};

const apollo = new ApolloServer<PeerContext>({
  typeDefs,
  resolvers,
  logger,
  plugins: [ApolloServerPluginLandingPageDisabled()],
  stringifyResult: (result) => JSON.stringify(result),
  // Apollo would stop itself on SIGTERM and then re-raise the signal (exit 143): the bench
  // expects exit 0, so this process's own handler (bench-process.ts) stops it instead.
  stopOnTerminationSignals: false,
});
await apollo.start();

/** The largest request body read (Express's `json()` default, which Apollo's integrations use). */
const MAX_BODY_BYTES = 100 * 1024;

/** Turns one Node request into Apollo's `HTTPGraphQLRequest`, and Apollo's answer into the response. */
async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const text = await readBody(req);
  if (text === undefined) {
    res.writeHead(413).end();
    return;
  }
  let body: unknown;
  try {
    body = headers.get('content-type')?.startsWith('application/json') && text !== '' ? JSON.parse(text) : text;
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('the body is not JSON');
    return;
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  const request: HTTPGraphQLRequest = { method: (req.method ?? 'GET').toUpperCase(), headers, search: url.search, body };
  const response = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: request,
    context: async () => createPeerContext(factory, req.headers.authorization),
  });
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** The request's body as text; undefined when it is larger than {@link MAX_BODY_BYTES}. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

await warmUpPool(pool, config.poolSize);
const server = createBenchHttpServer((req, res) => {
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/graphql') {
    res.writeHead(404).end();
    return;
  }
  handle(req, res).catch((error: unknown) => {
    process.stderr.write(`apollo peer: ${String(error)}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
}, counters);
announceReady(await listenOnFreePort(server));
exitOnSigterm(server, async () => {
  await apollo.stop();
  await pool.end();
});
