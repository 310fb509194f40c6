import { type DocumentNode, type ExecutionResult, getOperationAST } from 'graphql';
import { isAsyncIterable, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, type Registry } from 'prom-client';
import { type LifecyclePlugin, withRequestLifecycle } from '../../http/request-lifecycle.js';
import { RequestSlot } from '../../http/request-slot.js';

/** Options of {@link useMetrics}. */
export interface UseMetricsOptions {
  /** The server's registry (one per server, never prom-client's global one). */
  registry: Registry;
  /** Where the exposition is served on the app's port; false when it has a port of its own. */
  endpoint: string | false;
}

/** The label of an operation without a name, as graphql-yoga's prometheus plugin wrote it. */
const ANONYMOUS = 'Anonymous';
/** The `code` label of an error without `extensions.code`. */
const NO_CODE = 'NONE';
/**
 * The most distinct operation names kept as label values; names seen after that are counted as
 * `other`. Clients choose operation names, and every distinct label value is a time series kept
 * for the life of the process.
 */
export const MAX_OPERATION_NAMES = 100;
const OTHER = 'other';

/** Maps client-chosen operation names to a bounded set of label values. */
function boundedOperationNames(): (name: string | undefined) => string {
  const known = new Set<string>();
  return (name) => {
    const value = name || ANONYMOUS;
    if (known.has(value)) return value;
    if (known.size >= MAX_OPERATION_NAMES) return OTHER;
    known.add(value);
    return value;
  };
}

/** An operation's labels, computed once per operation and shared by its metrics. */
interface OperationLabels {
  operationName: string;
  operationType: string;
}

/**
 * GraphQL metrics, and the `/metrics` endpoint, on `registry`.
 *
 * Timing, labelled by operation name and type, under the names graphql-yoga's prometheus plugin
 * gives them (dashboards built for it keep working): `graphql_yoga_http_duration` (the whole
 * HTTP request, with method and status), `graphql_envelop_request_duration` (the operation's
 * execution) and the `graphql_envelop_request` counter. They are recorded here rather than by
 * that plugin: its generic hooks, label callbacks and timers cost more than the observations
 * themselves (measured in the commit that replaced it). Left off, as before: the parse and
 * validate phases (cache hits for every document seen before, and costly to time on every
 * request), a per-operation summary
 * (quantiles computed in process, which the histograms make redundant), the deprecated-field
 * counter (a schema walk of every parsed document), resolver timing (costly), and a `url` label
 * (a GET request's whole query string would become a label value).
 *
 * `poolgraph_graphql_errors_total{operationName, code}` counts the errors clients received, by
 * `extensions.code` (`NONE` when an error has none): masked errors as `INTERNAL_SERVER_ERROR`,
 * refusals before parsing (CSRF, body size, persisted documents) too. Operation names are chosen
 * by clients, so every metric keeps at most {@link MAX_OPERATION_NAMES} of them as label values
 * (later ones count as `other`).
 */
export function useMetrics(options: UseMetricsOptions): LifecyclePlugin<YogaInitialContext> {
  const { registry } = options;
  const registers = [registry];
  const operationName = boundedOperationNames();
  const operationLabelNames = ['operationName', 'operationType'] as const;
  const requests = new Counter({
    name: 'graphql_envelop_request',
    help: 'Counts the amount of GraphQL requests executed through Envelop',
    labelNames: operationLabelNames,
    registers,
  });
  const executionDuration = new Histogram({
    name: 'graphql_envelop_request_duration',
    help: 'Time spent on running the GraphQL operation from parse to execute',
    labelNames: operationLabelNames,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'graphql_yoga_http_duration',
    help: 'Time spent on HTTP connection',
    labelNames: ['operationName', 'operationType', 'method', 'statusCode'] as const,
    registers,
  });
  const errors = new Counter({
    name: 'poolgraph_graphql_errors_total',
    help: 'GraphQL errors sent to clients, by operation name and extensions.code.',
    labelNames: ['operationName', 'code'] as const,
    registers,
  });
  // Kept by context in WeakMaps, not as properties of it (RequestSlot): a property added to
  // graphql-yoga's context object slowed every later read of it, resolvers' included.
  /** The labels of each GraphQL context whose document parsed. */
  const contextLabels = new WeakMap<object, OperationLabels>();
  /** When each GraphQL context's operation began to execute. */
  const executionStarted = new WeakMap<object, number>();
  /** When each request arrived, and the labels of its (last) operation that parsed. */
  const started = new RequestSlot<number>('request arrived at');
  const requestLabels = new RequestSlot<OperationLabels>('request operation labels');
  /** Set on requests whose errors were counted per operation, in `onExecutionResult`. */
  const counted = new RequestSlot<true>('request errors counted');

  function count(result: ExecutionResult | undefined, name: string): void {
    for (const error of result?.errors ?? []) {
      const code = error.extensions?.['code'];
      errors.inc({ operationName: name, code: typeof code === 'string' ? code : NO_CODE });
    }
  }

  function countRefusal(request: Request, result: ExecutionResult | ExecutionResult[]): void {
    // Refused before any operation ran (CSRF, body size, persisted documents, batch size).
    if (counted.get(request)) return;
    for (const single of Array.isArray(result) ? result : [result]) count(single, ANONYMOUS);
  }

  /** Labels the operation of a document that parsed (`onParse`'s after-hook). */
  function recordOperation({ context, result }: { context: YogaInitialContext; result: unknown }): void {
    if (!isDocument(result)) return;
    const operation = getOperationAST(result, context.params?.operationName);
    const labels = {
      operationName: operationName(operation?.name?.value),
      operationType: operation?.operation ?? 'unknown',
    };
    contextLabels.set(context, labels);
    requestLabels.set(context.request, labels);
  }

  /** As graphql-yoga's plugin did: only requests whose document parsed are observed. */
  function observeHttp(request: Request, status: number): void {
    const start = started.get(request);
    const labels = requestLabels.get(request);
    if (start === undefined || !labels) return;
    httpDuration.observe(
      { operationName: labels.operationName, operationType: labels.operationType, method: request.method, statusCode: status },
      (performance.now() - start) / 1000,
    );
  }

  return withRequestLifecycle<YogaInitialContext>(
    {
      requestStarted(request, arrivedAt) {
        started.set(request, arrivedAt);
      },
      resultReady(request, result) {
        countRefusal(request, result);
        return result;
      },
      responseReady(request, status) {
        observeHttp(request, status);
      },
    },
    {
      onRequest({ url, fetchAPI, endResponse }) {
        if (options.endpoint === false || url.pathname !== options.endpoint) return undefined;
        return registry.metrics().then((exposition) => {
          endResponse(new fetchAPI.Response(exposition, { headers: { 'Content-Type': registry.contentType } }));
        });
      },
      // Every document that parsed, also one graphql-yoga then refuses before validation (an
      // operationName the document lacks, a mutation by GET). One callback for every request:
      // envelop calls what `onParse` returns, and a new closure per request costs every request.
      onParse() {
        return recordOperation;
      },
      onExecute({ args }) {
        if (contextLabels.get(args.contextValue)) executionStarted.set(args.contextValue, performance.now());
      },
      onExecutionResult({ request, result, context }) {
        const labels = contextLabels.get(context);
        const start = executionStarted.get(context);
        // An operation graphql-js's executor abandoned because its client left (it stops between
        // two fields) comes back with neither data nor errors: it was not answered, and is not
        // observed, as when this was an onExecuteDone hook, which a rejected execution never ran.
        const answered = result !== undefined && !isAsyncIterable(result) && (result.data !== undefined || (result.errors?.length ?? 0) > 0);
        if (labels && start !== undefined && answered) {
          executionDuration.observe(labels, (performance.now() - start) / 1000);
          requests.inc(labels);
        }
        // Per operation (a batch has several), after masking: the codes clients see.
        counted.set(request, true);
        if (!isAsyncIterable(result)) count(result, labels?.operationName ?? ANONYMOUS);
      },
    },
  );
}

function isDocument(result: unknown): result is DocumentNode {
  return typeof result === 'object' && result !== null && (result as { kind?: unknown }).kind === 'Document';
}
