import { createCounter, createHistogram, usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { type DocumentNode, type ExecutionResult, getOperationAST } from 'graphql';
import { isAsyncIterable, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { FastPathHooks } from './fast-path-hooks.js';

/** Options of {@link useMetrics}. */
export interface UseMetricsOptions {
  /** The server's registry (one per server, never prom-client's global one). */
  registry: Registry;
  /** Where the exposition is served on the app's port; false when it has a port of its own. */
  endpoint: string | false;
}

/** The label of an operation without a name, as graphql-yoga's prometheus plugin writes it. */
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

/**
 * GraphQL metrics, and the `/metrics` endpoint, on `registry`.
 *
 * graphql-yoga's prometheus plugin does the timing, labelled by operation name and type:
 * `graphql_yoga_http_duration` (the whole HTTP request, with method and status),
 * `graphql_envelop_request_duration` (parse to execute) and the `graphql_envelop_request`
 * counter. Left off: the parse and validate phases (cache hits for every document seen before,
 * and 10 % of the server's CPU on the simplest query), the per-operation summary
 * (quantiles computed in process, which the histograms make redundant), the deprecated-field
 * counter (a schema walk of every parsed document), the context/subscribe phases and schema
 * changes (nothing to see here), resolver timing (costly), the `url` label (a GET request's
 * whole query string would become a label value), and its error counter, which cannot say which
 * code an error had (it sees validation failures only as "the validate phase failed").
 *
 * In its place, `poolgraph_graphql_errors_total{operationName, code}` counts the errors clients
 * received, by `extensions.code` (`NONE` when an error has none): masked errors as
 * `INTERNAL_SERVER_ERROR`, refusals before parsing (CSRF, body size, persisted documents) too.
 * Operation names are chosen by clients, so every metric keeps at most
 * {@link MAX_OPERATION_NAMES} of them as label values (later ones count as `other`).
 */
export function useMetrics(options: UseMetricsOptions): Plugin<YogaInitialContext> & { fastPath: FastPathHooks } {
  const { registry } = options;
  const operationName = boundedOperationNames();
  const operationLabels = (params: { operationName?: string; operationType?: string }) => ({
    operationName: operationName(params.operationName),
    operationType: params.operationType ?? 'unknown',
  });
  const operationHistogram = <Phase extends string>(name: string, help: string, phases: [Phase, ...Phase[]]) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationName', 'operationType'] as const },
      fillLabelsFn: operationLabels,
      phases,
    });
  const errors = new Counter({
    name: 'poolgraph_graphql_errors_total',
    help: 'GraphQL errors sent to clients, by operation name and extensions.code.',
    labelNames: ['operationName', 'code'] as const,
    registers: [registry],
  });
  // graphql-yoga's prometheus plugin would observe it too, from its own hooks; it is kept here,
  // with the plugin's name, help, labels and buckets, so the fast path can observe it as well.
  const httpDuration = new Histogram({
    name: 'graphql_yoga_http_duration',
    help: 'Time spent on HTTP connection',
    labelNames: ['operationName', 'operationType', 'method', 'statusCode'] as const,
    registers: [registry],
  });
  /** The operation name of each GraphQL context whose document parsed. */
  const operationNames = new WeakMap<object, string>();
  /** When each request arrived, and its operation once a document parsed (HTTP histogram). */
  const started = new WeakMap<Request, number>();
  const operations = new WeakMap<Request, { operationName?: string; operationType?: string }>();
  /** Requests whose errors were counted per operation, in `onExecutionResult`. */
  const counted = new WeakSet<Request>();

  function count(result: ExecutionResult | undefined, name: string): void {
    for (const error of result?.errors ?? []) {
      const code = error.extensions?.['code'];
      errors.inc({ operationName: operationName(name), code: typeof code === 'string' ? code : NO_CODE });
    }
  }

  function countRefusal(request: Request, result: ExecutionResult | ExecutionResult[]): void {
    // Refused before any operation ran (CSRF, body size, persisted documents, batch size).
    if (counted.has(request)) return;
    for (const single of Array.isArray(result) ? result : [result]) count(single, ANONYMOUS);
  }

  /** As graphql-yoga's plugin: only requests whose document parsed are observed. */
  function observeHttp(request: Request, status: number): void {
    const start = started.get(request);
    const operation = operations.get(request);
    if (start === undefined || !operation) return;
    httpDuration.observe(
      { ...operationLabels(operation), method: request.method, statusCode: status },
      (performance.now() - start) / 1000,
    );
  }

  return {
    onPluginInit({ addPlugin }) {
      addPlugin(
        usePrometheus({
          registry,
          endpoint: options.endpoint,
          // The plugin's own metrics, declared here only to bound their operationName label.
          metrics: {
            graphql_envelop_request: createCounter({
              registry,
              counter: {
                name: 'graphql_envelop_request',
                help: 'Counts the amount of GraphQL requests executed through Envelop',
                labelNames: ['operationName', 'operationType'] as const,
              },
              fillLabelsFn: operationLabels,
            }),
            graphql_envelop_request_duration: operationHistogram(
              'graphql_envelop_request_duration',
              'Time spent on running the GraphQL operation from parse to execute',
              ['execute', 'subscribe'],
            ),
            // Ours (below), so that the fast path observes the same histogram.
            graphql_yoga_http_duration: false,
            graphql_envelop_request_time_summary: false,
            graphql_envelop_deprecated_field: false,
            // Parsing and validation are cache hits for every document the server has seen, so
            // these two histograms timed a map lookup, and cost about 10 % of the server's CPU on
            // `{ items { number } }` (bench: 0.33-0.34 -> 0.29-0.31 ms per request without them).
            graphql_envelop_phase_parse: false,
            graphql_envelop_phase_validate: false,
            graphql_envelop_phase_context: false,
            graphql_envelop_phase_execute: false,
            graphql_envelop_phase_subscribe: false,
            graphql_envelop_schema_change: false,
            graphql_envelop_execute_resolver: false,
            graphql_envelop_error_result: false,
          },
          labels: { url: false },
        }),
      );
    },
    onRequest({ request }) {
      started.set(request, performance.now());
    },
    onParse({ context }) {
      return ({ result }) => {
        if (!isDocument(result)) return;
        const operation = getOperationAST(result, context.params?.operationName);
        operationNames.set(context, operation?.name?.value ?? ANONYMOUS);
        operations.set(context.request, {
          ...(operation?.name ? { operationName: operation.name.value } : {}),
          ...(operation ? { operationType: operation.operation } : {}),
        });
      };
    },
    onExecutionResult({ request, result, context }) {
      // Per operation (a batch has several), after masking: the codes clients see.
      counted.add(request);
      if (!isAsyncIterable(result)) count(result, operationNames.get(context) ?? ANONYMOUS);
    },
    onResultProcess({ request, result }) {
      if (!isAsyncIterable(result)) countRefusal(request, result);
    },
    onResponse({ request, response }) {
      observeHttp(request, response.status);
    },
    fastPath: {
      requestStarted(request) {
        started.set(request, performance.now());
      },
      resultReady(request, result) {
        countRefusal(request, result);
        return result;
      },
      responseReady(request, status) {
        observeHttp(request, status);
      },
    },
  };
}

function isDocument(result: unknown): result is DocumentNode {
  return typeof result === 'object' && result !== null && (result as { kind?: unknown }).kind === 'Document';
}
