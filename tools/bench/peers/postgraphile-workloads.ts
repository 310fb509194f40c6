/**
 * PostGraphile 5's equivalents of the bench's workloads (see ../peers.ts). Root project: imports
 * root modules only.
 */
import { BENCH_SUBJECT } from '../auth.js';
import { type Workload, type WorkloadName, WORKLOADS } from '../workloads.js';

/**
 * PostGraphile 5's equivalents of the workloads, on the schema it derives from the tables (amber
 * preset): lists are connections (`allItems { nodes }`), a row's `id` column is `rowId` (its `id`
 * is a global Node ID), relations are named by their foreign key (`itemsByCategoryId`,
 * `categoryByCategoryId`), and `createItem` takes `input: { item: {...} }` and answers a payload.
 *
 * The operations alias PostGraphile's fields to poolgraph's names (any client may), so that its
 * answer is the canonical one with two kinds of wrapper: a list inside `{"nodes": [...]}`, and
 * `itemCount` as `{"totalCount": n}` (a connection's count); `createItem`'s id inside `item`.
 * Its expected bytes are made from workloads.ts's expected bodies by adding exactly those
 * wrappers (see {@link postgraphileWorkload}), so they follow the seed's formula the same way.
 *
 * W4: PostGraphile's `createItem` sets the columns it is given, so the request names the owner
 * (`ownerId: "bench"`, the token's `sub`); row-level security checks it against the claims
 * PostGraphile set from the verified token, as it checks poolgraph's.
 */
const POSTGRAPHILE_QUERIES: Readonly<Record<Exclude<WorkloadName, 'W3' | 'W5'>, string>> = {
  W1: '{ items: allItems(first: 20, orderBy: PRIMARY_KEY_ASC) { nodes { number } } }',
  'W1-token': '{ items: allItems(first: 20, orderBy: PRIMARY_KEY_ASC) { nodes { number } } }',
  W2:
    '{ categories: allCategories(first: 20, orderBy: PRIMARY_KEY_ASC) { nodes { name itemCount: itemsByCategoryId { totalCount } ' +
    'items: itemsByCategoryId(first: 10, orderBy: PRIMARY_KEY_ASC) { nodes { id: rowId number category: categoryByCategoryId { name } } } } } }',
  W4: `mutation { createItem(input: {item: {number: 7, label: "x", categoryId: "1", ownerId: "${BENCH_SUBJECT}"}}) { item { id: rowId } } }`,
};

/** The canonical answers' shapes, as workloads.ts builds them. */
interface CanonicalW1 {
  data: { items: { number: number }[] };
}
interface CanonicalW2 {
  data: {
    categories: { name: string; itemCount: number; items: { id: string; number: number; category: { name: string } }[] }[];
  };
}

/**
 * `name` as PostGraphile is sent it (see {@link POSTGRAPHILE_QUERIES}): its request body, and its
 * expected answer made from workloads.ts's. Throws for W5, which no peer serves.
 */
export function postgraphileWorkload(name: WorkloadName): Workload {
  const canonical = WORKLOADS[name];
  const expectedOf = (map: (body: unknown) => unknown): { exact: string } => {
    if (!('exact' in canonical.expected)) throw new Error(`${canonical.name} has no exact expected body`);
    return { exact: JSON.stringify(map(JSON.parse(canonical.expected.exact))) };
  };
  const query = (which: keyof typeof POSTGRAPHILE_QUERIES) => JSON.stringify({ query: POSTGRAPHILE_QUERIES[which] });
  switch (canonical.name) {
    case 'W1':
    case 'W1-token':
      return {
        ...canonical,
        body: query(canonical.name),
        expected: expectedOf((body) => ({ data: { items: { nodes: (body as CanonicalW1).data.items } } })),
      };
    case 'W2':
      return {
        ...canonical,
        body: query('W2'),
        expected: expectedOf((body) => ({
          data: {
            categories: {
              nodes: (body as CanonicalW2).data.categories.map((category) => ({
                name: category.name,
                itemCount: { totalCount: category.itemCount },
                items: { nodes: category.items },
              })),
            },
          },
        })),
      };
    case 'W3': {
      // The same twenty aliased fields, by primary key: `item(id: "5")` is `itemByRowId(rowId: "5")`,
      // and the answer's shape is the canonical one.
      const { query: canonicalQuery } = JSON.parse(canonical.body) as { query: string };
      return { ...canonical, body: JSON.stringify({ query: canonicalQuery.replaceAll('item(id: ', 'itemByRowId(rowId: ') }) };
    }
    case 'W4':
      return { ...canonical, body: query('W4'), expected: { pattern: /^\{"data":\{"createItem":\{"item":\{"id":"\d+"\}\}\}\}$/ } };
    case 'W5':
      throw new Error('W5 (a federation gateway\'s _entities) is poolgraph\'s only: no peer is a subgraph');
  }
}
