/**
 * The bench's side of its peers (issue 21): the servers `npm run bench -- --peers` compares
 * poolgraph with, each what a careful user of that stack writes, on the same database, tables,
 * row-level security and pool size. Their code and dependencies live in `tools/bench/peers/`, a
 * package of its own (the root package stays lean): it is installed with `npm ci` on first use.
 *
 * - `mercurius`: Mercurius 16 + graphql-jit (`jit: 1`) on Fastify 5;
 * - `apollo`: Apollo Server 5 on Node's `http`;
 * - `yoga`: graphql-yoga 5 as a user starts from it, none of poolgraph's changes;
 * - `postgraphile`: PostGraphile 5 (amber preset), its own schema and planner.
 *
 * The first three share resolvers, per-request DataLoaders and hand-written SQL, serve the part of
 * `schema.graphql` the workloads use, and get poolgraph's own request bodies and expected bytes.
 * PostGraphile's schema differs, so it gets the equivalent operations, and its answers are checked
 * byte for byte against the canonical expected bodies mapped into its shape (see
 * peers/postgraphile-workloads.ts). W5 (`_entities`, a federation gateway's request) is poolgraph's only:
 * no peer is a subgraph.
 *
 * Only Node built-ins and root modules here: this file is type-checked with the root project,
 * where the peers' dependencies are absent.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, spawnBenchServer, Tail } from './processes.js';
import { postgraphileWorkload } from './peers/postgraphile-workloads.js';
import { isExpectedBody, type Workload, type WorkloadName, WORKLOADS } from './workloads.js';

/** The peers, in the order a run measures them. */
export const PEER_NAMES = ['mercurius', 'apollo', 'yoga', 'postgraphile'] as const;

/** A peer's name. */
export type PeerName = (typeof PEER_NAMES)[number];

/** True when `name` is a peer's name (for parsing `--peers mercurius,yoga`). */
export function isPeerName(name: string): name is PeerName {
  return (PEER_NAMES as readonly string[]).includes(name);
}

/** The workloads peers serve, in run order (W4 writes, so last). W5 is federation-only. */
export const PEER_WORKLOAD_NAMES: readonly WorkloadName[] = ['W1', 'W1-token', 'W2', 'W3', 'W4'];

/** For reports: what each peer is, and what it does with a token and a write. */
export const PEER_SUMMARIES: Readonly<Record<PeerName, string>> = {
  mercurius:
    'Mercurius 16 + graphql-jit (`jit: 1`) on Fastify 5, per-request DataLoaders, hand-written SQL with pg; ' +
    'a read ignores the token; W4 verifies it (jose) and runs begin, set_config, INSERT, commit',
  apollo:
    'Apollo Server 5 on node:http (`executeHTTPGraphQLRequest`), per-request DataLoaders, the same SQL; ' +
    'tokens as Mercurius',
  yoga:
    'graphql-yoga 5 as a user starts from it (createYoga + createSchema), per-request DataLoaders, the same SQL; ' +
    'tokens as Mercurius',
  postgraphile:
    'PostGraphile 5 (amber preset, grafserv on node:http), its own schema and planner; a request with a token runs ' +
    'in a transaction that sets request.jwt.claims (pgSettings), reads included; it declares Node >= 22, and on ' +
    'Node 20 runs with a Promise.withResolvers polyfill (servers/promise-with-resolvers.ts)',
};

const PEERS_DIR = fileURLToPath(new URL('./peers/', import.meta.url));

/** Each peer's process entry, in `tools/bench/peers/servers/`. */
const PEER_ENTRIES: Readonly<Record<PeerName, string>> = {
  mercurius: 'servers/mercurius-server.ts',
  apollo: 'servers/apollo-server.ts',
  yoga: 'servers/yoga-server.ts',
  postgraphile: 'servers/postgraphile-server.ts',
};

let installing: Promise<void> | undefined;

/**
 * Installs the peers' dependencies (`npm ci` in tools/bench/peers) when its `node_modules` is
 * missing or older than its lockfile, printing one line that says so through `log`; does nothing
 * otherwise. About a minute the first time (430 packages from the npm registry). Called by the
 * bench before it measures, and by {@link startPeer}; calls after the first share its result,
 * a failure too. Rejects with npm's last lines.
 */
export function ensurePeersInstalled(log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<void> {
  // A failed install is not tried again: every later call gets its error at once, rather than
  // another `npm ci` per measurement.
  installing ??= install(log);
  return installing;
}

async function install(log: (line: string) => void): Promise<void> {
  // npm writes node_modules/.package-lock.json at the end of every install: its age is the install's.
  const installed = join(PEERS_DIR, 'node_modules', '.package-lock.json');
  const lockfile = join(PEERS_DIR, 'package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lockfile).mtimeMs) return;
  const why = existsSync(installed) ? 'its node_modules is older than its package-lock.json' : 'they are not installed yet';
  log(`installing the peers' dependencies with npm ci in tools/bench/peers (${why}); about a minute`);
  const child = spawn('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEERS_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new Tail();
  createInterface({ input: child.stdout }).on('line', (line) => tail.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => tail.push(line));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`npm ci in tools/bench/peers failed (${code}):\n${tail}`);
}

/** The installed versions of the packages the peers are about, for a report (empty before install). */
export function peerVersions(): Record<string, string> {
  const packages = ['mercurius', 'fastify', 'graphql-jit', '@apollo/server', 'graphql-yoga', 'postgraphile', 'graphql', 'dataloader', 'pg', 'jose'];
  const versions: Record<string, string> = {};
  for (const name of packages) {
    try {
      const manifest = JSON.parse(readFileSync(join(PEERS_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
      versions[name] = manifest.version;
    } catch {
      // Not installed (yet): left out of the list.
    }
  }
  return versions;
}

/** Options of {@link startPeer} (those of `startServer`, less what peers do not have). */
export interface StartPeerOptions {
  /**
   * The server's environment, as the bench gives its servers: `DATABASE_URL`, `AUTH_JWT_SECRET`,
   * `POOL_SIZE`, `POOL_MAX_OVERFLOW`.
   */
  env: NodeJS.ProcessEnv;
  /** Copy the server's output to stderr. */
  verbose: boolean;
  /** The Node executable it runs on. @default this process's own (`process.execPath`) */
  nodePath?: string;
  /** Allow the peer to profile itself into this file (`BENCH_PROFILE_FILE`, profiler.ts). */
  profileFile?: string;
}

/**
 * Installs the peers if needed, spawns peer `name` (`node --import tsx servers/<name>-server.ts`
 * in tools/bench/peers, with the peers' own tsx) and waits until it listens (60 s at most). The
 * result is shaped like `startServer`'s, and profiles as poolgraph's servers do.
 */
export async function startPeer(name: PeerName, options: StartPeerOptions): Promise<ServerProcess> {
  await ensurePeersInstalled();
  return spawnBenchServer({
    label: `the ${name} peer`,
    prefix: name,
    args: ['--import', 'tsx', PEER_ENTRIES[name]],
    cwd: PEERS_DIR,
    env: options.profileFile ? { ...options.env, BENCH_PROFILE_FILE: options.profileFile } : options.env,
    verbose: options.verbose,
    nodePath: options.nodePath,
  });
}

/** PostGraphile's workloads, made once each (the expected W2 body is 13 kB of JSON to map). */
const postgraphileWorkloads = new Map<WorkloadName, Workload>();

/**
 * `workload` as peer `peer` is sent it: the request body to POST to `/graphql` and the expected
 * answer (exact bytes, or W4's pattern), ready for the load generator. The three same-schema
 * peers get workloads.ts's own; PostGraphile its equivalent (see peers/postgraphile-workloads.ts).
 * The `token` flag is unchanged: W1-token and W4 carry `Authorization: Bearer <token>`. Throws for
 * W5, which no peer serves.
 */
export function peerWorkload(peer: PeerName, workload: WorkloadName): Workload {
  if (workload === 'W5') throw new Error('W5 (a federation gateway\'s _entities) is poolgraph\'s only: no peer is a subgraph');
  if (peer !== 'postgraphile') return WORKLOADS[workload];
  let found = postgraphileWorkloads.get(workload);
  if (!found) {
    found = postgraphileWorkload(workload);
    postgraphileWorkloads.set(workload, found);
  }
  return found;
}

/** True when `body` is a right answer of peer `peer` to `workload` (byte for byte; W4 by pattern). */
export function isPeerAnswer(peer: PeerName, workload: WorkloadName, body: string): boolean {
  return isExpectedBody(peerWorkload(peer, workload), body);
}
