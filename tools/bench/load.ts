/**
 * The load generator of `npm run bench`, in a process of its own so that its CPU time is
 * measured apart from the server's: `node --import tsx tools/bench/load.ts '<LoadPlan JSON>'`.
 *
 * It runs autocannon twice against one URL on 127.0.0.1: a warm-up (not measured), then the
 * measured run. Between the two it prints `{"event":"warmed"}` and waits for a line on stdin, so
 * that the parent can reset its counters (pg_stat_statements, CPU, connections) right before the
 * measured run starts; at the end it prints `{"event":"result",...}` (a {@link LoadResult}).
 *
 * Every response body of both runs is checked against the workload's expected answer (autocannon
 * keeps each body anyway; the check is a string comparison): bodies that differ count as
 * `mismatches`, and those among them that carry a GraphQL `errors` entry as `graphqlErrors`. So
 * GraphQL errors inside HTTP 200 responses are counted on every response, not sampled.
 */
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';

/** What the parent asks the load generator to do. */
export interface LoadPlan {
  url: string;
  body: string;
  /** Headers sent with every request besides `content-type` (W1-token's `authorization`). */
  headers?: Record<string, string>;
  /** The exact expected body, or a regular expression source the body must match. */
  expected: { exact: string } | { pattern: string };
  connections: number;
  warmupSeconds: number;
  seconds: number;
}

/** What the measured run did. */
export interface LoadResult {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  /** Responses with a status outside 2xx. */
  non2xx: number;
  /** Socket errors and timeouts (requests with no response). */
  errors: number;
  timeouts: number;
  /** Responses whose body was not the expected answer (non-2xx included). */
  mismatches: number;
  /** Responses whose body carried GraphQL `errors`. */
  graphqlErrors: number;
  /** Response bodies compared with the expected answer: every response, so `requests`. */
  bodiesChecked: number;
  statusCodes: Record<string, number>;
  /** CPU time this process used during the measured run (user + system), in seconds. */
  cpuSeconds: number;
}

/** Requests per second no run may exceed (a bound on count, whatever the machine's speed). */
const MAX_REQUESTS_PER_SECOND = 200_000;

const plan = JSON.parse(process.argv[2] ?? '') as LoadPlan;
const target = new URL(plan.url);
if (target.hostname !== '127.0.0.1') {
  process.stderr.write(`bench load: refusing to load ${target.hostname}; only 127.0.0.1 is allowed\n`);
  process.exit(2);
}

let graphqlErrors = 0;
let bodiesChecked = 0;
const pattern = 'pattern' in plan.expected ? new RegExp(plan.expected.pattern) : undefined;
const exact = 'exact' in plan.expected ? plan.expected.exact : undefined;
// autocannon's types allow a Buffer or nothing; at run time it passes the body as a string.
function verifyBody(received: string | Buffer | undefined): boolean {
  bodiesChecked += 1;
  const body = String(received ?? '');
  if (exact !== undefined ? body === exact : pattern?.test(body)) return true;
  if (body.includes('"errors"')) graphqlErrors += 1;
  return false;
}

function load(seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: plan.url,
        method: 'POST',
        headers: { ...plan.headers, 'content-type': 'application/json' },
        body: plan.body,
        connections: plan.connections,
        duration: seconds,
        maxOverallRequests: Math.ceil(seconds * MAX_REQUESTS_PER_SECOND),
        timeout: 10,
        verifyBody,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

if (plan.warmupSeconds > 0) await load(plan.warmupSeconds);
print({ event: 'warmed' });
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

graphqlErrors = 0;
bodiesChecked = 0;
const cpuBefore = process.cpuUsage();
const result = await load(plan.seconds);
const cpu = process.cpuUsage(cpuBefore);
const requests = result.requests.total;
const loadResult: LoadResult = {
  requests,
  durationSeconds: result.duration,
  requestsPerSecond: requests / result.duration,
  latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  mismatches: result.mismatches,
  graphqlErrors,
  bodiesChecked,
  statusCodes: Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, (stats as { count: number }).count]),
  ),
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
};
print({ event: 'result', ...loadResult });
process.exit(0);
