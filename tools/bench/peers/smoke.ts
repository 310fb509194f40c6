/**
 * A quick check of the bench's peers, without loading them: `node --import tsx
 * tools/bench/peers/smoke.ts [--node 24] [--peers yoga,apollo] [--verbose]` from the repo root.
 *
 * Opens the bench database as `npm run bench` does (embedded PostgreSQL, seeded 100 x 100, the
 * servers logging in as `poolgraph_app`), starts each peer, sends each of its workloads three
 * times (as the bench checks before loading; Mercurius runs the query compiled by graphql-jit
 * from the second time on) and prints, per peer and workload, whether every answer was right (or
 * the first 200 bytes of the first wrong one) and the statements of the last request, as the
 * peer counted them. W4 inserts rows: the data set is restored after it. Exits 1 when an answer
 * was wrong or a peer failed.
 *
 * This file belongs to the root project (it imports root modules only); the peers' own code is in
 * `servers/`, type-checked with this folder's tsconfig.json.
 */
import { parseArgs } from 'node:util';
import { createBenchAuth } from '../auth.js';
import { openBenchDatabase } from '../database.js';
import { resolveNodeBinary } from '../node-binary.js';
import { isPeerAnswer, isPeerName, PEER_NAMES, PEER_WORKLOAD_NAMES, type PeerName, peerVersions, peerWorkload, startPeer } from '../peers.js';
import type { ServerProcess } from '../processes.js';

const { values } = parseArgs({
  options: { node: { type: 'string' }, peers: { type: 'string' }, verbose: { type: 'boolean', default: false } },
});
const peers: PeerName[] = [];
for (const name of values.peers?.split(',') ?? PEER_NAMES) {
  if (!isPeerName(name)) {
    process.stderr.write(`smoke: unknown peer "${name}"; the peers are ${PEER_NAMES.join(', ')}\n`);
    process.exit(2);
  }
  peers.push(name);
}
const node = resolveNodeBinary(values.node);
const log = (line: string) => process.stdout.write(`${line}\n`);

log(`peers on Node ${node.version}; starting an embedded PostgreSQL seeded 100 x 100`);
const database = await openBenchDatabase(undefined, true);
let failures = 0;
try {
  const auth = await createBenchAuth();
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AUTH_'))),
    DATABASE_URL: database.serverUrl,
    AUTH_JWT_SECRET: auth.secret,
    POOL_SIZE: '10',
    POOL_MAX_OVERFLOW: '0',
  };
  for (const peer of peers) {
    let server: ServerProcess;
    try {
      server = await startPeer(peer, { env, verbose: values.verbose, nodePath: node.path });
    } catch (error) {
      failures += 1;
      log(`${peer}: FAILED to start: ${(error as Error).message}`);
      continue;
    }
    try {
      for (const name of PEER_WORKLOAD_NAMES) {
        const workload = peerWorkload(peer, name);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (workload.token) headers.authorization = `Bearer ${auth.token}`;
        let wrong: string | undefined;
        let before = await server.stats();
        let after = before;
        for (let attempt = 0; attempt < 3; attempt += 1) {
          before = after;
          const response = await fetch(`${server.origin}/graphql`, {
            method: 'POST',
            headers,
            body: workload.body,
            signal: AbortSignal.timeout(10_000),
          });
          const body = await response.text();
          after = await server.stats();
          if (wrong === undefined && (response.status !== 200 || !isPeerAnswer(peer, name, body))) {
            wrong = `HTTP ${response.status}: ${body.slice(0, 200)}`;
          }
        }
        if (workload.writes) await database.reseed();
        if (wrong !== undefined) failures += 1;
        const statements = after.statements - before.statements;
        const requests = after.requests - before.requests;
        log(
          `${peer.padEnd(12)} ${name.padEnd(8)} ${wrong === undefined ? 'OK' : `WRONG ${wrong}`}` +
            `  (last request: ${statements} statement${statements === 1 ? '' : 's'}, counted as ${requests} request${requests === 1 ? '' : 's'};` +
            ` totals ${after.requests} requests, ${after.statements} statements)`,
        );
      }
    } finally {
      await server.stop();
    }
  }
  log(`versions: ${Object.entries(peerVersions()).map(([name, version]) => `${name} ${version}`).join(', ')}`);
} finally {
  await database.stop();
}
log(failures === 0 ? 'every answer was right' : `${failures} wrong answer(s) or failure(s)`);
process.exit(failures === 0 ? 0 : 1);
