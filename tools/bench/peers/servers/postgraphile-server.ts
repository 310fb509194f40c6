/**
 * Peer: PostGraphile 5 (amber preset) on the bench's tables, its schema made from the database by
 * introspection and every operation planned by Grafast into SQL of its own; served by grafserv's
 * Node adaptor on the pool of this folder (`makePgService({ pool })`).
 *
 * Who the caller is reaches PostgreSQL the way PostGraphile 5's documentation says to do it (its
 * `PgLazyJWTPreset` would set `jwt.claims.*` settings, which migration 0002's policies do not read,
 * and itself advises doing it yourself): `grafast.context` verifies the `Authorization: Bearer`
 * token with jose and returns `pgSettings: { 'request.jwt.claims': <claims JSON> }`. PostGraphile
 * then runs the request in a transaction that first sets them (`begin`, `select set_config(...)`,
 * the operation's statements, `commit`). It does this for every request that carries a token,
 * reads included: its users' read policies may depend on the claims, and PostGraphile cannot know
 * they do not. So W1-token costs it four statements where W1 costs one.
 *
 * PostGraphile 5 declares Node >= 22; on Node 20 this process first installs the one newer API its
 * executor uses (see promise-with-resolvers.ts), so that it runs on the same Node as the others.
 *
 * `node --import tsx servers/postgraphile-server.ts`, with the bench's environment (see config.ts).
 */
import './production-mode.js';
import './promise-with-resolvers.js';
import type { PgClient, WithPgClient } from 'postgraphile/@dataplan/pg';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { createTokenVerifier } from './auth.js';
import { announceReady, type BenchCounters, createBenchHttpServer, exitOnSigterm, listenOnFreePort } from './bench-process.js';
import { loadPeerConfig } from './config.js';
import { createPeerPool, warmUpPool } from './pool.js';

const config = loadPeerConfig();
const counters: BenchCounters = { requests: 0, statements: 0 };
const pool = createPeerPool(config, counters);
const verifier = createTokenVerifier(config.jwtSecret);

const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset],
  // No subscriptions are served: `pubsub: false` keeps PostGraphile from preparing a LISTEN client.
  pgServices: [makePgService({ pool, schemas: ['public'], pubsub: false })],
  grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false, websockets: false },
  grafast: {
    explain: false,
    async context(requestContext, args) {
      const authorization = requestContext.node?.req.headers.authorization;
      const claims = authorization === undefined ? undefined : await verifier.verify(authorization);
      return {
        pgSettings: claims ? { 'request.jwt.claims': JSON.stringify(claims) } : {},
        // For the bench only: counts this request once, when it first asks for a connection.
        withPgClient: countedOnFirstUse(args.contextValue.withPgClient),
      };
    },
  },
};

/** `withPgClient` that adds one to `counters.requests` the first time this request calls it. */
function countedOnFirstUse<Client extends PgClient>(withPgClient: WithPgClient<Client>): WithPgClient<Client> {
  let used = false;
  const counted: WithPgClient<Client> = (pgSettings, callback) => {
    if (!used) {
      used = true;
      counters.requests += 1;
    }
    return withPgClient(pgSettings, callback);
  };
  return counted;
}

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
// Build the schema now, not on the first measured request. Its introspection statements were no
// request's: the counters start after them.
await pgl.getSchema();
counters.statements = 0;
await warmUpPool(pool, config.poolSize);
// `createHandler` rather than `serv.addTo(server)`: addTo listens on the server's `request` event
// beside the bench's own listener, so both would answer `/__bench/stats`. No websockets are
// served, which is all addTo adds.
const handler = serv.createHandler();
const server = createBenchHttpServer((req, res) => handler(req, res), counters);
announceReady(await listenOnFreePort(server));
exitOnSigterm(server, async () => {
  // Releases its grafserv too (releasing grafserv first is an error); the pool is ours to end.
  await pgl.release();
  await pool.end();
});
