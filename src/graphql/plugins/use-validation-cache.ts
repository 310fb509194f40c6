import { type DocumentNode, GraphQLError, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** A document's validation errors, and what they were computed against. */
interface Validated {
  schema: GraphQLSchema;
  rules: readonly ValidationRule[] | undefined;
  errors: readonly GraphQLError[];
}

/**
 * Validates each document once: its validation errors (none, for a valid one) are kept for the
 * document object, which graphql-yoga's parse cache hands out again for the same text, and a
 * later request with it skips validation. A document dropped from the parse cache is dropped
 * from here with it (a `WeakMap`).
 *
 * graphql-yoga's own validation cache (turned off in `createServer` with
 * `parserAndValidationCache: { validationCache: false }`; its parse cache stays on) keys each
 * result by the schema and by the names of the validation rules, which it joins into a string on
 * every request, a cost every request pays even for a document seen before. Here a
 * kept result is used only for the same schema object and the same rule functions, in the same
 * order, compared one by one (no string is built): on a poolgraph server both are the same for
 * every request (the specified rules and `useLimits`' three, made once). Rules must be added
 * before this plugin's `onValidate` runs, i.e. by plugins listed before it.
 */
export function useValidationCache(): Plugin {
  const results = new WeakMap<DocumentNode, Validated>();
  return {
    onValidate({ params: { schema, documentAST, rules }, setResult }) {
      const known = results.get(documentAST);
      if (known && known.schema === schema && sameRules(known.rules, rules)) {
        setResult(known.errors);
        return undefined;
      }
      const validatedWith = rules ? [...rules] : undefined;
      return ({ result }) => {
        // graphql-js's rules report GraphQLErrors only; anything else is not kept.
        if (result.every((error): error is GraphQLError => error instanceof GraphQLError)) {
          results.set(documentAST, { schema, rules: validatedWith, errors: result });
        }
      };
    },
  };
}

function sameRules(kept: readonly ValidationRule[] | undefined, now: readonly ValidationRule[] | undefined): boolean {
  if (kept === undefined || now === undefined) return kept === now;
  return kept.length === now.length && kept.every((rule, index) => rule === now[index]);
}
