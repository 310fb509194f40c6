import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { subscribeSse } from './sse.js';

/** One result of a subscription, as either transport hands it over. */
export interface LiveResult {
  data?: Record<string, unknown> | null;
  errors?: readonly { message: string; extensions?: { code?: string } }[];
}

/** The subscription fields of schema.graphql. */
export type LiveField = 'itemCreated' | 'itemUpdated' | 'itemDeleted';

/** One subscriber of a test: what it asked for and what it received. */
export interface Watcher {
  name: string;
  transport: 'sse' | 'websocket';
  field: LiveField;
  /** `categoryId` of itemCreated, `id` of itemUpdated; undefined: every event of its kind. */
  filter: string | undefined;
  results: LiveResult[];
  /** Transport-level failures (a WebSocket error, a non-200 SSE answer). */
  failures: unknown[];
  close(): void;
}

/** What one subscriber asks: its field, filter and document. */
export interface WatchSpec {
  field: LiveField;
  filter?: string;
}

/** The document a {@link WatchSpec} subscribes with (the same text for the same spec, so the hub can share executions). */
export function documentOf(spec: WatchSpec): string {
  switch (spec.field) {
    case 'itemCreated':
      return spec.filter === undefined
        ? 'subscription { itemCreated { id number category { id } } }'
        : `subscription { itemCreated(categoryId: "${spec.filter}") { id number } }`;
    case 'itemUpdated':
      return spec.filter === undefined
        ? 'subscription { itemUpdated { id number } }'
        : `subscription { itemUpdated(id: "${spec.filter}") { id number } }`;
    case 'itemDeleted':
      return 'subscription { itemDeleted }';
  }
}

/** Subscribes over GraphQL over SSE (Node's fetch). */
export async function watchSse(url: string, spec: WatchSpec, name: string): Promise<Watcher> {
  const subscription = await subscribeSse(url, documentOf(spec));
  return {
    name,
    transport: 'sse',
    field: spec.field,
    filter: spec.filter,
    results: subscription.results,
    failures: subscription.status === 200 ? [] : [`HTTP ${subscription.status}`],
    close: () => subscription.close(),
  };
}

/** Subscribes over graphql-ws, on a WebSocket of its own. */
export function watchWs(url: string, spec: WatchSpec, name: string): Watcher {
  const client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  const watcher: Watcher = {
    name,
    transport: 'websocket',
    field: spec.field,
    filter: spec.filter,
    results: [],
    failures: [],
    close: () => {
      unsubscribe();
      void client.dispose();
    },
  };
  const unsubscribe = client.subscribe(
    { query: documentOf(spec) },
    {
      next: (value) => void watcher.results.push(value as LiveResult),
      error: (error) => void watcher.failures.push(error),
      complete: () => undefined,
    },
  );
  return watcher;
}

/** One row of the outbox, the truth a subscriber's results are compared to. */
export interface OutboxEvent {
  id: string;
  kind: 'created' | 'updated' | 'deleted';
  itemId: string;
  categoryId: string | null;
}

/** The outbox's events with an id above `after`, in id order. */
export async function outboxAfter(query: (sql: string, params?: unknown[]) => Promise<OutboxEvent[]>, after: string): Promise<OutboxEvent[]> {
  return query(
    `select id::text as id, kind, item_id::text as "itemId", category_id::text as "categoryId"
     from item_events as e where e.id > $1 order by e.id`,
    [after],
  );
}

/** The events of `events` that `watcher` subscribed to, in id order. */
export function expectedFor(watcher: Pick<Watcher, 'field' | 'filter'>, events: readonly OutboxEvent[]): OutboxEvent[] {
  return events.filter((event) => {
    switch (watcher.field) {
      case 'itemCreated':
        return event.kind === 'created' && (watcher.filter === undefined || watcher.filter === event.categoryId);
      case 'itemUpdated':
        return event.kind === 'updated' && (watcher.filter === undefined || watcher.filter === event.itemId);
      case 'itemDeleted':
        return event.kind === 'deleted';
    }
  });
}

/** The item id each result is about. */
export function receivedIds(watcher: Pick<Watcher, 'field' | 'results'>): string[] {
  return watcher.results.map((result) => {
    const payload = result.data?.[watcher.field];
    if (typeof payload === 'string') return payload;
    return String((payload as { id?: unknown } | undefined)?.id);
  });
}

/**
 * What is wrong with each watcher's results, compared to the outbox: an error result, an item
 * missing, one too many, one out of order. For itemUpdated, also that each result's `number` (the
 * writes increment it, so it counts the item's updates in commit order) is at least the number
 * its event wrote, never goes back, and ends at the item's final number: every update reached the
 * subscriber, none twice. Empty when every watcher got exactly its events, in id order.
 */
export function problemsOf(
  watchers: readonly Watcher[],
  events: readonly OutboxEvent[],
  numbers: { before: ReadonlyMap<string, number>; after: ReadonlyMap<string, number> } | undefined,
): string[] {
  const problems: string[] = [];
  for (const watcher of watchers) {
    const expected = expectedFor(watcher, events).map((event) => event.itemId);
    const received = receivedIds(watcher);
    const label = `${watcher.name} (${watcher.transport} ${watcher.field}${watcher.filter === undefined ? '' : `(${watcher.filter})`})`;
    const errors = watcher.results.filter((result) => result.errors !== undefined);
    if (errors.length > 0) problems.push(`${label}: ${errors.length} error results, first ${JSON.stringify(errors[0])}`);
    if (watcher.failures.length > 0) problems.push(`${label}: transport failed: ${String(watcher.failures[0])}`);
    if (received.length !== expected.length || received.some((id, i) => id !== expected[i])) {
      const at = received.findIndex((id, i) => id !== expected[i]);
      problems.push(
        `${label}: received ${received.length} of ${expected.length}; first difference at ${at < 0 ? Math.min(received.length, expected.length) : at}: ` +
          `got ${received.slice(Math.max(0, at), Math.max(0, at) + 5).join(',')} expected ${expected.slice(Math.max(0, at), Math.max(0, at) + 5).join(',')}`,
      );
      continue;
    }
    if (watcher.field !== 'itemUpdated' || !numbers) continue;
    const seen = new Map<string, { count: number; last: number }>();
    for (const result of watcher.results) {
      const { id, number } = result.data?.['itemUpdated'] as { id: string; number: number };
      const previous = seen.get(id) ?? { count: 0, last: Number.NEGATIVE_INFINITY };
      const count = previous.count + 1;
      const least = (numbers.before.get(id) ?? 0) + count;
      if (number < least || number < previous.last) problems.push(`${label}: item ${id}'s update ${count} came with number ${number} (at least ${least}, after ${previous.last})`);
      seen.set(id, { count, last: number });
    }
    for (const [id, { last }] of seen) {
      if (last !== numbers.after.get(id)) problems.push(`${label}: item ${id}'s last result has number ${last}, the row ${numbers.after.get(id)}`);
    }
  }
  return problems;
}

/** Runs `tasks` with at most `concurrency` at once; settles with each outcome, in task order. */
export async function runConcurrently<T>(tasks: readonly (() => Promise<T>)[], concurrency: number): Promise<PromiseSettledResult<T>[]> {
  const outcomes: PromiseSettledResult<T>[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      try {
        outcomes[i] = { status: 'fulfilled', value: await tasks[i]!() };
      } catch (reason) {
        outcomes[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return outcomes;
}

/** A deterministic shuffle (a seeded LCG), so a failing order can be run again. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items];
  let state = seed >>> 0;
  for (let i = copy.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** The app's connections seen by {@link watchConnections}. */
export interface ConnectionSamples {
  samples: number;
  /** Most connections with application_name `poolgraph` at once. */
  peakApp: number;
  /** Each count of `poolgraph-listener` connections seen, with how many samples saw it. */
  listeners: Map<number, number>;
}

/**
 * Samples `pg_stat_activity` of the database at `url` every `everyMs` on a connection of its own
 * (application_name `poolgraph-test-monitor`) until `stop()`, at most `maxSamples` times and `maxMs`.
 */
export async function watchConnections(url: string, everyMs = 20, maxSamples = 5_000, maxMs = 60_000): Promise<{ stop(): Promise<ConnectionSamples> }> {
  const client = new pg.Client({ connectionString: url, application_name: 'poolgraph-test-monitor' });
  client.on('error', () => undefined);
  await client.connect();
  const seen: ConnectionSamples = { samples: 0, peakApp: 0, listeners: new Map() };
  let stopped = false;
  const deadline = Date.now() + maxMs;
  const loop = (async () => {
    while (!stopped && seen.samples < maxSamples && Date.now() < deadline) {
      const { rows } = await client.query<{ app: number; listener: number }>(
        `select count(*) filter (where application_name = 'poolgraph')::int as app,
                count(*) filter (where application_name = 'poolgraph-listener')::int as listener
         from pg_stat_activity where datname = current_database()`,
      );
      const row = rows[0]!;
      seen.samples += 1;
      seen.peakApp = Math.max(seen.peakApp, row.app);
      seen.listeners.set(row.listener, (seen.listeners.get(row.listener) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await client.end();
      return seen;
    },
  };
}

/**
 * A GraphQL-over-SSE subscription on a raw TCP socket that reads nothing until `read()`: a
 * client that stopped reading. Resolves once the request is written.
 */
export async function rawSseSubscription(url: string, query: string): Promise<{ socket: Socket; read(untilMs: number, until: RegExp): Promise<string> }> {
  const { hostname, port, pathname } = new URL(url);
  const body = JSON.stringify({ query });
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.pause();
  socket.write(
    `POST ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return {
    socket,
    /** Reads everything now, until `until` matches what came or `untilMs` passes; returns the text's tail (64 KiB). */
    async read(untilMs, until) {
      let tail = '';
      let bytes = 0;
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, untilMs);
        const check = () => {
          if (until.test(tail)) {
            clearTimeout(timer);
            resolve();
          }
        };
        socket.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          tail = (tail + chunk.toString('latin1')).slice(-65_536);
          check();
        });
        socket.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      socket.resume();
      await done;
      return `${bytes} bytes; tail: ${tail}`;
    },
  };
}

/** Items 11-20 are the ones the tests update (never delete): the filtered itemUpdated subscriptions watch them. */
export const UPDATED_ITEMS: readonly string[] = Array.from({ length: 10 }, (_, i) => String(11 + i));

/** The mix of subscriptions the live tests open: filtered and not, of each field, by subscriber number. */
export function mixedSpec(i: number): WatchSpec {
  switch (i % 5) {
    case 0:
      return { field: 'itemCreated' };
    case 1:
      return { field: 'itemCreated', filter: '1' };
    case 2:
      return { field: 'itemUpdated', filter: UPDATED_ITEMS[Math.floor(i / 5) % UPDATED_ITEMS.length]! };
    case 3:
      return { field: 'itemUpdated' };
    default:
      return { field: 'itemDeleted' };
  }
}
