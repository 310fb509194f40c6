import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { type DocumentNode, type ExecutionResult, getOperationAST } from 'graphql';
import { isAsyncIterable, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import { Counter, type Registry } from 'prom-client';

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
 * GraphQL metrics, and the `/metrics` endpoint, on `registry`.
 *
 * graphql-yoga's prometheus plugin does the timing, labelled by operation name and type:
 * `graphql_yoga_http_duration` (the whole HTTP request, with method and status),
 * `graphql_envelop_request_duration` (parse to execute), `graphql_envelop_phase_parse` and
 * `_validate`, and the `graphql_envelop_request` counter. Left off: the per-operation summary
 * (quantiles computed in process, which the histograms make redundant), the deprecated-field
 * counter (a schema walk of every parsed document), the context/subscribe phases and schema
 * changes (nothing to see here), resolver timing (costly), the `url` label (a GET request's
 * whole query string would become a label value), and its error counter, which cannot say which
 * code an error had (it sees validation failures only as "the validate phase failed").
 *
 * In its place, `poolgraph_graphql_errors_total{operationName, code}` counts the errors clients
 * received, by `extensions.code` (`NONE` when an error has none): masked errors as
 * `INTERNAL_SERVER_ERROR`, refusals before parsing (CSRF, body size, persisted documents) too.
 * Operation names are chosen by clients: with untrusted clients, `PERSISTED_DOCUMENTS=only`
 * keeps their number bounded.
 */
export function useMetrics(options: UseMetricsOptions): Plugin<YogaInitialContext> {
  const { registry } = options;
  const errors = new Counter({
    name: 'poolgraph_graphql_errors_total',
    help: 'GraphQL errors sent to clients, by operation name and extensions.code.',
    labelNames: ['operationName', 'code'] as const,
    registers: [registry],
  });
  /** The operation name of each GraphQL context whose document parsed. */
  const operationNames = new WeakMap<object, string>();
  /** Requests whose errors were counted per operation, in `onExecutionResult`. */
  const counted = new WeakSet<Request>();

  function count(result: ExecutionResult | undefined, operationName: string): void {
    for (const error of result?.errors ?? []) {
      const code = error.extensions?.['code'];
      errors.inc({ operationName, code: typeof code === 'string' ? code : NO_CODE });
    }
  }

  return {
    onPluginInit({ addPlugin }) {
      addPlugin(
        usePrometheus({
          registry,
          endpoint: options.endpoint,
          metrics: {
            graphql_envelop_request: true,
            graphql_envelop_request_duration: true,
            graphql_envelop_phase_parse: true,
            graphql_envelop_phase_validate: true,
            graphql_yoga_http_duration: true,
            graphql_envelop_request_time_summary: false,
            graphql_envelop_deprecated_field: false,
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
    onParse({ context }) {
      return ({ result }) => {
        if (isDocument(result)) operationNames.set(context, nameOf(result, context));
      };
    },
    onExecutionResult({ request, result, context }) {
      // Per operation (a batch has several), after masking: the codes clients see.
      counted.add(request);
      if (!isAsyncIterable(result)) count(result, operationNames.get(context) ?? ANONYMOUS);
    },
    onResultProcess({ request, result }) {
      // Refused before any operation ran (CSRF, body size, persisted documents, batch size).
      if (counted.has(request) || isAsyncIterable(result)) return;
      for (const single of Array.isArray(result) ? result : [result]) count(single, ANONYMOUS);
    },
  };
}

function isDocument(result: unknown): result is DocumentNode {
  return typeof result === 'object' && result !== null && (result as { kind?: unknown }).kind === 'Document';
}

/** The operation's name as the request selects it (`operationName`), or `Anonymous`. */
function nameOf(document: DocumentNode, context: YogaInitialContext): string {
  return getOperationAST(document, context.params?.operationName)?.name?.value ?? ANONYMOUS;
}
