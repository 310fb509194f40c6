import { useGraphQlJit } from '@envelop/graphql-jit';
import { type DocumentNode, getOperationAST, getVariableValues, Kind } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Executes operations with graphql-jit: each document is compiled once into a function (cached
 * by document, and graphql-yoga's parse cache hands out the same document for the same text),
 * instead of being interpreted field by field on every request. The executor took 28 % of the
 * server's time on the nested workload W2 (docs/benchmarks-profile.md).
 *
 * graphql-js's executor still runs what the compiled path would get wrong:
 * - documents with several operations: @envelop/graphql-jit caches one compiled function per
 *   document whatever `operationName` asked for, so it would run the first one compiled for every
 *   name;
 * - variables that do not fit the operation: graphql-jit reports them as plain errors, where
 *   graphql-yoga's executor answers 400 `BAD_USER_INPUT`. Checking them first costs one
 *   coercion, and only for operations that declare variables.
 */
export function useCompiledExecution(): Plugin {
  return useGraphQlJit(
    {},
    {
      enableIf: ({ schema, document, variableValues }) => {
        if (operationCount(document) !== 1) return false;
        const operation = getOperationAST(document);
        const definitions = operation?.variableDefinitions ?? [];
        return definitions.length === 0 || !getVariableValues(schema, definitions, variableValues ?? {}).errors;
      },
    },
  ) as Plugin;
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
