import type { IncomingHttpHeaders } from 'node:http';
import type { ExecutionResult } from 'graphql';

/**
 * What a plugin does around a request that the fast path (`src/http/fast-path.ts`) answers without
 * graphql-yoga's HTTP layer. graphql-yoga calls a plugin's `onRequest`, `onResultProcess` and
 * `onResponse` hooks; the fast path calls these instead, at the same points and in the same
 * plugin order, and each plugin runs the same code from both (its Yoga hooks call these too).
 * Everything between (parameters, parsing, validation, context, execution, execution results)
 * runs through graphql-yoga's own pipeline on both paths.
 */
export interface FastPathHooks {
  /**
   * The request arrived (graphql-yoga's `onRequest`), at `arrivedAt` (`performance.now()`, taken
   * before its body was read, as graphql-yoga's hook runs before it reads the body). `headers` are
   * its headers as Node parsed them (names in lower case): the same as `request.headers`, cheaper
   * to read, since a name missing from a fetch `Headers` made from them costs a scan of them all.
   */
  requestStarted?(request: Request, arrivedAt: number, headers: IncomingHttpHeaders): void;
  /**
   * The client closed the connection before the response was sent. graphql-yoga's plugins hear
   * of it from an `abort` listener on `request.signal`; the fast path calls this instead, so that
   * a request costs no `AbortSignal` listener (and no `AbortSignal` at all unless something reads
   * `request.signal`). `responseReady` is still called afterwards.
   */
  requestAborted?(request: Request): void;
  /**
   * The operation's result, before it is serialised (`onResultProcess`). Returns the result to
   * send: the same one, or one that replaces it.
   */
  resultReady?(request: Request, result: ExecutionResult): ExecutionResult | Promise<ExecutionResult>;
  /**
   * The response's status is known and it is about to be sent (`onResponse`); a hook adds a
   * header to it by setting `headers[name]`, the name in lower case.
   */
  responseReady?(request: Request, status: number, headers: Record<string, string>): void | Promise<void>;
}
