/**
 * The benchmark's workloads (DESIGN.md W1-W5, and W1-token: W1 sent with a token) and the exact
 * response each must produce on the fixed 100 x 100 data set. The expected bytes are computed here
 * from the seed's formula (item g has `number = g % 1000`, `label = 'item-<g>'`, category
 * `(g - 1) / 100 + 1`), independently of both servers under test, so a server that answers fast
 * but wrong is caught before it is loaded and on every response during the load.
 */

/** The data set every workload's expected answer assumes (DESIGN.md: benchmarks use 100 x 100). */
export const BENCH_SEED = { categories: 100, itemsPerCategory: 100 } as const;

/**
 * A workload's name. `W1-token` is W1 sent by a caller with a token (issue 19): the same query and
 * answer, plus `Authorization: Bearer <token>`.
 */
export type WorkloadName = 'W1' | 'W1-token' | 'W2' | 'W3' | 'W4' | 'W5';

/** Every workload, in the order a run measures them (W4 writes, so it runs last). */
export const WORKLOAD_NAMES: readonly WorkloadName[] = ['W1', 'W1-token', 'W2', 'W3', 'W5', 'W4'];

/** One workload: the HTTP request sent over and over, and how to recognise a right answer. */
export interface Workload {
  name: WorkloadName;
  /** A line for tables: what the operation asks for. */
  summary: string;
  /** The JSON request body (`{"query": ...}`), identical for every request. */
  body: string;
  /**
   * The exact response body expected, byte for byte; or, for a write whose answer carries a new
   * id, a pattern the whole body must match.
   */
  expected: { exact: string } | { pattern: RegExp };
  /** True when the workload inserts rows (the data set must be restored afterwards). */
  writes: boolean;
  /**
   * True when every request carries `Authorization: Bearer <token>`: the one token the bench signs
   * at start (`auth.ts`), the same for every request, as a client reuses its token. The server
   * then verifies it (a cache hit after the first) and pipelines `set_config('request.jwt.claims',
   * ...)` before the operation's statement, in the same round trip.
   */
  token: boolean;
}

/** True when `body` is a right answer for `workload`. */
export function isExpectedBody(workload: Workload, body: string): boolean {
  return 'exact' in workload.expected ? body === workload.expected.exact : workload.expected.pattern.test(body);
}

const categoryOf = (g: number) => Math.floor((g - 1) / BENCH_SEED.itemsPerCategory) + 1;

const W1_QUERY = '{ items { number } }';
const W2_QUERY =
  '{ categories(first: 20) { name itemCount items(first: 10) { id number category { name } } } }';
const W3_IDS = Array.from({ length: 20 }, (_, i) => i * 37 + 5);
const W3_QUERY = `{ ${W3_IDS.map((id, i) => `i${i + 1}: item(id: "${id}") { number label }`).join(' ')} }`;
const W4_QUERY = 'mutation { createItem(input: {number: 7, label: "x", categoryId: 1}) { id } }';
const W5_IDS = Array.from({ length: 100 }, (_, i) => 1 + i * 101);
const W5_QUERY =
  'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Item { id number label } } }';

const W1_EXPECTED = JSON.stringify({ data: { items: Array.from({ length: 20 }, (_, i) => ({ number: (i + 1) % 1000 })) } });

/** The workloads, by name. */
export const WORKLOADS: Readonly<Record<WorkloadName, Workload>> = {
  W1: {
    name: 'W1',
    summary: '`{ items { number } }`: 20 rows',
    body: JSON.stringify({ query: W1_QUERY }),
    expected: { exact: W1_EXPECTED },
    writes: false,
    token: false,
  },
  'W1-token': {
    name: 'W1-token',
    summary: 'W1 with `Authorization: Bearer <token>` (one HS256 token, the same on every request)',
    body: JSON.stringify({ query: W1_QUERY }),
    expected: { exact: W1_EXPECTED },
    writes: false,
    token: true,
  },
  W2: {
    name: 'W2',
    summary: '20 categories with `itemCount`, 10 items each, each item\'s category',
    body: JSON.stringify({ query: W2_QUERY }),
    expected: {
      exact: JSON.stringify({
        data: {
          categories: Array.from({ length: 20 }, (_, c) => {
            const name = `category-${c + 1}`;
            return {
              name,
              itemCount: BENCH_SEED.itemsPerCategory,
              items: Array.from({ length: 10 }, (_, i) => {
                const g = c * BENCH_SEED.itemsPerCategory + i + 1;
                return { id: String(g), number: g % 1000, category: { name: `category-${categoryOf(g)}` } };
              }),
            };
          }),
        },
      }),
    },
    writes: false,
    token: false,
  },
  W3: {
    name: 'W3',
    summary: '20 aliased `item(id:) { number label }`',
    body: JSON.stringify({ query: W3_QUERY }),
    expected: {
      exact: JSON.stringify({
        data: Object.fromEntries(W3_IDS.map((g, i) => [`i${i + 1}`, { number: g % 1000, label: `item-${g}` }])),
      }),
    },
    writes: false,
    token: false,
  },
  W4: {
    name: 'W4',
    summary: '`createItem` (one INSERT, atomic on its own), with the token: in `AUTH_MODE=jwt` only a caller with one may write',
    body: JSON.stringify({ query: W4_QUERY }),
    expected: { pattern: /^\{"data":\{"createItem":\{"id":"\d+"\}\}\}$/ },
    writes: true,
    token: true,
  },
  W5: {
    name: 'W5',
    summary: 'a gateway\'s `_entities` with 100 `Item` representations',
    body: JSON.stringify({
      query: W5_QUERY,
      variables: { representations: W5_IDS.map((id) => ({ __typename: 'Item', id: String(id) })) },
    }),
    expected: {
      exact: JSON.stringify({
        data: { _entities: W5_IDS.map((g) => ({ id: String(g), number: g % 1000, label: `item-${g}` })) },
      }),
    },
    writes: false,
    token: false,
  },
};
