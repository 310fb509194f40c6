import {
  type DocumentNode,
  execute,
  type ExecutionArgs,
  type ExecutionResult,
  getOperationAST,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  getVariableValues,
  valueFromAST,
} from 'graphql';
import type { Logger } from 'pino';
import type { Identity } from '../../auth/identity.js';
import type { ItemEvent } from '../../db/events/event-cursor.js';
import { EventListener } from '../../db/events/event-listener.js';
import type { RequestScope } from '../../db/request/request-scope.js';
import { DatabaseBusyError, DatabaseUnavailableError, StatementTimeoutError, TooManySubscriptionsError } from '../../errors.js';
import { createLoaders } from '../../loaders/create-loaders.js';
import type { RequestContext } from '../context.js';
import { Subscriber } from './subscriber.js';

/** The fields of `type Subscription` (schema.graphql). */
type LiveField = 'itemCreated' | 'itemUpdated' | 'itemDeleted';

/** What the hub's metrics are told. */
export interface LiveObserver {
  subscribed(transport: string, delta: 1 | -1): void;
  eventsRead(count: number): void;
  delivered(count: number, lagMs: readonly number[]): void;
  dropped(): void;
}

/** Options of {@link LiveHub}. */
export interface LiveHubOptions {
  schema: GraphQLSchema;
  /** Where the listener connects: the primary, directly (never through a transaction pooler). */
  listenUrl: string;
  logger: Logger;
  /** A scope for one tick's loads of one set of claims (one pooled connection, released after). */
  openScope(claims: string | undefined): RequestScope;
  /** `MAX_SUBSCRIPTIONS`. */
  maxSubscriptions: number;
  /** Results a subscriber may leave unread before it is dropped. */
  queueLimit: number;
  /**
   * The least time between two reads of the outbox (`SUBSCRIPTION_TICK_MS`): what arrives
   * meanwhile is delivered in one tick, so that under load a subscriber gets fewer, larger writes.
   */
  tickMs: number;
  observer?: LiveObserver | undefined;
}

/** One subscription, as the hub matches and groups it. */
interface Live {
  subscriber: Subscriber;
  transport: string;
  field: LiveField;
  /** `categoryId` of itemCreated, `id` of itemUpdated; undefined: every event of its kind. */
  filter: string | undefined;
  /** Subscriptions with the same key share one execution per event: same document, variables, claims. */
  key: string;
  args: ExecutionArgs;
  identity: Identity | undefined;
}

const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 0;

/**
 * Serves every subscription of the server from ONE listener connection (I8): the listener reads
 * the outbox after each wake-up; the hub matches each event to the subscriptions that want it and
 * delivers it, in id order, to each. One tick (the events of one read) costs a fixed number of
 * statements whatever the number of subscribers: the rows are loaded through one set of loaders
 * per set of claims (anonymous subscribers share one), on one pooled connection each, and
 * subscribers with the same document, variables and claims share one execution of it.
 * The listener opens with the first subscription and closes with the last.
 */
export class LiveHub {
  readonly #options: LiveHubOptions;
  readonly #live = new Set<Live>();
  #listener: EventListener | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #closed = false;

  constructor(options: LiveHubOptions) {
    this.#options = options;
  }

  /** Subscriptions being served. */
  get size(): number {
    return this.#live.size;
  }

  /** The listener's backend, while it listens (tests kill it). */
  get listenerPid(): number | undefined {
    return this.#listener?.backendPid;
  }

  /**
   * graphql-yoga's subscribe function: registers the subscription and returns its stream, or an
   * error result (over `MAX_SUBSCRIPTIONS`, an unknown field).
   */
  async subscribe(args: ExecutionArgs, transport: string, identity: Identity | undefined): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    if (this.#closed) return { errors: [new GraphQLError('The server is shutting down.')] };
    if (this.#live.size >= this.#options.maxSubscriptions) return { errors: [new TooManySubscriptionsError(this.#options.maxSubscriptions)] };
    const operation = getOperationAST(args.document, args.operationName);
    const parsed = operation ? liveFieldOf(this.#options.schema, operation, args.variableValues ?? {}) : undefined;
    if (!parsed || 'errors' in parsed) return { errors: parsed?.errors ?? [new GraphQLError('Not a subscription of this server.')] };
    const live: Live = {
      subscriber: new Subscriber(this.#options.queueLimit, () => this.#ended(live)),
      transport,
      field: parsed.field,
      filter: parsed.filter,
      key: `${documentId(args.document)}|${args.operationName ?? ''}|${JSON.stringify(args.variableValues ?? {})}|${identity?.claimsJson ?? ''}`,
      args,
      identity,
    };
    this.#live.add(live);
    this.#options.observer?.subscribed(transport, 1);
    try {
      await this.#ensureListening();
    } catch (error) {
      // No listener, no updates: the client learns it now, as a coded error, and holds no place.
      void live.subscriber.return();
      return { errors: [new DatabaseUnavailableError(error)] };
    }
    return live.subscriber;
  }

  /** Ends every subscription (their streams complete) and closes the listener. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const live of [...this.#live]) live.subscriber.complete();
    await this.#stopListening();
  }

  #ended(live: Live): void {
    if (!this.#live.delete(live)) return;
    this.#options.observer?.subscribed(live.transport, -1);
    if (this.#live.size === 0) void this.#stopListening();
  }

  async #ensureListening(): Promise<void> {
    if (this.#listener) return;
    this.#starting ??= (async () => {
      const listener = new EventListener({
        connectionString: this.#options.listenUrl,
        logger: this.#options.logger,
        onEvents: (events) => this.#deliver(events),
        minReadIntervalMs: this.#options.tickMs,
      });
      await listener.start();
      this.#listener = listener;
    })().finally(() => (this.#starting = undefined));
    await this.#starting;
  }

  /** Stops the listener once no subscription is left; every caller waits for the same stop. */
  async #stopListening(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const listener = this.#listener;
    if (listener && (this.#live.size === 0 || this.#closed)) {
      this.#listener = undefined;
      this.#stopping = listener.stop().finally(() => (this.#stopping = undefined));
    }
    await this.#stopping;
  }

  /**
   * One tick: the events of one read, delivered in id order to every subscription that wants them.
   * Throws, having pushed nothing, when the database failed the tick's loads (a restart, a busy
   * pool): the listener then reads the same events again a little later, so none is lost or sent
   * twice.
   */
  async #deliver(events: ItemEvent[]): Promise<void> {
    this.#options.observer?.eventsRead(events.length);
    for (const live of [...this.#live]) if (!live.subscriber.keptUp()) this.#options.observer?.dropped();
    const wanted = events.map((event) => ({ event, lives: [...this.#live].filter((live) => matches(live, event)) }));
    if (!wanted.some(({ lives }) => lives.length > 0)) return;
    // One scope (one pooled connection, one set of loaders) per set of claims in this tick.
    const scopes = new Map<string, { scope: RequestScope; context: RequestContext }>();
    const contextOf = (live: Live) => {
      const claims = live.identity?.claimsJson ?? '';
      let entry = scopes.get(claims);
      if (!entry) {
        const scope = this.#options.openScope(live.identity?.claimsJson);
        entry = { scope, context: { db: scope.db, loaders: createLoaders(scope.db), identity: live.identity } };
        scopes.set(claims, entry);
      }
      return entry.context;
    };
    let deliveries: { event: ItemEvent; groups: { lives: Live[]; result: ExecutionResult | undefined }[] }[];
    try {
      // Every execution of the tick at once, so that the loaders batch across events and groups.
      const executions = wanted.map(({ event, lives }) => {
        const groups = new Map<string, { lives: Live[]; result: Promise<ExecutionResult | undefined> }>();
        for (const live of lives) {
          let group = groups.get(live.key);
          if (!group) {
            group = { lives: [], result: this.#execute(live, event, contextOf(live)) };
            groups.set(live.key, group);
          }
          group.lives.push(live);
        }
        return { event, groups: [...groups.values()] };
      });
      // All settled before anything is pushed: a tick is delivered whole or not at all.
      deliveries = await Promise.all(
        executions.map(async ({ event, groups }) => ({
          event,
          groups: await Promise.all(groups.map(async ({ lives, result }) => ({ lives, result: await result }))),
        })),
      );
    } finally {
      await Promise.all([...scopes.values()].map(({ scope }) => scope.release()));
    }
    const failure = deliveries.flatMap(({ groups }) => groups.flatMap(({ result }) => result?.errors ?? [])).find(isDatabaseFailure);
    if (failure) throw failure;
    for (const { event, groups } of deliveries) {
      for (const { lives, result } of groups) {
        if (!result) continue;
        let delivered = 0;
        for (const live of lives) if (live.subscriber.push(result) === 'queued') delivered += 1;
        this.#options.observer?.delivered(delivered, [Date.now() - event.at]);
      }
    }
  }

  /** The subscription's document for one event; undefined when its row is gone (deleted since). */
  async #execute(live: Live, event: ItemEvent, context: RequestContext): Promise<ExecutionResult | undefined> {
    let payload: unknown = event.itemId;
    if (live.field !== 'itemDeleted') {
      try {
        payload = await context.loaders.itemById.load(event.itemId);
      } catch (error) {
        return { errors: [error instanceof GraphQLError ? error : new GraphQLError('Unexpected error.', { originalError: error as Error })] };
      }
      if (payload === null) return undefined;
    }
    const result = await execute({ ...live.args, rootValue: payload, contextValue: { ...(live.args.contextValue as object), ...context } });
    return result;
  }
}

/** The database failed (not the data): the tick is read and run again rather than delivered. */
function isDatabaseFailure(error: GraphQLError): boolean {
  const failure = error.originalError ?? error;
  return failure instanceof DatabaseUnavailableError || failure instanceof DatabaseBusyError || failure instanceof StatementTimeoutError;
}

function matches(live: Live, event: ItemEvent): boolean {
  switch (live.field) {
    case 'itemCreated':
      return event.kind === 'created' && (live.filter === undefined || live.filter === event.categoryId);
    case 'itemUpdated':
      return event.kind === 'updated' && (live.filter === undefined || live.filter === event.itemId);
    case 'itemDeleted':
      return event.kind === 'deleted';
  }
}

function documentId(document: DocumentNode): number {
  let id = documentIds.get(document);
  if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
  return id;
}

/** The subscription's one root field and its filter argument, with variables applied. */
function liveFieldOf(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  rawVariables: Record<string, unknown>,
): { field: LiveField; filter: string | undefined } | { errors: readonly GraphQLError[] } | undefined {
  const selection = operation.selectionSet.selections[0];
  if (operation.operation !== 'subscription' || selection?.kind !== Kind.FIELD) return undefined;
  const field = selection.name.value;
  if (field !== 'itemCreated' && field !== 'itemUpdated' && field !== 'itemDeleted') return undefined;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables);
  if (coerced.errors) return { errors: coerced.errors };
  const argumentName = field === 'itemCreated' ? 'categoryId' : field === 'itemUpdated' ? 'id' : undefined;
  const node = selection.arguments?.find((argument) => argument.name.value === argumentName);
  const definition = schema.getSubscriptionType()?.getFields()[field]?.args.find((argument) => argument.name === argumentName);
  const value = node && definition ? valueFromAST(node.value, definition.type, coerced.coerced) : undefined;
  return { field, filter: value == null ? undefined : String(value) };
}
