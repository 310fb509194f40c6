import type { GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { ErrorCode, withExtensions } from '../../errors.js';

/**
 * Gives request errors the code `BAD_USER_INPUT`. graphql-js raises them before execution
 * begins, when the variables do not fit the operation (a value of the wrong type, an `Int` past
 * 32 bits, a required variable missing or null), and answers without a `data` entry, as the spec
 * asks; but their errors carry no `extensions.code`, unlike every other error a client can
 * cause. Apollo Server uses the same code for the same errors. Errors that already have a code
 * keep it; results with `data` (field errors) are left alone.
 */
export function useRequestErrorCode(): Plugin {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (isAsyncIterable(result) || result.data !== undefined || !result.errors?.length) return;
          setResult({ ...result, errors: result.errors.map(withBadUserInputCode) });
        },
      };
    },
  };
}

function withBadUserInputCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code !== undefined) return error;
  return withExtensions(error, { ...error.extensions, code: ErrorCode.BadUserInput });
}
