import { useGraphQlJit } from '@envelop/graphql-jit';
import { type DocumentNode, type ExecutionArgs, getOperationAST, getVariableValues, type GraphQLSchema, Kind } from 'graphql';
import type { Plugin, YogaInitialContext } from 'graphql-yoga';

/**
 * Executes operations with graphql-jit: each document is compiled once into a function (cached
 * by document, and graphql-yoga's parse cache hands out the same document for the same text),
 * instead of being interpreted field by field on every request: the executor is the largest cost of
 * the nested workload W2 (docs/benchmarks-profile.md).
 *
 * graphql-js's executor still runs what the compiled path would get wrong:
 * - documents with several operations: @envelop/graphql-jit caches one compiled function per
 *   document whatever `operationName` asked for, so it would run the first one compiled for every
 *   name;
 * - variables that do not fit the operation: graphql-jit reports them as plain errors, where
 *   graphql-yoga's executor answers 400 `BAD_USER_INPUT`. Checking them first costs one
 *   coercion, and only for operations that declare variables.
 *
 * It also does the work of graphql-yoga's `useExecutionCancellation` for the operations
 * graphql-js's executor runs: their `args.signal` is the request's, so that executor stops
 * resolving fields once the client has gone away. graphql-jit has no such check, so compiled
 * operations do not read the signal, and a request answered by the fast path then never makes
 * one (an `AbortSignal` is costly to make, and graphql-yoga's plugin read it for every
 * operation). Either way a request whose client
 * left has its scope released, which refuses its further statements. Subscriptions are not
 * handled (the schema has none): a host adding one through `extend` would get graphql-js's
 * `subscribe` without a signal.
 */
export function useCompiledExecution(): Plugin<YogaInitialContext> {
  const jit = useGraphQlJit({}) as Plugin<YogaInitialContext>;
  return {
    onExecute(payload) {
      const { args } = payload;
      if (runsCompiled(args.schema, args.document, args.variableValues)) return jit.onExecute?.(payload);
      // What graphql-yoga's useExecutionCancellation sets; graphql-tools' executor reads it.
      (args as typeof args & { signal?: AbortSignal }).signal = args.contextValue?.request?.signal;
      return undefined;
    },
  };
}

/** Whether graphql-jit runs the operation correctly (see {@link useCompiledExecution}). */
function runsCompiled(schema: GraphQLSchema, document: DocumentNode, variableValues: ExecutionArgs['variableValues']): boolean {
  if (operationCount(document) !== 1) return false;
  const operation = getOperationAST(document);
  const definitions = operation?.variableDefinitions ?? [];
  return definitions.length === 0 || !getVariableValues(schema, definitions, variableValues ?? {}).errors;
}

const counts = new WeakMap<DocumentNode, number>();

function operationCount(document: DocumentNode): number {
  let count = counts.get(document);
  if (count === undefined) {
    count = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION).length;
    counts.set(document, count);
  }
  return count;
}
