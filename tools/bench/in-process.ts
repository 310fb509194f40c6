/**
 * Server CPU per request, measured in process: `npm run bench:cpu -- [--workloads W1,W1-token,W2,W3]
 * [--requests 20000] [--concurrency 16] [--against DIR [--batch 1000] [--rounds 60]] [--log-level info]`.
 *
 * On a shared 2-core VM, req/s from `npm run bench` drifts by 10-40 % between runs, because the
 * server, PostgreSQL and the load generator compete for the cores. This measures one thing only:
 * the CPU time (`process.cpuUsage()`, user and system) the server spends per request, with no
 * HTTP sockets on the client side. Each request is a JSON POST of the workload's body handed to
 * `server.requestListener` as an in-memory request and a response that records what is written
 * (so it measures the fast path, `src/http/fast-path.ts`); the database side is real: the bench's
 * embedded PostgreSQL (or `DATABASE_URL`, read only), seeded 100 x 100, a pool of 10; metrics on and
 * the request log at `--log-level` (default `info`, npm start's), its JSON lines to /dev/null. Every answer
 * is checked against the workload's expected bytes. Use it to compare two versions back to back;
 * W4 (writes) is not offered. As in `npm run bench`, the server runs in `AUTH_MODE=jwt` with a
 * secret of the run and logs in as `poolgraph_app` where the bench may make it; W1-token sends the
 * run's one token as `Authorization: Bearer` on every request.
 *
 * `--pair A,B` (say `--pair W1,W1-token`) compares two workloads on this one server the same way:
 * batches of A and B alternate for `--rounds` rounds, and it prints the median CPU per request of
 * each and the median of the per-round ratios B / A; what B costs more than A, with the machine's
 * changes of speed cancelled out.
 *
 * `--against DIR` compares this checkout with another one (DIR, a checkout of poolgraph with its
 * own `npm install`): both servers run in this one process on the same database, and batches of
 * `--batch` requests alternate between them for `--rounds` rounds, so a change of the machine's
 * speed hits both alike. It prints each one's median CPU per request and the median of the
 * per-round ratios. On the 2-core VM two runs of a checkout against itself gave 0.989 and 1.016
 * (`--batch 1000 --rounds 60`): differences under about 3 % are noise.
 */
import '../../src/operating/production-mode.js';
import { EventEmitter } from 'node:events';
import { openSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { type CreateServerOptions, createServer, type PoolgraphServer } from '../../src/app.js';
import { LOG_LEVELS } from '../../src/config.js';
import { createProcessOutput } from '../../src/logger.js';
import { createBenchAuth } from './auth.js';
import { openBenchDatabase } from './database.js';
import { isExpectedBody, WORKLOADS, type WorkloadName } from './workloads.js';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'W1,W2,W3' },
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
    against: { type: 'string' },
    pair: { type: 'string' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '60' },
    'log-level': { type: 'string', default: 'info' },
  },
});
const names = (values.workloads ?? '').split(',') as WorkloadName[];
const pair = values.pair === undefined ? undefined : (values.pair.split(',') as WorkloadName[]);
const offered: WorkloadName[] = ['W1', 'W1-token', 'W2', 'W3', 'W5'];
if (names.some((name) => !offered.includes(name)) || (pair && (pair.length !== 2 || pair.some((name) => !offered.includes(name))))) {
  process.stderr.write(`bench:cpu: --workloads takes ${offered.join(', ')}; --pair two of them\n`);
  process.exit(2);
}
if (pair && values.against !== undefined) {
  process.stderr.write('bench:cpu: --pair and --against do not go together\n');
  process.exit(2);
}
const logLevel = values['log-level'] as LevelWithSilent;
if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
  process.stderr.write(`bench:cpu: --log-level takes ${LOG_LEVELS.join(', ')}\n`);
  process.exit(2);
}
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const batch = Number(values.batch);
const rounds = Number(values.rounds);
for (const [option, value] of Object.entries({ requests, concurrency, batch, rounds })) {
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`bench:cpu: --${option} takes a whole number of 1 or more\n`);
    process.exit(2);
  }
}

/** A response that keeps its status and body; the fast path writes it with writeHead and end. */
class RecordedResponse extends EventEmitter {
  destroyed = false;
  writableFinished = false;
  headersSent = false;
  status = 0;
  readonly done: Promise<string>;
  #finish!: (body: string) => void;

  constructor() {
    super();
    this.done = new Promise((resolve) => (this.#finish = resolve));
  }

  writeHead(status: number): this {
    this.status = status;
    this.headersSent = true;
    return this;
  }

  end(body: string): this {
    this.writableFinished = true;
    this.#finish(body);
    return this;
  }
}

const auth = await createBenchAuth();

/** One request through the server's listener; resolves with the response body. */
function send(server: Pick<PoolgraphServer, 'requestListener'>, body: Buffer, token: boolean): Promise<string> {
  const request = Object.assign(Readable.from([body]), {
    method: 'POST',
    url: '/graphql',
    headers: {
      host: 'localhost',
      'content-type': 'application/json',
      'content-length': String(body.length),
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${auth.token}` } : {}),
    },
  });
  const response = new RecordedResponse();
  // The fast path uses only these members of Node's request and response (see RecordedResponse).
  server.requestListener(request as unknown as IncomingMessage, response as unknown as ServerResponse);
  return response.done;
}

/** Where the servers' log lines go: opened once, for the life of this process. */
const devNull = openSync('/dev/null', 'w');

/** The servers' settings: a pool of 10, as `npm run bench` configures poolgraph. */
function serverOptions(databaseUrl: string): CreateServerOptions {
  return {
    database: { connectionString: databaseUrl, size: 10, maxOverflow: 0, timeoutMs: 5_000, idleTimeoutMs: 30_000, recycleSeconds: 0, statementTimeoutMs: 10_000 },
    // As npm start logs (JSON, one line per request at info), to /dev/null: the lines cost what
    // they cost a server, and nobody reads them. One logger per server.
    logger: createProcessOutput(logLevel, 'json', devNull).logger,
    auth: { mode: 'jwt', tokens: { secret: auth.secret, jwksUrl: undefined, issuer: undefined, audience: undefined, clockToleranceS: 5 } },
  };
}

const database = await openBenchDatabase(process.env['DATABASE_URL'], false);
try {
  const server = createServer(serverOptions(database.serverUrl));
  try {
    if (pair) {
      const [first = 'W1', second = 'W1'] = pair;
      await compare({ label: second, server, name: second }, { label: first, server, name: first });
    } else if (values.against === undefined) {
      for (const name of names) await measure(server, name);
    } else {
      // The other checkout's own createServer, with its own dependencies.
      const other = resolve(values.against);
      const { createServer: createOther } = (await import(pathToFileURL(join(other, 'src/app.ts')).href)) as typeof import('../../src/app.js');
      const otherServer = createOther(serverOptions(database.serverUrl));
      try {
        for (const name of names) {
          await compare({ label: `${name} this checkout`, server, name }, { label: `${name} ${other}`, server: otherServer, name });
        }
      } finally {
        await otherServer.close();
      }
    }
  } finally {
    await server.close();
  }
} finally {
  await database.stop();
}

/** A server and the workload to measure on it, and how to name them. */
interface Contender {
  label: string;
  server: Pick<PoolgraphServer, 'requestListener'>;
  name: WorkloadName;
}

/** Sends `count` requests of `workload` to `server`, `concurrency` at a time; returns the wrong answers. */
async function run(server: Contender['server'], name: WorkloadName, count: number): Promise<number> {
  const workload = WORKLOADS[name];
  const body = Buffer.from(workload.body);
  let wrong = 0;
  let left = count;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) if (!isExpectedBody(workload, await send(server, body, workload.token))) wrong += 1;
    }),
  );
  return wrong;
}

/** Alternates batches of the two contenders and prints both medians and their ratio. */
async function compare(mine: Contender, theirs: Contender): Promise<void> {
  const contenders = [mine, theirs];
  let wrong = 0;
  for (const { server, name } of contenders) wrong += await run(server, name, batch * 2); // warm-up
  const perRequest: number[][] = [[], []];
  for (let round = 0; round < rounds; round++) {
    // Each goes first in every other round: neither always runs right after the other's garbage.
    for (const index of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const before = process.cpuUsage();
      const contender = contenders[index]!;
      wrong += await run(contender.server, contender.name, batch);
      const used = process.cpuUsage(before);
      perRequest[index]!.push((used.user + used.system) / batch);
    }
  }
  const [ours = [], other = []] = perRequest;
  for (const [index, { label }] of contenders.entries()) {
    console.log(`${label}: ${median(perRequest[index] ?? []).toFixed(1)} µs CPU per request (median of ${rounds} batches of ${batch})`);
  }
  const ratio = median(ours.map((value, index) => value / (other[index] ?? Number.NaN)));
  console.log(`${mine.label} / ${theirs.label}: ${ratio.toFixed(3)} (median of the per-round ratios), ${wrong} wrong`);
  if (wrong > 0) process.exitCode = 1;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Runs `requests` of workload `name` after a warm-up and prints its CPU per request. */
async function measure(server: PoolgraphServer, name: WorkloadName): Promise<void> {
  let wrong = await run(server, name, Math.ceil(requests / 5)); // warm-up: JIT, caches, pool
  const before = process.cpuUsage();
  const started = performance.now();
  wrong += await run(server, name, requests);
  const used = process.cpuUsage(before);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${name}: ${((used.user + used.system) / requests).toFixed(1)} µs CPU per request ` +
      `(user ${(used.user / requests).toFixed(1)}, system ${(used.system / requests).toFixed(1)}), ` +
      `${Math.round(requests / seconds)} req/s, ${requests} requests, ${wrong} wrong`,
  );
  if (wrong > 0) process.exitCode = 1;
}
