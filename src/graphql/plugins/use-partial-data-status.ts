import type { ExecutionResult, GraphQLError } from 'graphql';
import { withExtensions } from '../../errors.js';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/**
 * Keeps HTTP 503 for operations of which nothing could run. `DATABASE_BUSY` and
 * `DATABASE_UNAVAILABLE` errors carry `extensions.http.status = 503`, and graphql-yoga answers
 * with that status whenever any error carries it; but when other fields of the same operation did
 * produce data, the client got a useful (partial) answer, so this strips the status and the
 * response stays 200 with the errors beside the data.
 */
export function usePartialDataStatus(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (!result || isAsyncIterable(result) || !result.errors?.length || !hasData(result)) return;
      if (!result.errors.some((error) => error.extensions?.http !== undefined)) return;
      setResult({ ...result, errors: result.errors.map(withoutHttpStatus) });
    },
  };
}

/** True when at least one root field of the result has a non-null value. */
function hasData(result: ExecutionResult): boolean {
  return Object.values(result.data ?? {}).some((value) => value !== null);
}

function withoutHttpStatus(error: GraphQLError): GraphQLError {
  if (error.extensions?.http === undefined) return error;
  const { http: _http, ...extensions } = error.extensions;
  return withExtensions(error, extensions);
}
