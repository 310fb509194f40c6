/**
 * Peer: Mercurius 16 on Fastify 5, compiling each query with graphql-jit once it has been seen
 * (`jit: 1`: the first request of a query runs on graphql-js, later ones on the compiled query),
 * with the resolvers and per-request DataLoaders of this folder on a `pg.Pool`. Mercurius's
 * query cache stays on (its default); Fastify's logger is off (its default), so, as issue 21 says
 * of Mercurius, it logs and measures nothing.
 *
 * The DataLoaders are this folder's, made per request in `context`, rather than Mercurius's own
 * `loaders` option: the three same-schema peers then run the very same resolvers and SQL, and
 * differ only in the server around them.
 *
 * `node --import tsx servers/mercurius-server.ts`, with the bench's environment (see config.ts).
 */
import './production-mode.js';
import Fastify from 'fastify';
import mercurius from 'mercurius';
import { createTokenVerifier } from './auth.js';
import { announceReady, type BenchCounters, createBenchHttpServer, exitOnSigterm } from './bench-process.js';
import { loadPeerConfig } from './config.js';
import { createPeerContext, type PeerContext } from './context.js';
import { createPeerPool, warmUpPool } from './pool.js';
import { resolvers } from './resolvers.js';
import { typeDefs } from './schema.js';

declare module 'mercurius' {
  // Mercurius's documented way to type the context its `context` option adds to.
  interface MercuriusContext extends PeerContext {}
}

const config = loadPeerConfig();
const counters: BenchCounters = { requests: 0, statements: 0 };
const pool = createPeerPool(config, counters);
const factory = { pool, counters, verifier: createTokenVerifier(config.jwtSecret) };

const app = Fastify({
  logger: false,
  // Fastify's hook for bringing its own `http.Server`: the bench's, which answers its stats path.
  serverFactory: (handler) => createBenchHttpServer(handler, counters),
});
await app.register(mercurius, {
  schema: typeDefs,
  resolvers,
  jit: 1,
  context: (request) => createPeerContext(factory, request.headers.authorization),
});

await warmUpPool(pool, config.poolSize);
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('Fastify has no TCP address');
announceReady(address.port);
exitOnSigterm(app.server, async () => {
  await app.close();
  await pool.end();
});
