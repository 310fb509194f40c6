/**
 * Server CPU per request, measured in process: `npm run bench:cpu -- [--workloads W1,W2,W3]
 * [--requests 20000] [--concurrency 16]`.
 *
 * On a shared 2-core VM, req/s from `npm run bench` drifts by 10-40 % between runs, because the
 * server, PostgreSQL and the load generator compete for the cores. This measures one thing only:
 * the CPU time (`process.cpuUsage()`, user and system) the server spends per request, with no
 * HTTP sockets on the client side. Each request is a JSON POST of the workload's body handed to
 * `server.requestListener` as an in-memory request and a response that records what is written
 * (so it measures the fast path, `src/fast-path.ts`); the database side is real: the bench's
 * embedded PostgreSQL (or `DATABASE_URL`, read only), seeded 100 x 100, a pool of 10. Every answer
 * is checked against the workload's expected bytes. Use it to compare two versions back to back;
 * W4 (writes) is not offered.
 */
import '../../src/production-mode.js';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createServer, type PoolgraphServer } from '../../src/app.js';
import { openBenchDatabase } from './database.js';
import { isExpectedBody, WORKLOADS, type WorkloadName } from './workloads.js';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'W1,W2,W3' },
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
  },
});
const names = (values.workloads ?? '').split(',') as WorkloadName[];
const offered: WorkloadName[] = ['W1', 'W2', 'W3', 'W5'];
if (names.some((name) => !offered.includes(name))) {
  process.stderr.write(`bench:cpu: --workloads takes ${offered.join(', ')}\n`);
  process.exit(2);
}
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);

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

/** One request through the server's listener; resolves with the response body. */
function send(server: PoolgraphServer, body: Buffer): Promise<string> {
  const request = Object.assign(Readable.from([body]), {
    method: 'POST',
    url: '/graphql',
    headers: { host: 'localhost', 'content-type': 'application/json', 'content-length': String(body.length), accept: 'application/json' },
  });
  const response = new RecordedResponse();
  // The fast path uses only these members of Node's request and response (see RecordedResponse).
  server.requestListener(request as unknown as IncomingMessage, response as unknown as ServerResponse);
  return response.done;
}

const database = await openBenchDatabase(process.env['DATABASE_URL'], false);
try {
  const server = createServer({
    database: { connectionString: database.url, size: 10, maxOverflow: 0, timeoutMs: 5_000, idleTimeoutMs: 30_000, recycleSeconds: 0, statementTimeoutMs: 10_000 },
    // Not `warn`: pg-pool's end() resolves before its connections have closed, so stopping the
    // database right after logs one "idle connection failed" warning per connection.
    logger: pino({ level: 'error' }),
  });
  try {
    for (const name of names) await measure(server, name);
  } finally {
    await server.close();
  }
} finally {
  await database.stop();
}

/** Runs `requests` of workload `name` after a warm-up and prints its CPU per request. */
async function measure(server: PoolgraphServer, name: WorkloadName): Promise<void> {
  const workload = WORKLOADS[name];
  const body = Buffer.from(workload.body);
  let wrong = 0;
  const run = async (count: number) => {
    let left = count;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left-- > 0) if (!isExpectedBody(workload, await send(server, body))) wrong += 1;
      }),
    );
  };
  await run(Math.ceil(requests / 5)); // warm-up: JIT, caches, pool
  const before = process.cpuUsage();
  const started = performance.now();
  await run(requests);
  const used = process.cpuUsage(before);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${name}: ${((used.user + used.system) / requests).toFixed(1)} µs CPU per request ` +
      `(user ${(used.user / requests).toFixed(1)}, system ${(used.system / requests).toFixed(1)}), ` +
      `${Math.round(requests / seconds)} req/s, ${requests} requests, ${wrong} wrong`,
  );
  if (wrong > 0) process.exitCode = 1;
}
