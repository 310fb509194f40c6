/**
 * W6, the live-update workload (issue 20), as both sides of it agree on: the subscriptions the
 * subscriber process opens (`live-load.ts`), the rows the bench writes (`live.ts`), and the exact
 * result each subscriber must receive for each row.
 *
 * Of every ten subscribers, nine take every new item with its category's name
 * (`itemCreated { id number category { name } }`: one document, so one execution per event for
 * all of them) and one only the items of one category (`itemCreated(categoryId: "c") { id number }`,
 * c = 1..{@link LIVE_CATEGORIES}, spread evenly). The writer puts its rows in those categories in
 * turn, so each filtered subscriber receives one row in {@link LIVE_CATEGORIES}.
 */

/** The categories the writer cycles through and the filtered subscribers are spread over. */
export const LIVE_CATEGORIES = 10;

/** One kind of subscriber: every item, or one category's. */
export type LiveGroup = { kind: 'all'; count: number } | { kind: 'category'; categoryId: number; count: number };

const ALL_DOCUMENT = 'subscription { itemCreated { id number category { name } } }';
const categoryDocument = (categoryId: number) => `subscription { itemCreated(categoryId: "${categoryId}") { id number } }`;

/** The subscription document of a group. */
export function documentOf(group: LiveGroup): string {
  return group.kind === 'all' ? ALL_DOCUMENT : categoryDocument(group.categoryId);
}

/** `subscribers` split as above: 90 % every item, 10 % by category (at least one each when possible). */
export function liveGroups(subscribers: number): LiveGroup[] {
  const filtered = Math.floor(subscribers / 10);
  const groups: LiveGroup[] = [{ kind: 'all', count: subscribers - filtered }];
  for (let c = 1; c <= LIVE_CATEGORIES; c += 1) {
    const count = Math.floor(filtered / LIVE_CATEGORIES) + (c <= filtered % LIVE_CATEGORIES ? 1 : 0);
    if (count > 0) groups.push({ kind: 'category', categoryId: c, count });
  }
  return groups;
}

/** The category of the writer's `seq`-th row (0-based), and its `number`. */
export function rowOf(seq: number): { categoryId: number; number: number } {
  return { categoryId: (seq % LIVE_CATEGORIES) + 1, number: seq % 1000 };
}

/** How many results a row of `categoryId` must produce, over all subscribers. */
export function deliveriesOf(groups: readonly LiveGroup[], categoryId: number): number {
  return groups.reduce((sum, group) => sum + (group.kind === 'all' || group.categoryId === categoryId ? group.count : 0), 0);
}

/** The `data:` of the SSE `next` event a subscriber of `group` must receive for a row. */
export function expectedData(group: LiveGroup, row: { id: string; number: number; categoryId: number }): string {
  return group.kind === 'all'
    ? JSON.stringify({ data: { itemCreated: { id: row.id, number: row.number, category: { name: `category-${row.categoryId}` } } } })
    : JSON.stringify({ data: { itemCreated: { id: row.id, number: row.number } } });
}
