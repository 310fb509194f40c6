import { performance } from 'node:perf_hooks';
import type { ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/** Reads a request header by its name in lower case (a fetch `Headers` is one). */
export interface HeaderReader {
  /** The header's value (repeated ones joined with ", "), or null; `name` in lower case. */
  get(name: string): string | null;
}

/** A result as graphql-yoga processes it: one operation's, or a batch's. */
export type ProcessedResult = ExecutionResult | ExecutionResult[];

/**
 * What a plugin does around each HTTP request, stated once. Both HTTP paths call it at the same
 * points and in plugin order: graphql-yoga through the hooks {@link withRequestLifecycle} derives
 * from it (`onRequest`, an `abort` listener, `onResultProcess`, `onResponse`), and the fast path
 * (./fast-path.ts) directly. Everything between (parameters, parsing, validation, context,
 * execution) runs through graphql-yoga's own pipeline on both paths.
 */
export interface RequestLifecycle {
  /**
   * The request arrived, at `arrivedAt` (`performance.now()`, taken before its body was read),
   * for `path`. `headers` reads its headers (on the fast path, Node's parsed header object, which
   * is cheaper to ask for a missing name than a fetch `Headers`).
   */
  requestStarted?(request: Request, arrivedAt: number, path: string, headers: HeaderReader): void;
  /**
   * The client closed the connection before the response was sent. `responseReady` may still be
   * called afterwards.
   */
  requestAborted?(request: Request): void;
  /**
   * The operation's result (a batch's results), before it is serialised. Returns the result to
   * send: the same one, or one that replaces it.
   */
  resultReady?(request: Request, result: ProcessedResult): ProcessedResult | Promise<ProcessedResult>;
  /**
   * The response's status is known and it is about to be sent; a hook adds a header to it by
   * setting `headers[name]`, the name in lower case.
   */
  responseReady?(request: Request, status: number, headers: Record<string, string>): void | Promise<void>;
}

/** A graphql-yoga plugin that also hands its {@link RequestLifecycle} to the fast path. */
export type LifecyclePlugin<Context extends object = object> = Plugin<Context> & { lifecycle: RequestLifecycle };

/**
 * The lifecycles of `plugins`, in their order: what the fast path runs where graphql-yoga runs
 * the hooks derived from them, taken from the one plugin list so the two cannot differ.
 */
export function lifecyclesOf(plugins: readonly object[]): RequestLifecycle[] {
  return plugins.flatMap((plugin) => ('lifecycle' in plugin ? [(plugin as LifecyclePlugin).lifecycle] : []));
}

/**
 * `plugin` with graphql-yoga hooks derived from `lifecycle` added to its own: the plugin states
 * each request behaviour once, and both HTTP paths run it. `plugin`'s own `onRequest` runs after
 * `requestStarted` (which so also sees requests the plugin then answers itself, e.g. `/metrics`).
 * It must not define `onResultProcess` or `onResponse`: state those in the lifecycle.
 */
export function withRequestLifecycle<Context extends object>(
  lifecycle: RequestLifecycle,
  plugin: Omit<Plugin<Context>, 'onResultProcess' | 'onResponse'> = {},
): LifecyclePlugin<Context> {
  const { requestStarted, requestAborted, resultReady, responseReady } = lifecycle;
  const ownOnRequest = plugin.onRequest;
  const derived: Plugin<Context> = {
    ...plugin,
    onRequest(payload) {
      const { request } = payload;
      requestStarted?.(request, performance.now(), payload.url.pathname, request.headers);
      if (requestAborted) request.signal?.addEventListener('abort', () => requestAborted(request), { once: true });
      return ownOnRequest?.(payload);
    },
  };
  if (resultReady) {
    derived.onResultProcess = ({ request, result, setResult }) => {
      if (isAsyncIterable(result)) return undefined;
      const next = resultReady(request, result);
      if (!(next instanceof Promise)) {
        if (next !== result) setResult(next);
        return undefined;
      }
      return next.then((settled) => {
        if (settled !== result) setResult(settled);
      });
    };
  }
  if (responseReady) {
    derived.onResponse = ({ request, response }) => {
      const headers: Record<string, string> = {};
      const ready = responseReady(request, response.status, headers);
      const setHeaders = () => {
        for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
      };
      if (ready instanceof Promise) return ready.then(setHeaders);
      setHeaders();
      return undefined;
    };
  }
  return Object.assign(derived, { lifecycle });
}
