/**
 * Peer: graphql-yoga 5 as a user starts from it (`createYoga` + `createSchema`, the resolvers and
 * per-request DataLoaders of this folder, a `pg.Pool`), with none of poolgraph's changes: no fast
 * path, no request scope with one connection per request, no token cache, no pipelined
 * `set_config`. Yoga's defaults stay on (its parse and validation caches, masked errors);
 * GraphiQL is off and it logs at `warn`.
 *
 * `node --import tsx servers/yoga-server.ts`, with the bench's environment (see config.ts).
 */
import './production-mode.js';
import { createSchema, createYoga } from 'graphql-yoga';
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

const yoga = createYoga({
  schema: createSchema<PeerContext>({ typeDefs, resolvers }),
  context: ({ request }) => createPeerContext(factory, request.headers.get('authorization') ?? undefined),
  graphiql: false,
  landingPage: false,
  logging: 'warn',
});

await warmUpPool(pool, config.poolSize);
const server = createBenchHttpServer(yoga, counters);
announceReady(await listenOnFreePort(server));
exitOnSigterm(server, async () => {
  await yoga.dispose();
  await pool.end();
});
